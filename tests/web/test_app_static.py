"""The authenticator web app's files under /authenticator/ (issue 6, item 8): content types,
the strict CSP, the service worker scope header, nothing outside the shipped folder."""

from __future__ import annotations

import json
import re

import pytest

from backchannel.web.app_static import APP_DIR, CONTENT_SECURITY_POLICY, shipped_files
from tests.support.http import asgi_client
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/authenticator/", "text/html; charset=utf-8"),
        ("/authenticator/index.html", "text/html; charset=utf-8"),
        ("/authenticator/app.js", "text/javascript; charset=utf-8"),
        ("/authenticator/styles.css", "text/css; charset=utf-8"),
        ("/authenticator/manifest.webmanifest", "application/manifest+json"),
        ("/authenticator/icon-192.png", "image/png"),
        ("/authenticator/icon.svg", "image/svg+xml"),
    ],
)
async def test_app_files_are_served_with_their_content_type(path: str, content_type: str) -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_service_worker_may_control_the_app_scope() -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get("/authenticator/sw.js")
    assert response.status_code == 200
    assert response.headers["service-worker-allowed"] == "/authenticator/"
    assert response.headers["content-type"].startswith("text/javascript")


async def test_the_app_path_without_slash_redirects() -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get("/authenticator")
    assert response.status_code == 308
    assert response.headers["location"] == "/authenticator/"


@pytest.mark.parametrize(
    "path",
    [
        "/authenticator/nothing.js",
        "/authenticator/..%2Fconsent.py",
        "/authenticator/__init__.py",
        "/authenticator/%2E%2E%2Fassurance.py",
    ],
)
async def test_files_outside_the_shipped_set_are_404(path: str) -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def test_the_csp_allows_only_this_server() -> None:
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["connect-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_the_app_references_no_outside_asset() -> None:
    """Item 8: no asset from outside the server — no absolute URL in any shipped file."""
    for name in shipped_files(APP_DIR):
        if name.endswith(".png"):
            continue
        text = (APP_DIR / name).read_text(encoding="utf-8")
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace, not a load
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.IGNORECASE)
        assert urls == [], name


def test_the_manifest_makes_an_installable_app() -> None:
    manifest = json.loads((APP_DIR / "manifest.webmanifest").read_text(encoding="utf-8"))
    sizes = {icon["sizes"] for icon in manifest["icons"] if icon["type"] == "image/png"}
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "./"
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        assert icon["src"] in shipped_files(APP_DIR)
    assert (APP_DIR / "icon-512.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_service_worker_caches_every_shipped_file() -> None:
    worker = (APP_DIR / "sw.js").read_text(encoding="utf-8")
    cached = set(re.findall(r'^\s+"([^"]+)",$', worker, flags=re.MULTILINE))
    assert shipped_files(APP_DIR) - {"sw.js"} <= cached
