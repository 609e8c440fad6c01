"""Type-specific checks of ``authorization_details`` entries (RFC 9396; item 174).

``payment_initiation`` follows the RFC 9396 §2 example: ``instructedAmount`` {``currency``:
ISO 4217 three capital letters, ``amount``: a decimal string}, ``creditorName`` (string),
``creditorAccount`` {``iban``}, optional ``remittanceInformationUnstructured``. The common
RFC 9396 §2.2 fields (locations, actions, datatypes, privileges: arrays of strings;
identifier: a string) are allowed. Any other field, or a field of the wrong type, is
``invalid_authorization_details``. Other types are accepted as sent (generic rendering).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from backchannel.protocol.errors import InvalidAuthorizationDetails
from backchannel.protocol.model import JSON

_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_COMMON_LISTS = ("locations", "actions", "datatypes", "privileges")
_PAYMENT_FIELDS = {
    "type",
    "identifier",
    *_COMMON_LISTS,
    "instructedAmount",
    "creditorName",
    "creditorAccount",
    "remittanceInformationUnstructured",
}


def check_entry(entry: JSON) -> None:
    _check_common(entry)
    if entry["type"] == "payment_initiation":
        _check_payment(entry)


def _check_common(entry: JSON) -> None:
    for name in _COMMON_LISTS:
        if name in entry and not _strings(entry[name]):
            _fail(f"{name} must be an array of strings")
    if "identifier" in entry and not isinstance(entry["identifier"], str):
        _fail("identifier must be a string")


def _check_payment(entry: JSON) -> None:
    unknown = sorted(set(entry) - _PAYMENT_FIELDS)
    if unknown:
        _fail(f"payment_initiation does not know {', '.join(unknown)}")
    amount = entry.get("instructedAmount")
    if not isinstance(amount, dict) or set(amount) != {"currency", "amount"}:
        _fail("payment_initiation needs instructedAmount with currency and amount")
    if not isinstance(amount["currency"], str) or not _CURRENCY.fullmatch(amount["currency"]):
        _fail("instructedAmount.currency must be an ISO 4217 code")
    if not isinstance(amount["amount"], str) or not _AMOUNT.fullmatch(amount["amount"]):
        _fail("instructedAmount.amount must be a decimal string such as 123.50")
    if not isinstance(entry.get("creditorName"), str) or not entry["creditorName"].strip():
        _fail("payment_initiation needs a creditorName string")
    account = entry.get("creditorAccount")
    if not isinstance(account, dict) or set(account) != {"iban"}:
        _fail("payment_initiation needs creditorAccount with an iban")
    iban = account["iban"]
    if not isinstance(iban, str) or not _IBAN.fullmatch(iban.replace(" ", "")):
        _fail("creditorAccount.iban is not an IBAN")
    remittance = entry.get("remittanceInformationUnstructured")
    if remittance is not None and not isinstance(remittance, str):
        _fail("remittanceInformationUnstructured must be a string")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _fail(message: str) -> NoReturn:
    raise InvalidAuthorizationDetails(message)
