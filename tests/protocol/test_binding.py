"""binding_message and user_code (items 42-46, 83, 84)."""

from __future__ import annotations

import pytest

from backchannel.protocol.ciba.binding import check_binding_message
from backchannel.protocol.errors import InvalidBindingMessage
from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    add_person,
    fails,
    new_provider,
    ok,
    only_request,
    post,
    register,
)
from tests.support.clock import FakeClock

FORM = {"scope": "openid", "login_hint": "alice"}


# -- binding_message -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["K2-47", "Zahlung 12,00 €", "确认 🙂", "👩‍👩‍👧 family", "x" * 64, "tab-free  spaces"],
)
def test_item_43_plain_text_and_emoji_are_accepted(message: str) -> None:
    assert check_binding_message(message, 64) == message


def test_item_43_message_is_nfc_normalised_and_counted_after_it() -> None:
    decomposed = "e\u0301" * 64  # 128 code points, 64 characters once composed
    assert check_binding_message(decomposed, 64) == "\u00e9" * 64


@pytest.mark.parametrize("message", ["line\nbreak", "bell\x07", "sep\u2028x", "para\u2029x", "\t"])
def test_item_42_control_characters_are_refused(message: str) -> None:
    with pytest.raises(InvalidBindingMessage):
        check_binding_message(message, 64)


def test_item_43_length_limit_in_characters() -> None:
    assert check_binding_message("🙂" * 64, 64) == "🙂" * 64
    with pytest.raises(InvalidBindingMessage):
        check_binding_message("🙂" * 65, 64)


def test_absent_binding_message_stays_absent() -> None:
    assert check_binding_message(None, 64) is None


@pytest.mark.anyio
async def test_item_84_invalid_binding_message_at_the_endpoint() -> None:
    provider = await new_provider(ciba={"binding_message_max_length": 8})
    await register(provider)
    await add_person(provider)
    await fails(provider, post({**FORM, "binding_message": "123456789"}), "invalid_binding_message")
    await ok(provider, post({**FORM, "binding_message": "Cafe\u0301 ok"}))
    assert (await only_request(provider)).binding_message == "Caf\u00e9 ok"


# -- user_code -------------------------------------------------------------------------------------


async def user_code_setup(
    *, client_uses_codes: bool = True, user_code: str | None = "2468", **ciba: int
) -> Provider:
    provider = await new_provider(clock=FakeClock(), ciba=ciba)
    await register(provider, user_code_parameter=client_uses_codes)
    await add_person(provider, user_code=user_code)
    return provider


async def failures(provider: Provider) -> tuple[int, float]:
    user = await provider.storage.users.get_user("u_alice")
    assert user is not None
    return user.user_code_failures, user.user_code_locked_until


@pytest.mark.anyio
async def test_item_44_right_user_code_is_accepted() -> None:
    provider = await user_code_setup()
    await ok(provider, post({**FORM, "user_code": "2468"}))


@pytest.mark.anyio
async def test_items_44_83_missing_user_code() -> None:
    provider = await user_code_setup()
    await fails(provider, post(FORM), "missing_user_code")


@pytest.mark.anyio
async def test_items_44_83_wrong_user_code_is_counted() -> None:
    provider = await user_code_setup()
    await fails(provider, post({**FORM, "user_code": "1111"}), "invalid_user_code")
    assert await failures(provider) == (1, 0.0)


@pytest.mark.anyio
async def test_item_46_lockout_after_repeated_failures_then_release() -> None:
    provider = await user_code_setup(user_code_max_failures=3, user_code_lockout_seconds=60)
    for _ in range(3):
        await fails(provider, post({**FORM, "user_code": "0000"}), "invalid_user_code")
    assert (await failures(provider))[1] == provider.clock.now() + 60
    description = await fails(provider, post({**FORM, "user_code": "2468"}), "invalid_user_code")
    assert description == "user code locked"
    assert isinstance(provider.clock, FakeClock)
    provider.clock.advance(61)
    await ok(provider, post({**FORM, "user_code": "2468"}))


@pytest.mark.anyio
async def test_item_46_right_code_resets_the_failure_count() -> None:
    provider = await user_code_setup()
    await fails(provider, post({**FORM, "user_code": "0000"}), "invalid_user_code")
    await ok(provider, post({**FORM, "user_code": "2468"}))
    assert (await failures(provider))[0] == 0


@pytest.mark.anyio
@pytest.mark.parametrize("client_uses_codes, user_code", [(False, "2468"), (True, None)])
async def test_item_45_user_code_is_ignored_without_client_flag_or_user_code(
    client_uses_codes: bool, user_code: str | None
) -> None:
    provider = await user_code_setup(client_uses_codes=client_uses_codes, user_code=user_code)
    await ok(provider, post(FORM))
    await ok(provider, post({**FORM, "user_code": "wrong"}))
