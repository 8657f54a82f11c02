"""``GET /``: the dashboard page, and the static files it loads.

The page is plain HTML, CSS and JavaScript shipped as package data in ``service/api/static``:
no build step, and nothing loaded from anywhere but this origin (the Content-Security-Policy
says so to the browser). The shell carries no data, so it is served without a token; its script
reads ``/diagnostics/summary`` and ``/diagnostics/recent``, which do need one when
authentication is on (the page asks for it on a 401 and keeps it in ``sessionStorage``).
None of these routes is part of the API, so none is in the OpenAPI document.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Annotated

from litestar import Controller, MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter

__all__ = ["CONTENT_SECURITY_POLICY", "DashboardController"]

# Same-origin scripts, styles and fetches only: no inline code, no CDN, no fonts, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE = "dashboard.html"
# The files the page loads, by name, with their media types: nothing else is served.
_ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load, so an upgraded server never runs a stale script.
    "Cache-Control": "no-cache",
}


@functools.cache
def _read_static(name: str) -> bytes:
    """One file of ``service/api/static``, read once per process."""
    return (files("service.api") / "static" / name).read_bytes()


class DashboardController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def page(self) -> Response[bytes]:
        return Response(_read_static(_PAGE), media_type=MediaType.HTML, headers=_HEADERS)

    @get("/static/{name:str}", include_in_schema=False)
    async def asset(
        self, name: Annotated[str, PathParameter(description="A file of the page.")]
    ) -> Response[bytes]:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFoundException(f"No static file {name!r}.")
        return Response(_read_static(name), media_type=media_type, headers=_HEADERS)
