"""The authenticator app end to end (issue 6): `backchannel serve` in a subprocess, the
relying party over httpx, Debian's chromium as the user's phone.

Enrol with a one-time code (or a password), receive a request over SSE within a second of
bc-authorize, read the binding message and the payment on screen, approve, deny or report,
and approve with a WebAuthn assertion (Chromium's virtual authenticator) where user
verification is demanded — the id_token's acr/amr say what happened (item 5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, CDPSession, Locator, Page, expect

from tests.e2e.support import (
    CLIENT_ID,
    CLIENT_SECRET,
    OP,
    PASSWORD,
    bc_authorize,
    enrolment_code,
    has_horizontal_scroll,
    jwt_claims,
    new_user,
    publish_screenshot,
    screenshot,
    start_op,
    subject_of,
    token_poll,
    unnamed_controls,
)
from tests.events.test_redis_bus import redis_available

pytestmark = pytest.mark.slow

MESSAGE = "Заказ 4711 ✅ 注文 🛒"
PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "1234.50"},
    "creditorName": "Müller & Söhne GmbH",
    "creditorAccount": {"iban": "DE02100100109307118603"},
}
ACR_UV = "urn:backchannel:acr:device-key+uv"
ACR_KEY = "urn:backchannel:acr:device-key"


def enrol_with_code(page: Page, op: OP, username: str) -> None:
    code = enrolment_code(op, username)
    page.goto(f"{op.app_url}#enrol={code}")
    expect(page.get_by_role("textbox", name="Enrolment code")).to_have_value(code)
    page.get_by_role("button", name="Enrol with code").click()
    wait_until_live(page)


def wait_until_live(page: Page) -> None:
    expect(page.get_by_role("heading", name="Requests")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def request_card(page: Page) -> Locator:
    return page.locator("li.request").first


def outcome(card: Locator) -> Locator:
    return card.locator(".outcome")


def test_enrol_with_a_code_and_approve_a_payment_seen_within_a_second(page: Page, op: OP) -> None:
    username = new_user(op)
    enrol_with_code(page, op, username)
    expect(page.get_by_text("Signed in as Ana Tester")).to_be_visible()

    auth_req_id = bc_authorize(op, username, MESSAGE, authorization_details=[PAYMENT])
    started = time.monotonic()
    card = request_card(page)
    expect(card.locator(".binding-message")).to_have_text(MESSAGE, timeout=1000)
    assert time.monotonic() - started < 1.0
    expect(card.locator(".amount")).to_have_text("€1,234.50")
    expect(card.get_by_text("Müller & Söhne GmbH")).to_be_visible()
    expect(page.locator("#announcer")).to_have_text("New request from Nordbank Checkout.")
    assert not has_horizontal_scroll(page)
    assert unnamed_controls(page) == []
    shot = screenshot(page, "consent-payment")
    publish_screenshot(shot, "authenticator-consent.png")

    card.get_by_role("button", name="Approve").click()
    expect(outcome(card)).to_have_text("Approved. You can go back to the other screen.")
    tokens = token_poll(op, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"].lower() == "bearer"
    assert body["authorization_details"] == [PAYMENT]
    claims = jwt_claims(body["id_token"])
    assert claims["acr"] == ACR_KEY
    assert claims["amr"] == ["swk"]
    screenshot(page, "consent-approved")


def test_enrol_with_password_and_deny_gives_access_denied(page: Page, op: OP) -> None:
    username = new_user(op)
    page.goto(op.app_url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    wait_until_live(page)

    auth_req_id = bc_authorize(op, username, "Login 🔐 ログイン")
    card = request_card(page)
    expect(card.locator(".binding-message")).to_have_text("Login 🔐 ログイン")
    card.get_by_role("button", name="Deny").click()
    expect(outcome(card)).to_have_text("Denied. Nothing was shared.")
    refused = token_poll(op, auth_req_id)
    assert refused.status_code == 400
    assert refused.json()["error"] == "access_denied"


def test_a_wrong_password_is_refused_without_saying_why(page: Page, op: OP) -> None:
    username = new_user(op)
    page.goto(op.app_url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That did not work. Check what you typed, or ask for a new code."
    )
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()


def test_this_was_not_me_denies_and_records_a_report(page: Page, op: OP) -> None:
    username = new_user(op)
    enrol_with_code(page, op, username)
    auth_req_id = bc_authorize(op, username, "Ποιος είσαι; 🤔")
    card = request_card(page)
    expect(card.locator(".binding-message")).to_have_text("Ποιος είσαι; 🤔")
    card.get_by_role("button", name="This wasn't me").click()
    expect(outcome(card)).to_contain_text("Reported.")
    refused = token_poll(op, auth_req_id)
    assert refused.json()["error"] == "access_denied"
    reports = json.loads(op.cli("reports", "list", "--json"))
    mine = [r for r in reports if r["subject"] == subject_of(op, username)]
    assert len(mine) == 1
    assert mine[0]["client_id"] == CLIENT_ID
    assert mine[0]["device_id"].startswith("d_")


def test_a_code_is_single_use(page: Page, op: OP, context: BrowserContext) -> None:
    username = new_user(op)
    code = enrolment_code(op, username)
    page.goto(f"{op.app_url}#enrol={code}")
    page.get_by_role("button", name="Enrol with code").click()
    wait_until_live(page)
    second = context.browser.new_context() if context.browser else None
    assert second is not None
    try:
        other = second.new_page()
        other.goto(f"{op.app_url}#enrol={code}")
        other.get_by_role("button", name="Enrol with code").click()
        expect(other.get_by_role("alert")).to_contain_text("That did not work.")
    finally:
        second.close()


def test_requests_still_arrive_by_polling_when_the_stream_is_unavailable(
    op: OP, context: BrowserContext
) -> None:
    """The pull fallback: with the event stream refused, the inbox is polled every 5 s."""
    page = context.new_page()
    page.route("**/authenticator/api/events", lambda route: route.abort())
    username = new_user(op)
    code = enrolment_code(op, username)
    page.goto(f"{op.app_url}#enrol={code}")
    page.get_by_role("button", name="Enrol with code").click()
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling")
    bc_authorize(op, username, "Poll 4711")
    expect(request_card(page).locator(".binding-message")).to_have_text("Poll 4711", timeout=7000)


@dataclass
class VirtualAuthenticator:
    session: CDPSession
    authenticator_id: str

    def credentials(self) -> list[dict[str, Any]]:
        found = self.session.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        credentials: list[dict[str, Any]] = found["credentials"]
        return credentials


@pytest.fixture
def virtual_authenticator(page: Page) -> Iterator[VirtualAuthenticator]:
    """Chromium's virtual platform authenticator (DevTools protocol), with UV."""
    session = page.context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    added = session.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    yield VirtualAuthenticator(session, added["authenticatorId"])
    session.detach()


def test_item_5_user_verification_with_webauthn_is_claimed_in_acr_and_amr(
    page: Page, op: OP, virtual_authenticator: VirtualAuthenticator
) -> None:
    username = new_user(op)
    enrol_with_code(page, op, username)
    page.get_by_role("button", name="Use fingerprint / face / PIN").click()
    expect(page.locator("#settings-status")).to_have_text(
        "Fingerprint / face / PIN is set up for this device."
    )
    assert len(virtual_authenticator.credentials()) == 1

    auth_req_id = bc_authorize(op, username, "Pay 4711 💶", acr_values=ACR_UV)
    card = request_card(page)
    expect(card.locator(".binding-message")).to_have_text("Pay 4711 💶")
    card.get_by_role("button", name="Approve with fingerprint / face / PIN").click()
    expect(outcome(card)).to_have_text("Approved. You can go back to the other screen.")
    tokens = token_poll(op, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    claims = jwt_claims(tokens.json()["id_token"])
    assert claims["acr"] == ACR_UV
    assert set(claims["amr"]) >= {"swk", "hwk", "user"}
    assert virtual_authenticator.credentials()[0]["signCount"] >= 2


@pytest.fixture
def op_on_redis(tmp_path: Path) -> Iterator[OP]:
    """A provider whose event bus reaches other processes: `backchannel devices revoke`
    (the CLI, another process) then wakes the server's open event streams at once."""
    if not redis_available():
        pytest.skip("Redis at 127.0.0.1:6379 does not answer")
    with start_op(tmp_path, BACKCHANNEL_EVENTS__BACKEND="redis") as running:
        yield running


def test_a_revoked_device_is_sent_back_to_enrolment_at_once(page: Page, op_on_redis: OP) -> None:
    op = op_on_redis
    username = new_user(op)
    enrol_with_code(page, op, username)
    devices = json.loads(op.cli("devices", "list", username, "--json"))
    assert len(devices) == 1
    op.cli("devices", "revoke", devices[0]["device_id"])
    revoked_at = time.monotonic()
    # The revoke wakes the device's stream over the bus; the stream ends, and the app finds
    # its token refused — well before the 15 s keep-alive.
    expect(page.get_by_role("alert")).to_have_text(
        "This device was revoked. Set it up again to keep using it.", timeout=5_000
    )
    assert time.monotonic() - revoked_at < 3.0
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()
    assert page.evaluate(
        """() => new Promise((resolve) => {
            const open = indexedDB.open("backchannel-authenticator", 1);
            open.onsuccess = () => {
                const read = open.result.transaction("device").objectStore("device").get("current");
                read.onsuccess = () => resolve(read.result === undefined);
            };
        })"""
    )


def test_binding_choice_the_user_picks_the_code_shown_on_the_consumption_device(
    page: Page, op: OP
) -> None:
    """Anti push-bombing (item 6): the app shows three codes, only the real one approves."""
    op.cli("clients", "add", "--name", "Till 7", "--delivery-mode", "poll",
           "--client-id", "till-7", "--secret", CLIENT_SECRET, "--scope", "openid profile",
           "--binding-choice")  # fmt: skip
    username = new_user(op)
    enrol_with_code(page, op, username)
    auth_req_id = bc_authorize(op, username, "K7P2", client_id="till-7")
    card = request_card(page)
    expect(card.get_by_role("radio")).to_have_count(3)
    assert card.locator(".binding-message").count() == 0
    card.get_by_role("button", name="Approve").click()
    expect(outcome(card)).to_have_text("Pick the code shown on the other screen first.")
    card.get_by_role("radio", name="K7P2", exact=True).check()
    screenshot(page, "consent-binding-choice")
    card.get_by_role("button", name="Approve").click()
    expect(outcome(card)).to_have_text("Approved. You can go back to the other screen.")
    assert token_poll(op, auth_req_id, client_id="till-7").status_code == 200
