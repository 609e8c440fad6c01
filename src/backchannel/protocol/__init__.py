"""The OpenID/OAuth rules. Imports no web framework, no ORM, no HTTP client."""
