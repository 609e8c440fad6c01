"""`backchannel users` commands: the built-in user directory.

Passwords and user codes are read from a hidden prompt or stdin, never from the command
line by default (argv is visible to other local users and lands in shell history).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from backchannel.cli.common import fail, open_provider, run, settings_from
from backchannel.protocol.model import JSON, User
from backchannel.protocol.ports import DuplicateError
from backchannel.protocol.provider import Provider
from backchannel.protocol.users import (
    InvalidUserInput,
    edit_user,
    find_by_login_hint,
    new_user,
    set_password,
    set_user_code,
)
from backchannel.settings import Settings

app = typer.Typer(help="Manage users of the built-in directory.", no_args_is_help=True)

UserArg = Annotated[str, typer.Argument(help="Subject, username, email or phone.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
EmailOpt = Annotated[str | None, typer.Option("--email", help="Email address.")]
PhoneOpt = Annotated[
    str | None, typer.Option("--phone", help="Phone number, E.164 (+15555550100).")
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Display name.")]
ClaimOpt = Annotated[
    list[str] | None,
    typer.Option("--claim", help="Extra claim KEY=VALUE (VALUE may be JSON); repeatable."),
]
StdinFlag = Annotated[bool, typer.Option("--stdin", help="Read the value from stdin.")]
ValueOpt = Annotated[
    str | None,
    typer.Option("--value", help="The value itself (less safe: visible in the process list)."),
]


@app.command()
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Option("--username", help="Login name (unique).")],
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    name: NameOpt = None,
    claim: ClaimOpt = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from stdin.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a user."""
    password = _read_stdin() if password_stdin else None
    fields: JSON = {"username": username, "email": email, "phone": phone, "display_name": name}
    claims = _parse_claims(claim or [])
    with _reported():
        user = run(_add(settings_from(ctx), fields, claims, password))
    _print_user(user, as_json)


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List users."""
    users = run(_list(settings_from(ctx)))
    if as_json:
        typer.echo(json.dumps([user_view(u) for u in users], indent=2))
        return
    if not users:
        typer.echo("no users")
    for user in users:
        typer.echo(f"{user.subject}  {user.username}  {user.email or '-'}  {user.phone or '-'}")


@app.command()
def show(ctx: typer.Context, user: UserArg, as_json: JsonFlag = False) -> None:
    """Print a user (never their password or user code)."""
    _print_user(run(_get(settings_from(ctx), user)), as_json)


@app.command()
def update(
    ctx: typer.Context,
    user: UserArg,
    username: Annotated[str | None, typer.Option("--username", help="New login name.")] = None,
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    name: NameOpt = None,
    claim: ClaimOpt = None,
    remove_claim: Annotated[
        list[str] | None, typer.Option("--remove-claim", help="Claim to drop; repeatable.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the given attributes; an empty value ("") removes email, phone or name."""
    fields: JSON = {"username": username, "email": email, "phone": phone, "display_name": name}
    claims = _parse_claims(claim or [])
    with _reported():
        updated = run(_update(settings_from(ctx), user, fields, claims, remove_claim or []))
    _print_user(updated, as_json)


@app.command()
def remove(ctx: typer.Context, user: UserArg) -> None:
    """Delete a user."""
    subject = run(_remove(settings_from(ctx), user))
    typer.echo(f"removed user {subject}")


@app.command("set-password")
def set_password_command(
    ctx: typer.Context, user: UserArg, stdin: StdinFlag = False, value: ValueOpt = None
) -> None:
    """Set a user's password (hidden prompt by default)."""
    secret = _secret_input("password", stdin, value)
    with _reported():
        subject = run(_set_secret(settings_from(ctx), user, "password", secret))
    typer.echo(f"password set for {subject}")


@app.command("set-user-code")
def set_user_code_command(
    ctx: typer.Context, user: UserArg, stdin: StdinFlag = False, value: ValueOpt = None
) -> None:
    """Set the user code the user types to confirm CIBA requests (hidden prompt by default)."""
    secret = _secret_input("user code", stdin, value)
    with _reported():
        subject = run(_set_secret(settings_from(ctx), user, "user_code", secret))
    typer.echo(f"user code set for {subject}")


async def _add(settings: Settings, fields: JSON, claims: JSON, password: str | None) -> User:
    async with open_provider(settings) as provider:
        user = new_user(
            provider.random,
            provider.hasher,
            provider.clock.now(),
            claims=claims,
            password=password,
            **fields,
        )
        await provider.storage.users.add_user(user)
        return user


async def _list(settings: Settings) -> list[User]:
    async with open_provider(settings) as provider:
        return await provider.storage.users.list_users()


async def _get(settings: Settings, hint: str) -> User:
    async with open_provider(settings) as provider:
        return await _existing(provider, hint)


async def _update(
    settings: Settings, hint: str, fields: JSON, claims: JSON, dropped: list[str]
) -> User:
    async with open_provider(settings) as provider:
        user = await _existing(provider, hint)
        merged = {k: v for k, v in {**user.claims, **claims}.items() if k not in dropped}
        changed = edit_user(user, provider.clock.now(), claims=merged, **fields)
        await provider.storage.users.update_user(changed)
        return changed


async def _remove(settings: Settings, hint: str) -> str:
    async with open_provider(settings) as provider:
        user = await _existing(provider, hint)
        await provider.storage.users.remove_user(user.subject)
        return user.subject


async def _set_secret(settings: Settings, hint: str, kind: str, secret: str) -> str:
    async with open_provider(settings) as provider:
        user = await _existing(provider, hint)
        setter = set_password if kind == "password" else set_user_code
        await provider.storage.users.update_user(
            setter(user, provider.hasher, secret, provider.clock.now())
        )
        return user.subject


async def _existing(provider: Provider, hint: str) -> User:
    user = await find_by_login_hint(provider.storage.users, hint)
    if user is None:
        fail(f"no user {hint!r}", code=1)
    return user


def _secret_input(what: str, stdin: bool, value: str | None) -> str:
    if value is not None:
        return value
    if stdin:
        return _read_stdin()
    entered: str = typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=True)
    return entered


def _read_stdin() -> str:
    return sys.stdin.readline().rstrip("\r\n")


def _parse_claims(items: list[str]) -> JSON:
    claims: JSON = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"claims: expected KEY=VALUE, got {item!r}")
        claims[key] = _claim_value(raw)
    return claims


def _claim_value(raw: str) -> Any:
    """JSON when it parses (true, 3, {...}), otherwise the text itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except InvalidUserInput as exc:
        fail(str(exc))
    except DuplicateError as exc:
        fail(f"a user with the same username, email or phone already exists ({exc})")


def user_view(user: User) -> JSON:
    """What operators see of a user: never a hash."""
    return {
        "subject": user.subject,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "display_name": user.display_name,
        "claims": user.claims,
        "password_set": user.password_hash is not None,
        "user_code_set": user.user_code_hash is not None,
        "user_code_locked_until": user.user_code_locked_until or None,
        "created_at": int(user.created_at),
        "updated_at": int(user.updated_at),
    }


def _print_user(user: User, as_json: bool) -> None:
    view = user_view(user)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        return
    width = max(len(key) for key in view)
    for key, value in view.items():
        if value is not None:
            shown = value if isinstance(value, str) else json.dumps(value)
            typer.echo(f"{key:<{width}}  {shown}")
