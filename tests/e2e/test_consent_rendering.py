"""The consent screen's rendering (issue 6, item 3; checklist items 143, 146, 147), driven with
Consent objects shaped as the device API sends them, in the real app page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import OP, has_horizontal_scroll, screenshot, unnamed_controls

pytestmark = pytest.mark.slow

PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "1234.50"},
    "creditorName": "Müller & Söhne GmbH",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Invoice 2024-117",
}


def consent(**content_overrides: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "client": {"name": "Nordbank Checkout", "logo_uri": None, "policy_uri": None},
        "binding_message": "Заказ 4711 ✅ 注文 🛒",
        "scopes": [
            {"scope": "openid", "description": "Confirm it is you"},
            {"scope": "profile", "description": "Your name and profile"},
        ],
        "authorization_details": None,
        "acr_values": [],
    }
    content.update(content_overrides)
    return {
        "request_id": "hmac:test",
        "content": json.dumps(content, ensure_ascii=False, sort_keys=True),
        "content_hash": "unused-here",
        "expires_at": 4_000_000_000,
        "requires_user_verification": False,
        "binding_choices": None,
    }


def render(page: Page, op: OP, shown: dict[str, Any]) -> None:
    page.goto(op.app_url)
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()
    page.evaluate(
        """async (shown) => {
            const { renderConsent } = await import(new URL("consent.js", location.href));
            const item = renderConsent(shown, async (decision, choice) => {
                window.decided = [decision, choice];
                return `sent ${decision}`;
            });
            document.getElementById("requests").prepend(item);
            document.getElementById("enrol-screen").hidden = true;
            document.getElementById("home-screen").hidden = false;
            document.getElementById("empty").hidden = true;
        }""",
        shown,
    )


def test_item_143_binding_message_is_shown_verbatim(page: Page, op: OP) -> None:
    render(page, op, consent())
    message = page.locator(".binding-message")
    expect(message).to_have_text("Заказ 4711 ✅ 注文 🛒")
    expect(page.get_by_role("heading", name="Nordbank Checkout", exact=True)).to_be_visible()
    expect(page.get_by_text("Your name and basic profile")).to_be_visible()


def test_markup_in_server_values_is_text_not_html(page: Page, op: OP) -> None:
    hostile = '<img src=x onerror="window.pwned=1"><b>4711</b>'
    details = [{"type": "<script>x</script>", "note": "<i>hi</i>"}]
    render(page, op, consent(binding_message=hostile, authorization_details=details))
    expect(page.locator(".binding-message")).to_have_text(hostile)
    assert page.locator(".consent img, .consent b, .consent i, .consent script").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(page.get_by_text("<i>hi</i>")).to_be_visible()


def test_item_146_payment_is_rendered_by_its_template(page: Page, op: OP) -> None:
    render(page, op, consent(authorization_details=[PAYMENT]))
    expect(page.locator(".amount")).to_have_text("€1,234.50")
    expect(page.get_by_text("Müller & Söhne GmbH")).to_be_visible()
    expect(page.locator(".iban")).to_have_text("DE02 1001 0010 9307 1186 03")
    expect(page.get_by_text("Invoice 2024-117")).to_be_visible()
    assert not has_horizontal_scroll(page)


def test_item_146_other_types_fall_back_to_key_value_rows(page: Page, op: OP) -> None:
    detail = {
        "type": "account_information",
        "actions": ["read_balances", "read_transactions"],
        "locations": {"bank": "https://example.com/accounts"},
    }
    render(page, op, consent(authorization_details=[detail]))
    expect(page.get_by_role("heading", name="account_information")).to_be_visible()
    expect(page.get_by_text("read_balances, read_transactions")).to_be_visible()
    expect(page.get_by_text("locations › bank")).to_be_visible()


def test_a_foreign_logo_is_not_loaded_and_the_initial_is_shown(page: Page, op: OP) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    client = {"name": "évian Bank", "logo_uri": "https://cdn.example.com/logo.png"}
    render(page, op, consent(client=client))
    expect(page.locator(".client-initial")).to_have_text("É")
    assert page.locator(".consent img").count() == 0
    assert not [url for url in requested if "example.com" in url]


def test_a_same_origin_logo_is_shown(page: Page, op: OP) -> None:
    client = {"name": "Nordbank", "logo_uri": f"{op.issuer}/authenticator/icon-192.png"}
    render(page, op, consent(client=client))
    logo = page.locator("img.client-logo")
    expect(logo).to_be_visible()
    # Laid out is not yet loaded: wait until the image has loaded or failed, then check.
    # (expect polls the element's property; wait_for_function would poll with eval, which
    # the app's Content-Security-Policy refuses whenever the first check comes too early.)
    expect(logo).to_have_js_property("complete", True)
    expect(logo).to_have_js_property("naturalWidth", 192)


def test_item_147_deny_is_as_prominent_as_approve(page: Page, op: OP) -> None:
    render(page, op, consent(authorization_details=[PAYMENT]))
    deny = page.get_by_role("button", name="Deny").bounding_box()
    approve = page.get_by_role("button", name="Approve").bounding_box()
    assert deny and approve
    assert deny["width"] >= approve["width"] and deny["height"] >= approve["height"]
    page.keyboard.press("Tab")  # skip link first
    focus_order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        focus_order.append(page.evaluate("document.activeElement.textContent"))
    assert focus_order.index("Deny") < focus_order.index("Approve")
    assert unnamed_controls(page) == []


def test_binding_choices_must_be_picked_before_approving(page: Page, op: OP) -> None:
    shown = consent(binding_message=None)
    shown["binding_choices"] = ["K7P2", "K4X9", "M7P2"]
    render(page, op, shown)
    assert page.locator(".binding-message").count() == 0
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Pick the code shown on the other screen first.")).to_be_visible()
    assert page.evaluate("window.decided") is None
    page.get_by_role("radio", name="K4X9").check()
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("sent approve")).to_be_visible()
    assert page.evaluate("window.decided") == ["approve", "K4X9"]


def test_the_consent_screen_fits_360_pixels(page: Page, op: OP) -> None:
    long_words = "Überweisungsbestätigungsnummer" * 2
    render(page, op, consent(binding_message=long_words[:64], authorization_details=[PAYMENT]))
    assert not has_horizontal_scroll(page)
    assert page.viewport_size == {"width": 360, "height": 740}
    screenshot(page, "consent-rendering-long-message")
