"""A device's signed decision, checked before it reaches ``outcome.decide`` (issue item 4).

In order, each failure refusing the decision with nothing changed:

1. the JWS header says ``alg: ES256`` and ``typ: backchannel-decision+jwt``;
2. the signature verifies with the public key of the device that sent it (the bearer token
   names the device; revoked devices never get this far);
3. the claims are well formed: ``device_id`` is this device, ``request_id`` the one in the
   path, ``decision`` one of approve/deny/report, ``iat`` within 120 s of the server clock,
   ``jti`` a string;
4. the ``jti`` was not seen before (replay guard);
5. the request exists and belongs to the device's user;
6. the stored content still matches its keyed hash (not tampered) and ``content_hash`` is
   the hash of exactly that content;
7. an approval of a request that offered binding choices carries the right ``binding_choice``;
8. an approval that requires user verification carries a valid WebAuthn assertion with UV;
9. ``outcome.decide`` (pending → approved/denied; 409 when no longer pending).

"report" ("This wasn't me") denies, records a report, and pauses that client for that user
for ``devices.report_pause_seconds``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from backchannel.authenticator import assurance, consent, webauthn_uv
from backchannel.protocol import jose
from backchannel.protocol.ciba import outcome
from backchannel.protocol.errors import AccessDenied, InvalidRequest, NotFound
from backchannel.protocol.model import JSON, AuthRequest, Client, Consent, Device, Pause, Report
from backchannel.protocol.provider import Provider

STATEMENT_TYP = "backchannel-decision+jwt"
MAX_AGE_SECONDS = 120
DECISIONS = ("approve", "deny", "report")
RESULTS = {"approve": "approved", "deny": "denied", "report": "reported"}


@dataclass(slots=True, frozen=True)
class Statement:
    decision: str
    content_hash: str
    binding_choice: str | None


async def decide(provider: Provider, device: Device, request_id: str, body: JSON) -> JSON:
    claims = _verified_claims(provider, device, body.get("statement"))
    statement = _statement(provider, device, request_id, claims)
    await _check_replay(provider, claims)
    request, client = await _request_of(provider, device, request_id)
    shown = await _consent(provider, request)
    _check_content(shown, statement)
    if statement.decision == "approve":
        _check_binding_choice(shown, request, statement)
        device, verified = await _user_verification(
            provider, device, request, client, statement, body.get("webauthn")
        )
        acr, amr = assurance.achieved(verified)
        await outcome.decide(
            provider, request, approve=True, channel="device", acr=acr, amr=amr,
            device_id=device.device_id,
        )  # fmt: skip
    else:
        await outcome.decide(
            provider, request, approve=False, channel="device", device_id=device.device_id,
            reported=statement.decision == "report",
        )  # fmt: skip
        if statement.decision == "report":
            await _report(provider, device, request)
    return {"result": RESULTS[statement.decision]}


def _verified_claims(provider: Provider, device: Device, statement: Any) -> JSON:
    if not isinstance(statement, str):
        raise InvalidRequest("statement must be a compact JWS")
    try:
        header = jose.peek_header(statement)
        if header.get("typ") != STATEMENT_TYP:
            raise InvalidRequest(f"the statement's typ must be {STATEMENT_TYP}")
        # The device has one key: whatever kid the header names (if any) means that key.
        key = {**device.public_jwk, **({"kid": header["kid"]} if "kid" in header else {})}
        _, claims = jose.Verifier({"keys": [key]}).verify(statement, ["ES256"])
    except jose.JoseError as exc:
        raise AccessDenied(f"the statement is not signed by this device: {exc}") from None
    return claims


def _statement(provider: Provider, device: Device, request_id: str, claims: JSON) -> Statement:
    if claims.get("device_id") != device.device_id:
        raise AccessDenied("the statement names another device")
    if claims.get("request_id") != request_id:
        raise InvalidRequest("the statement is for another request")
    decision = claims.get("decision")
    if decision not in DECISIONS:
        raise InvalidRequest("decision must be approve, deny or report")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidRequest("the statement needs a numeric iat")
    if abs(provider.clock.now() - iat) > MAX_AGE_SECONDS:
        raise InvalidRequest(f"the statement's iat is not within {MAX_AGE_SECONDS} s of now")
    content_hash = claims.get("content_hash")
    if not isinstance(content_hash, str) or not isinstance(claims.get("jti"), str):
        raise InvalidRequest("the statement needs content_hash and jti strings")
    choice = claims.get("binding_choice")
    return Statement(decision, content_hash, choice if isinstance(choice, str) else None)


async def _check_replay(provider: Provider, claims: JSON) -> None:
    now = provider.clock.now()
    key = f"device-decision:{claims['device_id']}:{claims['jti']}"
    if not await provider.storage.replay.remember(key, now + 2 * MAX_AGE_SECONDS, now):
        raise InvalidRequest("the statement was already used (replayed jti)")


async def _request_of(
    provider: Provider, device: Device, request_id: str
) -> tuple[AuthRequest, Client]:
    request = await provider.storage.requests.get_request(request_id)
    if request is None or request.subject != device.subject:
        raise NotFound("no such request for this device's user")
    client = await provider.storage.clients.get_client(request.client_id)
    if client is None:
        raise NotFound("the request's client no longer exists")
    return request, client


async def _consent(provider: Provider, request: AuthRequest) -> Consent:
    stored = await provider.storage.devices.get_consent(request.id_hash)
    if stored is None:
        raise NotFound("this request has no consent for devices")
    try:
        return consent.verified(provider, stored)
    except consent.ConsentTampered:
        raise InvalidRequest(
            "the stored consent was modified; the request cannot be decided"
        ) from None


def _check_content(shown: Consent, statement: Statement) -> None:
    if not hmac.compare_digest(consent.content_hash(shown.content), statement.content_hash):
        raise InvalidRequest("content_hash does not match the content of this request")


def _check_binding_choice(shown: Consent, request: AuthRequest, statement: Statement) -> None:
    if shown.binding_choices is None:
        return
    if statement.binding_choice != request.binding_message:
        raise AccessDenied("the chosen code is not the one shown on the other device")


async def _user_verification(
    provider: Provider,
    device: Device,
    request: AuthRequest,
    client: Client,
    statement: Statement,
    assertion: Any,
) -> tuple[Device, bool]:
    required = consent.requires_user_verification(client, request)
    if assertion is None:
        if required:
            raise AccessDenied("this request needs user verification (WebAuthn) to approve")
        return device, False
    if not isinstance(assertion, dict):
        raise InvalidRequest("webauthn must be the assertion object")
    updated = await webauthn_uv.verify_assertion(
        provider, device, request.id_hash, statement.content_hash, assertion
    )
    await provider.storage.devices.update_device(updated)
    return updated, True


async def _report(provider: Provider, device: Device, request: AuthRequest) -> None:
    now = provider.clock.now()
    await provider.storage.devices.add_report(
        Report(request.client_id, request.subject, request.id_hash, device.device_id, now)
    )
    until = now + provider.settings.devices.report_pause_seconds
    await provider.storage.devices.set_pause(Pause(request.client_id, request.subject, until))
