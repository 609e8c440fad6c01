"""A running provider for the browser tests, and the relying party's side (httpx)."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from tests.support.http import free_port, run_cli, running_server, server_env

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DOCS = Path(__file__).resolve().parents[2] / "docs"
CLIENT_ID = "nordbank-shop"
CLIENT_SECRET = "e2e-client-secret-0123456789abcdef"
CLIENT_NAME = "Nordbank Checkout"
PASSWORD = "correct horse battery staple"
CIBA_GRANT = "urn:openid:params:grant-type:ciba"


@dataclass(frozen=True)
class OP:
    """The provider under test. The browser uses ``localhost`` (a valid WebAuthn RP id);
    the relying party talks to 127.0.0.1 directly."""

    env: dict[str, str]
    port: int

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def app_url(self) -> str:
        return f"{self.issuer}/authenticator/"

    @property
    def rp_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, input: str | None = None) -> str:
        done = run_cli(self.env, *args, input=input)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout


@contextmanager
def start_op(var_dir: Path, **extra_env: str) -> Iterator[OP]:
    port = free_port()
    env = server_env(var_dir, port, BACKCHANNEL_ISSUER=f"http://localhost:{port}", **extra_env)
    with running_server(env):
        op = OP(env=env, port=port)
        op.cli(
            "clients", "add", "--name", CLIENT_NAME, "--delivery-mode", "poll",
            "--client-id", CLIENT_ID, "--secret", CLIENT_SECRET,
            "--scope", "openid profile email",
            "--authorization-details-types", "payment_initiation,account_information",
        )  # fmt: skip
        yield op


def new_user(op: OP, display_name: str = "Ana Tester") -> str:
    username = f"user-{uuid.uuid4().hex[:8]}"
    op.cli("users", "add", "--username", username, "--name", display_name,
           "--password-stdin", input=PASSWORD)  # fmt: skip
    return username


def enrolment_code(op: OP, username: str) -> str:
    """A one-time code from `backchannel devices enrol-code USER --json`."""
    issued = json.loads(op.cli("devices", "enrol-code", username, "--json"))
    assert issued["url"] == f"{op.app_url}#enrol={issued['code']}"
    code = issued["code"]
    assert isinstance(code, str)
    return code


def subject_of(op: OP, username: str) -> str:
    subject = json.loads(op.cli("users", "show", username, "--json"))["subject"]
    assert isinstance(subject, str)
    return subject


def bc_authorize(
    op: OP, username: str, binding_message: str, client_id: str = CLIENT_ID, **extra: Any
) -> str:
    form = {"scope": "openid profile", "login_hint": username, "binding_message": binding_message}
    form.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    response = httpx.post(
        f"{op.rp_base}/bc-authorize", data=form, auth=(client_id, CLIENT_SECRET), timeout=10
    )
    assert response.status_code == 200, response.text
    auth_req_id = response.json()["auth_req_id"]
    assert isinstance(auth_req_id, str)
    return auth_req_id


def token_poll(op: OP, auth_req_id: str, client_id: str = CLIENT_ID) -> httpx.Response:
    return httpx.post(
        f"{op.rp_base}/token",
        data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id},
        auth=(client_id, CLIENT_SECRET),
        timeout=10,
    )


def jwt_claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def publish_screenshot(shot: Path, doc_name: str) -> None:
    """Copy a screenshot into docs/ when it is missing there, or when
    BACKCHANNEL_UPDATE_DOC_SCREENSHOTS=1 (so a test run does not rewrite tracked files)."""
    target = DOCS / doc_name
    if not target.exists() or os.environ.get("BACKCHANNEL_UPDATE_DOC_SCREENSHOTS") == "1":
        shutil.copyfile(shot, target)


def has_horizontal_scroll(page: Page) -> bool:
    width: bool = page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    return width


def unnamed_controls(page: Page) -> list[str]:
    """Visible buttons, inputs and links without an accessible name (via the a11y tree)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('button, input, select, textarea, a[href]')]
            .filter((el) => el.offsetParent !== null || el.getClientRects().length)
            .filter((el) => {
              const labelled = el.labels && el.labels.length
                && [...el.labels].some((l) => l.textContent.trim());
              const aria = (el.getAttribute('aria-label') || '').trim()
                || (el.getAttribute('aria-labelledby') || '').trim();
              const text = el.tagName === 'INPUT' ? '' : el.textContent.trim();
              return !(labelled || aria || text);
            })
            .map((el) => el.outerHTML.slice(0, 80))"""
    )
    return found


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
