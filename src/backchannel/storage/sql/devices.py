"""Devices, enrolment codes, consents, notices, reports, pauses and server secrets in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, bindparam, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import (
    Consent,
    Device,
    EnrolmentCode,
    Pause,
    PushSubscription,
    Report,
    WebAuthnCredential,
)
from backchannel.protocol.ports import DuplicateError, MissingError
from backchannel.storage.sql.dialect import upsert_insert
from backchannel.storage.sql.engine import Database, read_engine
from backchannel.storage.sql.kept_reads import NOT_KEPT, KeptReads, copier, kept_reads
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables_devices import (
    consents,
    device_notices,
    device_pauses,
    device_reports,
    devices,
    enrolment_codes,
    server_secrets,
)

_DEVICE_BY_ID = select(devices).where(devices.c.device_id == bindparam("b_id"))
_DEVICE_BY_TOKEN = select(devices).where(devices.c.token_hash == bindparam("b_token"))
_TOUCH = (
    update(devices)
    .where(devices.c.device_id == bindparam("b_id"))
    .values(last_seen_at=bindparam("b_seen_at"))
)
_REVOKE = (
    update(devices)
    .where(devices.c.device_id == bindparam("b_id"), devices.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("b_now"))
)
# One conditional UPDATE: two processes presenting the same code cannot both win.
_USE_CODE = (
    update(enrolment_codes)
    .where(
        enrolment_codes.c.code_hash == bindparam("b_hash"),
        enrolment_codes.c.used_at.is_(None),
        enrolment_codes.c.expires_at > bindparam("b_now"),
    )
    .values(used_at=bindparam("b_now"))
    .returning(*enrolment_codes.c)
)
_CONSENT = select(consents).where(consents.c.id_hash == bindparam("b_id"))
_COUNT_NOTICES = select(func.count()).where(
    device_notices.c.subject == bindparam("b_subject"), device_notices.c.at >= bindparam("b_since")
)
_PAUSE = select(device_pauses).where(
    device_pauses.c.client_id == bindparam("b_client"),
    device_pauses.c.subject == bindparam("b_subject"),
)
_SECRET = select(server_secrets.c.value).where(server_secrets.c.name == bindparam("b_name"))


def device_to_row(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "subject": device.subject,
        "name": device.name,
        "public_jwk": device.public_jwk,
        "token_hash": device.token_hash,
        "created_at": device.created_at,
        "last_seen_at": device.last_seen_at,
        "revoked_at": device.revoked_at,
        "credentials": [_credential_to_json(c) for c in device.credentials],
        "push": _push_to_json(device.push),
    }


def device_from_row(row: RowMapping) -> Device:
    push = row["push"]
    return Device(
        device_id=row["device_id"],
        subject=row["subject"],
        name=row["name"],
        public_jwk=row["public_jwk"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        revoked_at=row["revoked_at"],
        credentials=tuple(_credential_from_json(c) for c in row["credentials"]),
        push=PushSubscription(**push) if push else None,
    )


def _credential_to_json(credential: WebAuthnCredential) -> dict[str, Any]:
    return {
        "credential_id": credential.credential_id,
        "public_key": credential.public_key,
        "sign_count": credential.sign_count,
        "transports": list(credential.transports),
    }


def _credential_from_json(value: dict[str, Any]) -> WebAuthnCredential:
    return WebAuthnCredential(
        credential_id=value["credential_id"],
        public_key=value["public_key"],
        sign_count=int(value["sign_count"]),
        transports=tuple(value["transports"]),
    )


def _push_to_json(push: PushSubscription | None) -> dict[str, str] | None:
    if push is None:
        return None
    return {"endpoint": push.endpoint, "p256dh": push.p256dh, "auth": push.auth}


def consent_to_row(consent: Consent) -> dict[str, Any]:
    """The ``consents`` row (also written by ``SqlAuthRequestStore.create_request``)."""
    return {
        "id_hash": consent.id_hash,
        "subject": consent.subject,
        "content": consent.content,
        "content_mac": consent.content_mac,
        "created_at": consent.created_at,
        "binding_choices": list(consent.binding_choices)
        if consent.binding_choices is not None
        else None,
    }


def _consent_from_row(row: RowMapping) -> Consent:
    choices = row["binding_choices"]
    return Consent(
        id_hash=row["id_hash"],
        subject=row["subject"],
        content=row["content"],
        content_mac=row["content_mac"],
        created_at=row["created_at"],
        binding_choices=tuple(choices) if choices is not None else None,
    )


_ALL_DEVICES = select(devices).order_by(devices.c.created_at, devices.c.device_id)
# Bound, not literal: one compiled statement for every subject (it runs on every bc-authorize).
_DEVICES_OF = _ALL_DEVICES.where(devices.c.subject == bindparam("b_subject"))


# bc-authorize's two reads as one statement: one row per device of the subject (a single
# row of NULL device columns when there is none), each with the client's pause, if any.
_WANTED = select(bindparam("b_subject", type_=String()).label("subject")).subquery("wanted")
_PAUSE_AND_DEVICES = (
    select(device_pauses.c.until.label("pause_until"), *devices.c)
    .select_from(
        _WANTED.outerjoin(
            device_pauses,
            and_(
                device_pauses.c.client_id == bindparam("b_client"),
                device_pauses.c.subject == _WANTED.c.subject,
            ),
        ).outerjoin(devices, devices.c.subject == _WANTED.c.subject)
    )
    .order_by(devices.c.created_at, devices.c.device_id)
)


class SqlDeviceStore:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        # Read by every bc-authorize (see kept_reads): a user's devices, a client's pause.
        self._kept_devices = kept_reads(engine, _copy_devices)
        self._kept_pauses = kept_reads(engine, _same_pause)
        self._add_secret = (
            upsert_insert(engine, server_secrets)
            .values(name=bindparam("b_name"), value=bindparam("b_value"))
            .on_conflict_do_nothing(index_elements=[server_secrets.c.name])
            .returning(server_secrets.c.name)
        )
        pause_insert = upsert_insert(engine, device_pauses)
        self._set_pause = pause_insert.values(
            client_id=bindparam("b_client"),
            subject=bindparam("b_subject"),
            until=bindparam("b_until"),
        ).on_conflict_do_update(
            index_elements=[device_pauses.c.client_id, device_pauses.c.subject],
            set_={"until": func.max(device_pauses.c.until, pause_insert.excluded.until)}
            if engine.dialect.name == "sqlite"
            else {"until": func.greatest(device_pauses.c.until, pause_insert.excluded.until)},
        )

    async def add_device(self, device: Device) -> None:
        await self._insert(devices, device_to_row(device), "device exists", self._kept_devices)

    async def get_device(self, device_id: str) -> Device | None:
        return await self._one_device(_DEVICE_BY_ID, {"b_id": device_id})

    async def find_device_by_token(self, token_hash: str) -> Device | None:
        return await self._one_device(_DEVICE_BY_TOKEN, {"b_token": token_hash})

    async def list_devices(self, subject: str | None = None) -> list[Device]:
        query, params = (
            (_ALL_DEVICES, {}) if subject is None else (_DEVICES_OF, {"b_subject": subject})
        )
        kept = self._kept_devices if subject is not None else None
        async with self._reader.connect() as conn:
            if kept is not None and (answer := kept.get(subject)) is not NOT_KEPT:
                return answer
            rows = (await conn.execute(query, params)).mappings().all()
            found = [device_from_row(row) for row in rows]
            if kept is not None:
                kept.keep(subject, found)
        return found

    async def update_device(self, device: Device) -> None:
        row = device_to_row(device)
        values = {name: row[name] for name in ("name", "last_seen_at", "credentials", "push")}
        statement = update(devices).where(devices.c.device_id == device.device_id).values(values)
        async with self._kept_devices.forgetting(self._engine.begin()) as conn:
            result = await conn.execute(statement)
        if result.rowcount == 0:
            raise MissingError(f"no device {device.device_id!r}")

    async def touch_device(self, device_id: str, seen_at: float) -> None:
        # Not a ``forgetting`` write, and the column fires no ``kept_generation`` trigger
        # (migration 0008): a device's heartbeat leaves every worker's kept reads alone.
        async with self._engine.begin() as conn:
            await conn.execute(_TOUCH, {"b_id": device_id, "b_seen_at": seen_at})

    async def revoke_device(self, device_id: str, now: float) -> bool:
        async with self._kept_devices.forgetting(self._engine.begin()) as conn:
            result = await conn.execute(_REVOKE, {"b_id": device_id, "b_now": now})
        return bool(result.rowcount)

    async def add_enrolment_code(self, code: EnrolmentCode) -> None:
        row = {
            "code_hash": code.code_hash,
            "subject": code.subject,
            "created_at": code.created_at,
            "expires_at": code.expires_at,
            "used_at": code.used_at,
        }
        await self._insert(enrolment_codes, row, "enrolment code exists")

    async def use_enrolment_code(self, code_hash: str, now: float) -> EnrolmentCode | None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(_USE_CODE, {"b_hash": code_hash, "b_now": now})).first()
        if row is None:
            return None
        values = row._mapping
        return EnrolmentCode(
            code_hash=values["code_hash"],
            subject=values["subject"],
            created_at=values["created_at"],
            expires_at=values["expires_at"],
            used_at=values["used_at"],
        )

    async def add_consent(self, consent: Consent) -> None:
        await self._insert(consents, consent_to_row(consent), "consent exists")

    async def get_consent(self, id_hash: str) -> Consent | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(_CONSENT, {"b_id": id_hash})).mappings().first()
        if row is None:
            return None
        return _consent_from_row(row)

    async def list_consents(self, subject: str, created_after: float) -> list[Consent]:
        query = (
            select(consents)
            .where(consents.c.subject == subject, consents.c.created_at > created_after)
            .order_by(consents.c.created_at.desc(), consents.c.id_hash.desc())
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_consent_from_row(row) for row in rows]

    async def add_notice(self, subject: str, at: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert_into(device_notices), {"subject": subject, "at": at})

    async def count_notices(self, subject: str, since: float) -> int:
        async with self._reader.connect() as conn:
            count = await conn.scalar(_COUNT_NOTICES, {"b_subject": subject, "b_since": since})
        return int(count or 0)

    async def add_report(self, report: Report) -> None:
        row = {
            "client_id": report.client_id,
            "subject": report.subject,
            "id_hash": report.id_hash,
            "device_id": report.device_id,
            "at": report.at,
        }
        async with self._engine.begin() as conn:
            await conn.execute(insert(device_reports).values(row))

    async def list_reports(self, limit: int = 100) -> list[Report]:
        query = (
            select(device_reports)
            .order_by(device_reports.c.at.desc(), device_reports.c.id_hash.desc())
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            Report(
                client_id=r["client_id"],
                subject=r["subject"],
                id_hash=r["id_hash"],
                device_id=r["device_id"],
                at=r["at"],
            )
            for r in rows
        ]

    async def set_pause(self, pause: Pause) -> None:
        params = {"b_client": pause.client_id, "b_subject": pause.subject, "b_until": pause.until}
        async with self._kept_pauses.forgetting(self._engine.begin()) as conn:
            await conn.execute(self._set_pause, params)

    async def get_pause(self, client_id: str, subject: str) -> Pause | None:
        """Kept also when there is none (the usual answer): client and subject are known
        ones by then, and the cache is bounded."""
        params = {"b_client": client_id, "b_subject": subject}
        kept = self._kept_pauses
        async with self._reader.connect() as conn:
            if (answer := kept.get((client_id, subject))) is not NOT_KEPT:
                return answer
            row = (await conn.execute(_PAUSE, params)).mappings().first()
            pause = None
            if row is not None:
                pause = Pause(
                    client_id=row["client_id"], subject=row["subject"], until=row["until"]
                )
            kept.keep((client_id, subject), pause)
        return pause

    async def pause_and_devices(
        self, client_id: str, subject: str
    ) -> tuple[Pause | None, list[Device]]:
        """Where answers are kept (SQLite) both usually come from memory; elsewhere
        (PostgreSQL) one statement instead of two round trips."""
        if self._kept_pauses.keeps:
            return await self.get_pause(client_id, subject), await self.list_devices(subject)
        params = {"b_client": client_id, "b_subject": subject}
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_PAUSE_AND_DEVICES, params)).mappings().all()
        until = rows[0]["pause_until"] if rows else None
        pause = None if until is None else Pause(client_id=client_id, subject=subject, until=until)
        return pause, [device_from_row(row) for row in rows if row["device_id"] is not None]

    async def get_secret(self, name: str) -> str | None:
        async with self._reader.connect() as conn:
            value = await conn.scalar(_SECRET, {"b_name": name})
        return str(value) if value is not None else None

    async def add_secret(self, name: str, value: str) -> bool:
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._add_secret, {"b_name": name, "b_value": value})).first()
        return row is not None

    async def _one_device(self, query: Any, params: dict[str, str]) -> Device | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(query, params)).mappings().first()
        return device_from_row(row) if row is not None else None

    async def _insert(
        self,
        table: Any,
        row: dict[str, Any],
        message: str,
        forget: KeptReads[Any] | None = None,
    ) -> None:
        block = self._engine.begin()
        try:
            async with block if forget is None else forget.forgetting(block) as conn:
                await conn.execute(insert_into(table), row)
        except IntegrityError:
            raise DuplicateError(message) from None


_copy_device = copier(Device, "public_jwk")  # credentials and push are frozen


def _copy_devices(found: list[Device]) -> list[Device]:
    return [_copy_device(device) for device in found]


def _same_pause(pause: Pause | None) -> Pause | None:
    return pause  # frozen: nothing to copy
