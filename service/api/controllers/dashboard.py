"""``GET /`` (the dashboard), ``GET /jobs/{id}/page`` (one job for people), and their files.

The pages are plain HTML, CSS and JavaScript shipped as package data in ``service/api/static``:
no build step, and nothing loaded from anywhere but this origin (the Content-Security-Policy
says so to the browser). The shells carry no data, so they are served without a token and the
job page's shell is the same for every id (it tells nobody whether a job exists); their scripts
read the API (``/diagnostics/*``, ``/indexes/*``, ``/jobs/{id}`` and its events and locks), which
needs a token when authentication is on (a page asks for it on a 401 and keeps it in
``sessionStorage``), and a job's details only ever go to the client that owns it.
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
_JOB_PAGE = "job.html"
# The files the pages load, by name, with their media types: nothing else is served.
_ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "job.js": "text/javascript; charset=utf-8",
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

    @get("/jobs/{job_id:str}/page", media_type=MediaType.HTML, include_in_schema=False)
    async def job_page(
        self, job_id: Annotated[str, PathParameter(description="The job's id.")]
    ) -> Response[bytes]:
        # The script reads the id from the address and the job from /jobs/{id}, as its owner.
        return Response(_read_static(_JOB_PAGE), media_type=MediaType.HTML, headers=_HEADERS)

    @get("/static/{name:str}", include_in_schema=False)
    async def asset(
        self, name: Annotated[str, PathParameter(description="A file of the page.")]
    ) -> Response[bytes]:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFoundException(f"No static file {name!r}.")
        return Response(_read_static(name), media_type=media_type, headers=_HEADERS)
