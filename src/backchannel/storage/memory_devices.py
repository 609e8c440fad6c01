"""The in-memory ``DeviceStore``: the reference semantics the SQL store must match."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import replace

from backchannel.protocol.model import Consent, Device, EnrolmentCode, Pause, Report
from backchannel.protocol.ports import DuplicateError, MissingError


class MemoryDeviceStore:
    def __init__(self) -> None:
        self._devices: dict[str, Device] = {}
        self._codes: dict[str, EnrolmentCode] = {}
        self._consents: dict[str, Consent] = {}
        self._notices: list[tuple[str, float]] = []
        self._reports: list[Report] = []
        self._pauses: dict[tuple[str, str], Pause] = {}
        self._secrets: dict[str, str] = {}

    async def add_device(self, device: Device) -> None:
        if device.device_id in self._devices:
            raise DuplicateError(f"device {device.device_id!r} exists")
        if any(d.token_hash == device.token_hash for d in self._devices.values()):
            raise DuplicateError("device token exists")
        self._devices[device.device_id] = deepcopy(device)

    async def get_device(self, device_id: str) -> Device | None:
        device = self._devices.get(device_id)
        return deepcopy(device) if device is not None else None

    async def find_device_by_token(self, token_hash: str) -> Device | None:
        for device in self._devices.values():
            if device.token_hash == token_hash:
                return deepcopy(device)
        return None

    async def list_devices(self, subject: str | None = None) -> list[Device]:
        chosen = [d for d in self._devices.values() if subject is None or d.subject == subject]
        return deepcopy(sorted(chosen, key=lambda d: (d.created_at, d.device_id)))

    async def update_device(self, device: Device) -> None:
        stored = self._devices.get(device.device_id)
        if stored is None:
            raise MissingError(f"no device {device.device_id!r}")
        stored.name = device.name
        stored.last_seen_at = device.last_seen_at
        stored.credentials = device.credentials
        stored.push = device.push

    async def touch_device(self, device_id: str, seen_at: float) -> None:
        stored = self._devices.get(device_id)
        if stored is not None:
            stored.last_seen_at = seen_at

    async def revoke_device(self, device_id: str, now: float) -> bool:
        stored = self._devices.get(device_id)
        if stored is None or stored.revoked_at is not None:
            return False
        stored.revoked_at = now
        return True

    async def add_enrolment_code(self, code: EnrolmentCode) -> None:
        if code.code_hash in self._codes:
            raise DuplicateError("enrolment code exists")
        self._codes[code.code_hash] = code

    async def use_enrolment_code(self, code_hash: str, now: float) -> EnrolmentCode | None:
        code = self._codes.get(code_hash)
        if code is None or code.used_at is not None or code.expires_at <= now:
            return None
        used = replace(code, used_at=now)
        self._codes[code_hash] = used
        return used

    def check_new_consent(self, consent: Consent) -> None:
        if consent.id_hash in self._consents:
            raise DuplicateError("consent exists")

    def add_consent_now(self, consent: Consent) -> None:
        """Store ``consent`` (already checked with ``check_new_consent``)."""
        self._consents[consent.id_hash] = consent

    async def add_consent(self, consent: Consent) -> None:
        self.check_new_consent(consent)
        self.add_consent_now(consent)

    async def get_consent(self, id_hash: str) -> Consent | None:
        return self._consents.get(id_hash)

    async def list_consents(self, subject: str, created_after: float) -> list[Consent]:
        chosen = [
            c
            for c in self._consents.values()
            if c.subject == subject and c.created_at > created_after
        ]
        return sorted(chosen, key=lambda c: (c.created_at, c.id_hash), reverse=True)

    async def add_notice(self, subject: str, at: float) -> None:
        self._notices.append((subject, at))

    async def count_notices(self, subject: str, since: float) -> int:
        return sum(1 for who, at in self._notices if who == subject and at >= since)

    async def add_report(self, report: Report) -> None:
        self._reports.append(report)

    async def list_reports(self, limit: int = 100) -> list[Report]:
        newest = sorted(self._reports, key=lambda r: (r.at, r.id_hash), reverse=True)
        return newest[:limit]

    async def set_pause(self, pause: Pause) -> None:
        key = (pause.client_id, pause.subject)
        current = self._pauses.get(key)
        if current is None or current.until < pause.until:
            self._pauses[key] = pause

    async def get_pause(self, client_id: str, subject: str) -> Pause | None:
        return self._pauses.get((client_id, subject))

    async def pause_and_devices(
        self, client_id: str, subject: str
    ) -> tuple[Pause | None, list[Device]]:
        return await self.get_pause(client_id, subject), await self.list_devices(subject)

    async def get_secret(self, name: str) -> str | None:
        return self._secrets.get(name)

    async def add_secret(self, name: str, value: str) -> bool:
        if name in self._secrets:
            return False
        self._secrets[name] = value
        return True
