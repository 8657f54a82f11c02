"""``IndexServer``: a real PyPI-style simple index on loopback, with failure injection.

Layout, per index added with ``add_index``::

    /<index>/simple/                    project list
    /<index>/simple/<normalized>/       project page (other spellings redirect here, 301)
    /<index>/files/<filename>           wheels and sdists (Range requests answered with 206)
    /<index>/files/<filename>.metadata  PEP 658 METADATA sidecar of a wheel
    /<index>/files/                     a directory listing of the files: a flat index
                                        (``--find-links``), as a web server's autoindex makes

Pages are negotiated per PEP 691 and carry an ETag (``If-None-Match`` gives 304). Every request
is logged; ``inject`` makes matching requests slow or fail before the normal answer.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from tests.indexserver.artifacts import BuiltIndex, make_index
from tests.indexserver.model import IndexSpec
from tests.indexserver.pages import (
    MEDIA_TEXT_HTML,
    choose_media_type,
    render_file_listing,
    render_project,
    render_project_list,
)

__all__ = ["IndexServer", "RangeNotSatisfiableError", "RequestRecord", "parse_byte_range"]

_LIST_PATH = re.compile(r"^/(?P<index>[^/]+)/simple/?$")
_PROJECT_PATH = re.compile(r"^/(?P<index>[^/]+)/simple/(?P<project>[^/]+)(?P<slash>/?)$")
_FILE_PATH = re.compile(r"^/(?P<index>[^/]+)/files/(?P<filename>[^/]+)$")
_LISTING_PATH = re.compile(r"^/(?P<index>[^/]+)/files(?P<listing>/?)$")


class RequestRecord(NamedTuple):
    """One request the server answered; ``headers`` are the request's, keys lower-cased."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]


@dataclass
class _Injection:
    pattern: str
    status: int | None
    body: bytes
    headers: Mapping[str, str]
    delay: float
    remaining: int | None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class RangeNotSatisfiableError(ValueError):
    """A ``Range`` header names no byte of the file (answered with 416)."""


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte span a single-range ``Range`` header asks for.

    ``None`` means serve the whole file: no header, another unit, several ranges or a malformed
    spec (RFC 9110 lets a server ignore those). Raises ``RangeNotSatisfiableError`` when the
    range lies past the end or is an empty suffix.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash or not (first_text or last_text):
        return None
    try:
        first = int(first_text) if first_text else None
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first is None:  # a suffix: the final ``last_text`` bytes
        if last <= 0 or size == 0:
            raise RangeNotSatisfiableError(header)
        return max(0, size - last), size - 1
    if first >= size:
        raise RangeNotSatisfiableError(header)
    if last < first:
        return None
    return first, min(last, size - 1)


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a client opening a burst of connections (a
    # cold resolution) has the surplus SYNs dropped and retried a second later.
    request_queue_size = 256
    index_server: IndexServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive requests stall ~40 ms.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; the request log is ``IndexServer.requests``."""

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def _handle(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        index_server = self.server.index_server
        response = index_server._respond(path, headers)
        # Logged before the answer goes out, so a client that has read the answer always finds
        # its request in the log (logging after the write raced the client's next look).
        index_server._record(RequestRecord(self.command, path, response.status, headers))
        try:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if send_body and response.status not in (204, 304):
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class IndexServer:
    """A threaded simple-API server on ``127.0.0.1``, started on construction.

    Use as a context manager or call ``close()``. Indexes can be added (or replaced, by adding a
    spec with the same name) while it runs.
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[str, BuiltIndex] = {}
        self._injections: list[_Injection] = []
        self._requests: list[RequestRecord] = []
        self._closed = False
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.index_server = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"index-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> IndexServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The simple-API base URL of index ``name`` (no trailing slash, like pip's)."""
        return f"{self.base_url}/{name}/simple"

    # -- content ---------------------------------------------------------------------------
    def add_index(self, spec: IndexSpec) -> str:
        """Build ``spec``'s files and serve them; returns its URL. Replaces a same-named index."""
        if not spec.name or "/" in spec.name:
            raise ValueError(f"index name must be one URL segment: {spec.name!r}")
        built = make_index(spec)
        with self._lock:
            self._indexes[spec.name] = built
        return self.url(spec.name)

    # -- failure injection -----------------------------------------------------------------
    def inject(
        self,
        path_pattern: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Make requests whose path matches ``path_pattern`` (fnmatch) misbehave.

        The first live rule that matches applies: it sleeps ``delay`` seconds, then answers
        ``status`` with ``body`` and ``headers`` or, when ``status`` is ``None``, the normal
        response. ``times`` limits how many requests it affects (``None``: all of them).
        """
        rule = _Injection(path_pattern, status, body, dict(headers or {}), delay, times)
        with self._lock:
            self._injections.append(rule)

    def clear_injections(self) -> None:
        with self._lock:
            self._injections.clear()

    # -- request log -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, path_pattern: str) -> int:
        """How many answered requests had a path matching ``path_pattern`` (fnmatch)."""
        return sum(fnmatch.fnmatchcase(r.path, path_pattern) for r in self.requests)

    # -- request handling (called from handler threads) ------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _take_injection(self, path: str) -> _Injection | None:
        with self._lock:
            for rule in self._injections:
                if rule.remaining != 0 and fnmatch.fnmatchcase(path, rule.pattern):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _respond(self, path: str, headers: Mapping[str, str]) -> _Response:
        rule = self._take_injection(path)
        if rule is not None:
            if rule.delay:
                time.sleep(rule.delay)
            if rule.status is not None:
                return _Response(rule.status, rule.body, rule.headers)
        return self._route(path, headers)

    def _route(self, path: str, headers: Mapping[str, str]) -> _Response:
        match = (
            _LIST_PATH.match(path)
            or _PROJECT_PATH.match(path)
            or _FILE_PATH.match(path)
            or _LISTING_PATH.match(path)
        )
        if match is None:
            return _not_found()
        with self._lock:
            index = self._indexes.get(match["index"])
        if index is None:
            return _not_found()
        if not _authorized(index.spec.basic_auth, headers.get("authorization")):
            realm = index.spec.name
            return _Response(401, b"Unauthorized\n", {"WWW-Authenticate": f'Basic realm="{realm}"'})
        groups = match.groupdict()
        if "listing" in groups:
            if not groups["listing"]:
                return _Response(301, b"", {"Location": f"/{index.spec.name}/files/"})
            return _page_response(render_file_listing(index), MEDIA_TEXT_HTML, headers)
        if "filename" in groups:
            return _file_response(index, groups["filename"], headers)
        simple_url = f"/{index.spec.name}/simple"
        media_type = choose_media_type(headers.get("accept"), index.spec.formats)
        if media_type is None:
            return _Response(406, b"Not Acceptable\n", {"Content-Type": "text/plain"})
        if "project" not in groups:
            body = render_project_list(index, media_type, simple_url)
            return _page_response(body, media_type, headers)
        normalized = canonicalize_name(groups["project"])
        project = index.projects.get(normalized)
        if project is None:
            return _not_found()
        if groups["project"] != normalized or not groups["slash"]:
            return _Response(301, b"", {"Location": f"{simple_url}/{normalized}/"})
        body = render_project(project, media_type, f"{self.base_url}/{index.spec.name}/files")
        return _page_response(body, media_type, headers)


def _not_found() -> _Response:
    return _Response(404, b"Not Found\n", {"Content-Type": "text/plain"})


def _authorized(expected: tuple[str, str] | None, authorization: str | None) -> bool:
    if expected is None:
        return True
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    token = base64.b64encode(":".join(expected).encode()).decode()
    return encoded.strip() == token


def _page_response(body: bytes, media_type: str, headers: Mapping[str, str]) -> _Response:
    etag = _etag(body)
    content_type = f"{media_type}; charset=utf-8" if media_type == MEDIA_TEXT_HTML else media_type
    page_headers = {"Content-Type": content_type, "ETag": etag, "Vary": "Accept"}
    if _etag_matches(headers.get("if-none-match"), etag):
        return _Response(304, b"", page_headers)
    return _Response(200, body, page_headers)


def _file_response(index: BuiltIndex, filename: str, headers: Mapping[str, str]) -> _Response:
    content = index.files.get(filename)
    if content is None:
        return _not_found()
    etag = _etag(content)
    file_headers = {
        "Content-Type": "application/octet-stream",
        "ETag": etag,
        "Accept-Ranges": "bytes",
    }
    if _etag_matches(headers.get("if-none-match"), etag):
        return _Response(304, b"", file_headers)
    try:
        span = parse_byte_range(headers.get("range"), len(content))
    except RangeNotSatisfiableError:
        return _Response(416, b"", {**file_headers, "Content-Range": f"bytes */{len(content)}"})
    if span is None:
        return _Response(200, content, file_headers)
    first, last = span
    content_range = f"bytes {first}-{last}/{len(content)}"
    return _Response(
        206, content[first : last + 1], {**file_headers, "Content-Range": content_range}
    )
