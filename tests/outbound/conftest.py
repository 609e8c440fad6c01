"""Outbound call tests: the ``cli`` fixture for registration checks."""

from tests.cli.conftest import cli  # noqa: F401
