"""Backchannel: a CIBA-first OpenID Provider."""

__version__ = "0.1.0"
