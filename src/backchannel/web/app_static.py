"""Serves the installable authenticator web app (``authenticator/app/``) under ``/authenticator/``.

Only the files shipped in that folder are served, by exact name (no paths, so no traversal).
Every response carries a strict Content-Security-Policy: the app loads nothing from outside
the server, and images only from the server or ``data:`` URLs (see docs/authenticator.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from backchannel.web.adapter import json_response

APP_PATH = "/authenticator/"
APP_DIR = Path(__file__).resolve().parent.parent / "authenticator" / "app"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

_BASE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # The service worker keeps an offline copy; the network copy is always revalidated.
    "Cache-Control": "no-cache",
}


def routes(prefix: str = "", app_dir: Path = APP_DIR) -> list[BaseRoute]:
    """The app's routes; ``prefix`` is the issuer's path (``""`` at the root)."""
    base = prefix + APP_PATH
    serve = _file_endpoint(app_dir, base)
    return [
        Route(base.rstrip("/"), _redirect_to(base), methods=["GET", "HEAD"]),
        Route(base, serve, methods=["GET", "HEAD"]),
        Route(base + "{name}", serve, methods=["GET", "HEAD"]),
    ]


@cache
def shipped_files(app_dir: Path) -> frozenset[str]:
    """Names of the files the app consists of (servable ones only)."""
    return frozenset(
        entry.name
        for entry in app_dir.iterdir()
        if entry.is_file() and entry.suffix in _CONTENT_TYPES
    )


def _file_endpoint(app_dir: Path, base: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        name = request.path_params.get("name") or "index.html"
        if name not in shipped_files(app_dir):
            return json_response(404, {"error": "not_found", "error_description": "no such file"})
        return _file_response(app_dir / name, base)

    return serve


def _file_response(path: Path, base: str) -> Response:
    headers = dict(_BASE_HEADERS)
    if path.name == "sw.js":
        headers["Service-Worker-Allowed"] = base
    return Response(path.read_bytes(), headers=headers, media_type=_CONTENT_TYPES[path.suffix])


def _redirect_to(target: str) -> Callable[[Request], Awaitable[Response]]:
    async def redirect(_: Request) -> Response:
        return RedirectResponse(target, status_code=308)

    return redirect
