"""The authentication device side of Backchannel: consent content, enrolment, decisions,
notices and the device API (see docs/authenticator.md and docs/authenticator-api.md)."""
