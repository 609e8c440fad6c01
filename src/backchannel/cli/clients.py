"""`backchannel clients` commands: register and manage relying parties.

Secrets are printed once, when created or rotated; only their hash is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from backchannel.cli.common import errors, fail, open_provider, run, settings_from
from backchannel.outbound import OutboundError, OutboundRefused, check_url
from backchannel.protocol.errors import InvalidClientMetadata
from backchannel.protocol.model import JSON, AuthMethod, Client, DeliveryMode
from backchannel.protocol.ports import DuplicateError
from backchannel.protocol.provider import Provider
from backchannel.protocol.registration import (
    client_from_metadata,
    client_metadata,
    generate_client_id,
    generate_client_secret,
    hash_client_secret,
    uses_secret,
)
from backchannel.settings import Settings

app = typer.Typer(help="Register and manage clients (relying parties).", no_args_is_help=True)

MIN_OPERATOR_SECRET = 16
SECRET_NOTE = "note: the client secret is shown only now; Backchannel stores only its hash."

ClientIdArg = Annotated[str, typer.Argument(help="The client_id.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
AuthMethodOpt = Annotated[
    AuthMethod | None, typer.Option("--auth-method", help="token_endpoint_auth_method.")
]
NotificationOpt = Annotated[
    str | None,
    typer.Option("--notification-endpoint", help="https callback URL (ping and push modes)."),
]
LogoOpt = Annotated[str | None, typer.Option("--logo-uri", help="Logo shown to the user.")]
PolicyOpt = Annotated[str | None, typer.Option("--policy-uri", help="Privacy policy URL.")]
JwksFileOpt = Annotated[
    str | None, typer.Option("--jwks-file", help="JSON file with the client's public JWK set.")
]
JwksUriOpt = Annotated[str | None, typer.Option("--jwks-uri", help="https URL of the JWK set.")]
UserCodeOpt = Annotated[
    bool | None,
    typer.Option("--user-code/--no-user-code", help="backchannel_user_code_parameter."),
]
BindingChoiceOpt = Annotated[
    bool | None,
    typer.Option(
        "--binding-choice/--no-binding-choice",
        help="Authenticator shows three codes; the user picks the binding_message.",
    ),
]
UserVerificationOpt = Annotated[
    bool | None,
    typer.Option("--require-uv/--no-require-uv", help="Approvals need WebAuthn user verification."),
]
SigningAlgOpt = Annotated[
    str | None,
    typer.Option("--request-signing-alg", help="Signed requests: PS256, ES256 or RS256."),
]
IdTokenAlgOpt = Annotated[
    str | None, typer.Option("--id-token-alg", help="ID token algorithm (default RS256).")
]
ScopeOpt = Annotated[
    str | None, typer.Option("--scope", help='Allowed scopes, e.g. "openid profile email".')
]
DetailsTypesOpt = Annotated[
    str | None,
    typer.Option("--authorization-details-types", help="RAR types, comma separated."),
]
HintIssuerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--hint-token-issuer", help="Trusted login_hint_token issuer: ISSUER=JWKS_FILE (repeat)."
    ),
]


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Client name shown to users.")],
    delivery_mode: Annotated[
        DeliveryMode, typer.Option("--delivery-mode", help="Token delivery: poll, ping or push.")
    ],
    auth_method: AuthMethodOpt = AuthMethod.CLIENT_SECRET_BASIC,
    notification_endpoint: NotificationOpt = None,
    logo_uri: LogoOpt = None,
    policy_uri: PolicyOpt = None,
    jwks_file: JwksFileOpt = None,
    jwks_uri: JwksUriOpt = None,
    user_code: UserCodeOpt = None,
    binding_choice: BindingChoiceOpt = None,
    require_uv: UserVerificationOpt = None,
    request_signing_alg: SigningAlgOpt = None,
    id_token_alg: IdTokenAlgOpt = None,
    scope: ScopeOpt = None,
    authorization_details_types: DetailsTypesOpt = None,
    hint_token_issuer: HintIssuerOpt = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="Choose the id (default: generated).")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="Operator-chosen secret (default: a generated one)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a client. For secret-based methods the secret is printed once."""
    metadata = _metadata(locals(), unset_empty=False)
    if secret is not None and len(secret) < MIN_OPERATOR_SECRET:
        fail(f"client_secret: must be at least {MIN_OPERATOR_SECRET} characters")
    settings = settings_from(ctx)
    with _reported():
        client, shown = run(_add(settings, metadata, secret))
    _print_client(client, as_json, secret=shown)


@app.command("list")
def list_clients(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List registered clients."""
    clients = run(_list(settings_from(ctx)))
    if as_json:
        typer.echo(json.dumps([client_metadata(c) for c in clients], indent=2))
        return
    if not clients:
        typer.echo("no clients")
    for client in clients:
        method = client.token_endpoint_auth_method
        typer.echo(f"{client.client_id}  {client.delivery_mode:<4}  {method:<19}  {client.name}")


@app.command()
def show(ctx: typer.Context, client_id: ClientIdArg, as_json: JsonFlag = False) -> None:
    """Print a client's metadata (never its secret)."""
    _print_client(run(_get(settings_from(ctx), client_id)), as_json)


@app.command()
def update(
    ctx: typer.Context,
    client_id: ClientIdArg,
    name: Annotated[str | None, typer.Option("--name", help="Client name.")] = None,
    delivery_mode: Annotated[
        DeliveryMode | None, typer.Option("--delivery-mode", help="poll, ping or push.")
    ] = None,
    auth_method: AuthMethodOpt = None,
    notification_endpoint: NotificationOpt = None,
    logo_uri: LogoOpt = None,
    policy_uri: PolicyOpt = None,
    jwks_file: JwksFileOpt = None,
    jwks_uri: JwksUriOpt = None,
    user_code: UserCodeOpt = None,
    binding_choice: BindingChoiceOpt = None,
    require_uv: UserVerificationOpt = None,
    request_signing_alg: SigningAlgOpt = None,
    id_token_alg: IdTokenAlgOpt = None,
    scope: ScopeOpt = None,
    authorization_details_types: DetailsTypesOpt = None,
    hint_token_issuer: HintIssuerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the given fields; an empty value ("") removes an optional one."""
    changes = _metadata(locals(), unset_empty=True)
    with _reported():
        client, shown = run(_update(settings_from(ctx), client_id, changes))
    _print_client(client, as_json, secret=shown)


@app.command()
def remove(ctx: typer.Context, client_id: ClientIdArg) -> None:
    """Delete a client."""
    if not run(_remove(settings_from(ctx), client_id)):
        fail(f"no client {client_id!r}", code=1)
    typer.echo(f"removed client {client_id}")


@app.command("rotate-secret")
def rotate_secret(ctx: typer.Context, client_id: ClientIdArg, as_json: JsonFlag = False) -> None:
    """Replace the client's secret with a new generated one, printed once."""
    with _reported():
        client, secret = run(_rotate(settings_from(ctx), client_id))
    _print_client(client, as_json, secret=secret)


async def _add(settings: Settings, metadata: JSON, secret: str | None) -> tuple[Client, str | None]:
    async with open_provider(settings) as provider:
        metadata.setdefault("client_id", generate_client_id(provider.random))
        client = client_from_metadata(metadata, dev_mode=settings.dev_mode, now=_now(provider))
        await _check_outbound_urls(settings, client)
        shown = None
        if uses_secret(client) and secret is not None:
            client.secret_hash = hash_client_secret(provider.hasher, secret, generated=False)
        elif uses_secret(client):
            shown = _generate_secret(provider, client)
        elif secret is not None:
            raise InvalidClientMetadata("client_secret: private_key_jwt clients have no secret")
        await provider.storage.clients.add_client(client)
        return client, shown


async def _list(settings: Settings) -> list[Client]:
    async with open_provider(settings) as provider:
        return await provider.storage.clients.list_clients()


async def _get(settings: Settings, client_id: str) -> Client:
    async with open_provider(settings) as provider:
        return await _existing(provider, client_id)


async def _update(settings: Settings, client_id: str, changes: JSON) -> tuple[Client, str | None]:
    async with open_provider(settings) as provider:
        existing = await _existing(provider, client_id)
        client = client_from_metadata(
            changes, dev_mode=settings.dev_mode, now=_now(provider), existing=existing
        )
        await _check_outbound_urls(settings, client)
        # A client switched to a secret-based method needs a secret now.
        shown = None
        if uses_secret(client) and client.secret_hash is None:
            shown = _generate_secret(provider, client)
        await provider.storage.clients.update_client(client)
        return client, shown


async def _remove(settings: Settings, client_id: str) -> bool:
    async with open_provider(settings) as provider:
        return await provider.storage.clients.remove_client(client_id)


async def _rotate(settings: Settings, client_id: str) -> tuple[Client, str]:
    async with open_provider(settings) as provider:
        client = await _existing(provider, client_id)
        if not uses_secret(client):
            fail(f"client {client_id!r} uses {client.token_endpoint_auth_method}: no secret")
        secret = _generate_secret(provider, client)
        client.updated_at = _now(provider)
        await provider.storage.clients.update_client(client)
        return client, secret


async def _check_outbound_urls(settings: Settings, client: Client) -> None:
    """SSRF guard at registration (item 200): refuse URLs that point at loopback, private,
    link-local or metadata addresses now. A name that does not resolve yet is only warned
    about: every outbound call checks its addresses again."""
    urls = {
        "backchannel_client_notification_endpoint": client.notification_endpoint,
        "jwks_uri": client.jwks_uri,
    }
    for field, url in urls.items():
        if url is None:
            continue
        try:
            await check_url(url, settings=settings)
        except OutboundRefused as exc:
            raise InvalidClientMetadata(f"{field}: {exc}") from None
        except OutboundError as exc:
            errors.print(f"warning: {field}: {exc}", highlight=False, markup=False)


def _generate_secret(provider: Provider, client: Client) -> str:
    """Give the client a new generated secret (fast keyed hash) and return it to show."""
    secret = generate_client_secret(provider.random)
    client.secret_hash = hash_client_secret(provider.hasher, secret, generated=True)
    return secret


async def _existing(provider: Provider, client_id: str) -> Client:
    client = await provider.storage.clients.get_client(client_id)
    if client is None:
        fail(f"no client {client_id!r}", code=1)
    return client


def _now(provider: Provider) -> float:
    return provider.clock.now()


# Command option name -> registration metadata field.
_FIELDS = {
    "client_id": "client_id",
    "name": "client_name",
    "auth_method": "token_endpoint_auth_method",
    "delivery_mode": "backchannel_token_delivery_mode",
    "notification_endpoint": "backchannel_client_notification_endpoint",
    "logo_uri": "logo_uri",
    "policy_uri": "policy_uri",
    "jwks_uri": "jwks_uri",
    "user_code": "backchannel_user_code_parameter",
    "binding_choice": "binding_code_choice",
    "require_uv": "require_user_verification",
    "request_signing_alg": "backchannel_authentication_request_signing_alg",
    "id_token_alg": "id_token_signed_response_alg",
    "scope": "scope",
}


def _metadata(options: dict[str, Any], *, unset_empty: bool) -> JSON:
    """Registration metadata from a command's parameters (its ``locals()``). Options not
    given are left out; with ``unset_empty`` an empty string becomes None (remove it)."""
    values: dict[str, Any] = {field: options.get(opt) for opt, field in _FIELDS.items()}
    values["jwks"] = _read_jwks_option(options.get("jwks_file"))
    details = options.get("authorization_details_types")
    if details is not None:
        values["authorization_details_types"] = (
            re.split(r"[\s,]+", details.strip()) if details else ""
        )
    issuers = options.get("hint_token_issuer")
    if issuers:
        values["login_hint_token_issuers"] = dict(_read_issuer(item) for item in issuers)
    metadata: JSON = {}
    for field, value in values.items():
        if value is None:
            continue
        metadata[field] = None if unset_empty and value == "" else _plain(value)
    return metadata


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, AuthMethod | DeliveryMode) else value


def _read_jwks_option(path: str | None) -> JSON | str | None:
    if not path:
        return path
    return _read_json_file("jwks", path)


def _read_issuer(item: str) -> tuple[str, JSON]:
    issuer, sep, path = item.rpartition("=")
    if not sep or not issuer or not path:
        fail("login_hint_token_issuers: expected ISSUER=JWKS_FILE")
    return issuer, _read_json_file(f"login_hint_token_issuers.{issuer}", path)


def _read_json_file(field: str, path: str) -> JSON:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{field}: cannot read JSON from {path}: {exc}")
    if not isinstance(value, dict):
        fail(f"{field}: {path} does not hold a JSON object")
    return value


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except InvalidClientMetadata as exc:
        fail(str(exc))
    except DuplicateError:
        fail("client_id: a client with this id already exists")


def _print_client(client: Client, as_json: bool, *, secret: str | None = None) -> None:
    data = client_metadata(client)
    if as_json:
        typer.echo(json.dumps({**data, "client_secret": secret} if secret else data, indent=2))
        return
    width = max(len(key) for key in data)
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        typer.echo(f"{key:<{width}}  {shown}")
    if secret:
        typer.echo(f"{'client_secret':<{width}}  {secret}")
        typer.echo(SECRET_NOTE)
