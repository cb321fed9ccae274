"""The storefront's files (`GET /app/…`): read once at start-up, gzipped once, served from
memory with an ETag and a Content-Security-Policy that allows the app's own files, Telegram's
script (WEBAPP_SCRIPT_URL) and nothing else."""

from __future__ import annotations

import gzip
import hashlib
import html
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
SCRIPT_PLACEHOLDER = "%TELEGRAM_WEB_APP_JS%"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
GZIP_MIN = 512  # smaller files gain nothing


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


def content_security_policy(script_url: str) -> str:
    """Scripts: ours and exactly Telegram's file; styles, images (photos), API calls: ours."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {script_url}",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def load_files(script_url: str, directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    """Every file of the storefront by its name under /app/ ("" is index.html)."""
    files: dict[str, StaticFile] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(directory).as_posix()
        body = path.read_bytes()
        if name == "index.html":
            body = body.replace(SCRIPT_PLACEHOLDER.encode(), html.escape(script_url).encode())
        content_type = TYPES.get(path.suffix) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        packed = gzip.compress(body, 9, mtime=0) if len(body) >= GZIP_MIN else None
        if packed is not None and len(packed) >= len(body):
            packed = None
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[name] = StaticFile(body, packed, content_type, etag)
    files[""] = files["index.html"]
    return files


FILES_KEY = web.AppKey("webapp_files", dict[str, StaticFile])
CSP_KEY = web.AppKey("webapp_csp", str)


async def serve(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name", "")
    found = request.app[FILES_KEY].get(name)
    if found is None:
        raise web.HTTPNotFound()
    headers = {
        "Content-Type": found.content_type,
        "Content-Security-Policy": request.app[CSP_KEY],
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Revalidated each time (a deploy shows at once); unchanged files cost a 304.
        "Cache-Control": "no-cache",
        "ETag": found.etag,
        "Vary": "Accept-Encoding",
    }
    if found.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    body = found.body
    if found.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = found.gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/app/")


def add_static_routes(app: web.Application, script_url: str) -> None:
    app[FILES_KEY] = load_files(script_url)
    app[CSP_KEY] = content_security_policy(script_url)
    app.router.add_get("/app", to_index)
    app.router.add_get("/app/", serve)
    app.router.add_get("/app/{name:[A-Za-z0-9_-]+\\.(?:js|css|html|svg)}", serve)
