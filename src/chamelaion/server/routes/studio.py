"""Chamelaion Studio: the web page at `/`, plain ES modules and CSS shipped in the package.

The page is static: it holds no data and no key. It signs in by keeping the API key the user
types in the tab's sessionStorage and sends it as the `x-api-key` header of its API calls, so
the key never reaches a URL, the HTML or a log. Every file goes out with a strict
Content-Security-Policy (scripts, styles and everything else from this origin only; no inline
code) and with no referrer, so nothing the page holds can leak to another site.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from chamelaion.server import errors
from chamelaion.server.errors import ApiError
from chamelaion.server.state import app_state

STUDIO_DIR = Path(__file__).resolve().parent.parent / "studio"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only the files shipped in the folder, looked up by exact name: a request names a key of this
# table, never a path, so nothing outside the folder can be reached.
_ASSETS = {
    path.name: path
    for path in STUDIO_DIR.iterdir()
    if path.suffix in _MEDIA_TYPES and path.name != "index.html"
}

router = APIRouter(include_in_schema=False)


def content_security_policy(public_base_url: str | None) -> str:
    """This origin only; output and source links may point at the configured public base URL
    (another origin behind a proxy), so the players may load media from there too, and the
    speaker-point preview plays the file the user chose from a `blob:` URL of the page's own
    (a local file, read by nothing but the page's player)."""
    media = "'self' blob:"
    if public_base_url:
        parts = urlsplit(public_base_url)
        media += f" {parts.scheme}://{parts.netloc}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"media-src {media}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            # The page's forms are sent by its scripts; should those not run, a browser's own
            # submission (which could put the typed key in a URL) is refused.
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _send(request: Request, path: Path) -> FileResponse:
    settings = app_state(request).settings
    headers = {
        "Content-Security-Policy": content_security_policy(settings.public_base_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-cache",  # revalidated (ETag) so an upgrade shows at once
    }
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@router.head("/")
@router.get("/")
async def page(request: Request) -> FileResponse:
    return _send(request, STUDIO_DIR / "index.html")


@router.head("/studio/{name}")
@router.get("/studio/{name}")
async def asset(request: Request, name: str) -> FileResponse:
    path = _ASSETS.get(name)
    if path is None:
        raise ApiError(404, errors.NOT_FOUND)
    return _send(request, path)
