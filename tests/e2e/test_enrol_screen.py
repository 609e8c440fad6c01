"""The enrolment screen (issue 6, items 1 and 8): the QR link's code is read from the URL
fragment, the screen fits 360 px, every control has a name, the app is installable."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    OP,
    has_horizontal_scroll,
    publish_screenshot,
    screenshot,
    unnamed_controls,
)

pytestmark = pytest.mark.slow


def test_the_enrolment_code_comes_from_the_fragment_and_leaves_the_address_bar(
    page: Page, op: OP
) -> None:
    page.goto(f"{op.app_url}#enrol=ABCD-EFGH-2345")
    expect(page.get_by_role("textbox", name="Enrolment code")).to_have_value("ABCD-EFGH-2345")
    assert page.url == op.app_url
    expect(page.get_by_role("button", name="Enrol with code")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("textbox", name="Username")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")


def test_the_enrolment_screen_fits_360_pixels_and_names_every_control(page: Page, op: OP) -> None:
    page.goto(op.app_url)
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()
    assert not has_horizontal_scroll(page)
    assert unnamed_controls(page) == []
    shot = screenshot(page, "enrol-screen")
    publish_screenshot(shot, "authenticator-enrol.png")


def test_an_empty_code_is_explained_and_focused(page: Page, op: OP) -> None:
    page.goto(op.app_url)
    page.get_by_role("button", name="Enrol with code").click()
    expect(page.get_by_role("alert")).to_have_text("Type the enrolment code.")
    expect(page.get_by_role("textbox", name="Enrolment code")).to_be_focused()
    expect(page.get_by_role("textbox", name="Enrolment code")).to_have_attribute(
        "aria-invalid", "true"
    )


def test_the_keyboard_reaches_every_control_with_a_visible_focus(page: Page, op: OP) -> None:
    page.goto(op.app_url)
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()
    reached = []
    for _ in range(7):  # skip link, name, code, its button, username, password, sign in
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                """() => {
                    const el = document.activeElement;
                    const style = getComputedStyle(el);
                    return [el.id || el.textContent.trim(), style.outlineStyle !== 'none'];
                }"""
            )
        )
    names = [name for name, _ in reached]
    for control in (
        "device-name",
        "enrol-code",
        "Enrol with code",
        "username",
        "password",
        "Sign in",
    ):
        assert control in names
    assert [name for name, visible in reached if not visible] == []


def test_the_app_is_an_installable_pwa(page: Page, op: OP) -> None:
    page.goto(op.app_url)
    expect(page.get_by_role("heading", name="Set up this device")).to_be_visible()
    scope = page.evaluate(
        """async () => {
            const registration = await navigator.serviceWorker.ready;
            return registration.scope;
        }"""
    )
    assert scope == op.app_url
    manifest = page.evaluate(
        """async () => {
            const link = document.querySelector('link[rel=manifest]');
            return (await fetch(link.href)).json();
        }"""
    )
    assert manifest["display"] == "standalone"
    cached = page.evaluate(
        """async () => {
            const names = await caches.keys();
            const cache = await caches.open(names[0]);
            return (await cache.keys()).map((request) => new URL(request.url).pathname);
        }"""
    )
    assert "/authenticator/app.js" in cached
    assert "/authenticator/consent.js" in cached
