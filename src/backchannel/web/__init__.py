"""Starlette routes: HTTP in, protocol call, HTTP out. The only place an error becomes an
HTTP response."""
