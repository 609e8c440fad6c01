"""The Python device SDK: a headless authentication device (kiosks, tests, demos).

device = await DeviceClient.enrol_with_code("https://op.example", code, "Kiosk 1")
async for event in device.listen():
    if event.kind == "request":
        consent = await device.get(event.request_id)
        await device.approve(consent)
"""

from backchannel.device.client import Consent, DeviceClient, DeviceError, DeviceEvent

__all__ = ["Consent", "DeviceClient", "DeviceError", "DeviceEvent"]
