"""`backchannel users ...` as a real subprocess on SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow


def _json(cli: Cli, *args: str, input: str | None = None) -> Any:
    result = cli(*args, "--json", input=input)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_add_normalises_and_never_shows_hashes(cli: Cli) -> None:
    user = _json(
        cli, "users", "add", "--username", "Alice", "--email", "Alice@Example.com",
        "--phone", "+1 (555) 555-0100", "--name", "Alice A",
        "--claim", "email_verified=true", "--claim", "given_name=Alice",
        "--password-stdin", input="a long password\n",
    )  # fmt: skip
    assert user["subject"].startswith("u_")
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["phone"] == "+15555550100"
    assert user["claims"] == {"email_verified": True, "given_name": "Alice"}
    assert user["password_set"] is True
    assert user["user_code_set"] is False
    shown = cli("users", "show", "alice@example.com")
    assert shown.returncode == 0, shown.stderr
    assert user["subject"] in shown.stdout
    assert "argon2" not in shown.stdout and "a long password" not in shown.stdout
    assert b"a long password" not in (cli.home / "bc.db").read_bytes()


def test_show_finds_by_subject_username_email_phone(cli: Cli) -> None:
    user = _json(cli, "users", "add", "--username", "bob", "--phone", "+15555550111")
    for hint in (user["subject"], "BOB", "+1 555 555 0111"):
        assert _json(cli, "users", "show", hint)["subject"] == user["subject"], hint
    missing = cli("users", "show", "carol")
    assert missing.returncode == 1
    assert "carol" in missing.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--email", "not-an-email"], "email"),
        (["--phone", "555-0100"], "phone"),
        (["--claim", "sub=x"], "claims.sub"),
        (["--claim", "novalue"], "claims"),
    ],
)
def test_invalid_input_exits_2_naming_the_field(cli: Cli, args: list[str], field: str) -> None:
    result = cli("users", "add", "--username", "dave", *args)
    assert result.returncode == 2
    assert f"{field}:" in result.stderr
    assert _json(cli, "users", "list") == []


def test_duplicates_exit_2(cli: Cli) -> None:
    _json(cli, "users", "add", "--username", "erin", "--email", "erin@example.com")
    for args in (["--username", "ERIN"], ["--username", "erin2", "--email", "Erin@example.com"]):
        result = cli("users", "add", *args)
        assert result.returncode == 2, args
        assert "already exists" in result.stderr
    assert len(_json(cli, "users", "list")) == 1


def test_update_changes_attributes_and_claims(cli: Cli) -> None:
    _json(cli, "users", "add", "--username", "frank", "--email", "f@example.com", "--claim", "a=1")
    updated = _json(
        cli, "users", "update", "frank", "--name", "Frank F", "--email", "",
        "--claim", 'address={"country": "NL"}', "--remove-claim", "a",
    )  # fmt: skip
    assert updated["display_name"] == "Frank F"
    assert updated["email"] is None
    assert updated["claims"] == {"address": {"country": "NL"}}
    bad = cli("users", "update", "frank", "--phone", "12")
    assert bad.returncode == 2
    assert "phone:" in bad.stderr


def test_set_password_and_user_code_from_stdin_or_value(cli: Cli) -> None:
    _json(cli, "users", "add", "--username", "gina")
    result = cli("users", "set-password", "gina", "--stdin", input="new password!\n")
    assert result.returncode == 0, result.stderr
    assert "new password!" not in result.stdout
    code = cli("users", "set-user-code", "gina", "--value", "4711")
    assert code.returncode == 0, code.stderr
    shown = _json(cli, "users", "show", "gina")
    assert shown["password_set"] is True and shown["user_code_set"] is True
    too_short = cli("users", "set-password", "gina", "--stdin", input="short\n")
    assert too_short.returncode == 2
    assert "password:" in too_short.stderr


def test_set_password_prompts_hidden_by_default(cli: Cli) -> None:
    _json(cli, "users", "add", "--username", "hank")
    result = cli("users", "set-password", "hank", input="prompted pw\nprompted pw\n")
    assert result.returncode == 0, result.stderr
    assert "prompted pw" not in result.stdout
    assert _json(cli, "users", "show", "hank")["password_set"] is True


def test_remove(cli: Cli) -> None:
    user = _json(cli, "users", "add", "--username", "ivy")
    assert cli("users", "remove", "ivy").returncode == 0
    assert _json(cli, "users", "list") == []
    assert cli("users", "remove", user["subject"]).returncode == 1
