"""``binding_message`` and ``user_code`` checks (CIBA §7.1, §7.1.2; items 42-46, 83, 84).

binding_message policy (item 43): any Unicode text, emoji included, is accepted after NFC
normalisation, except control characters (category Cc), surrogates and the line and
paragraph separators (U+2028, U+2029): the message is shown on one line on both devices.
Its length, counted in characters after normalisation, is at most
``ciba.binding_message_max_length`` (64 by default).

user_code (items 44-46): checked only when the client registered
``backchannel_user_code_parameter`` and the user has set a code; otherwise a sent code is
ignored (item 45). Wrong codes are counted per user and lock the code for
``ciba.user_code_lockout_seconds`` after ``ciba.user_code_max_failures`` failures.
"""

from __future__ import annotations

import unicodedata

from backchannel.protocol.errors import InvalidBindingMessage, InvalidUserCode, MissingUserCode
from backchannel.protocol.model import Client, User
from backchannel.protocol.provider import Provider

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def check_binding_message(message: str | None, max_length: int) -> str | None:
    """The NFC-normalised message, or ``InvalidBindingMessage``."""
    if message is None:
        return None
    normalised = unicodedata.normalize("NFC", message)
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in normalised):
        raise InvalidBindingMessage("binding_message must not contain control characters")
    if len(normalised) > max_length:
        raise InvalidBindingMessage(f"binding_message is longer than {max_length} characters")
    return normalised


async def check_user_code(
    provider: Provider, client: Client, user: User, user_code: str | None
) -> None:
    if not client.user_code_parameter or user.user_code_hash is None:
        return
    if user_code is None:
        raise MissingUserCode("this client must send the user's user_code")
    now = provider.clock.now()
    if user.user_code_locked_until > now:
        raise InvalidUserCode("user code locked")
    if not provider.hasher.verify(user_code, user.user_code_hash):
        ciba = provider.settings.ciba
        await provider.storage.users.record_user_code_failure(
            user.subject, now, ciba.user_code_max_failures, ciba.user_code_lockout_seconds
        )
        raise InvalidUserCode("wrong user code")
    if user.user_code_failures > 0:
        await provider.storage.users.reset_user_code_failures(user.subject)
