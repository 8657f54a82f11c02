"""Serve the on-disk PEP 503 indexes under ``/opt/pypi*`` read-only on loopback.

Each root (``/opt/pypi``, ``/opt/pypi-more``) holds ``simple/<project>/index.html`` pages that
link ``../../files/<wheel>#sha256=...``. ``RealIndexServer`` merges the roots' pages per
project and serves them in two variants::

    /plain/simple/<project>/      the links as they are: no PEP 658, so a client must read
                                  METADATA with Range requests into the wheel or download it
    /pep658/simple/<project>/     the same links with ``data-core-metadata="sha256=..."``
    /<variant>/files/<wheel>           the wheel, straight from /opt (Range answered with 206)
    /<variant>/files/<wheel>.metadata  its ``*.dist-info/METADATA`` (``pep658``, ``shaped``)

    /shaped/simple/<project>/     the links among the thousands of files a real page lists
                                  (``tests.bench.shaped``): PEP 691 JSON when asked for it,
                                  else HTML, gzip when accepted, PEP 658 for most projects

Caching headers follow PyPI's: pages ``max-age=600``, files and sidecars immutable, all with an
ETag that ``If-None-Match`` turns into a 304, so a client's warm cache behaves as it would
against pypi.org. Sidecars are extracted lazily, the first time a ``pep658`` page of that
project is rendered (or a sidecar is asked for), and cached under ``.bench/metadata/`` so later
runs read them from disk. Nothing under ``/opt`` is copied or written. Every answered request
is logged (``requests``) so the benchmark can count what each client fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import os
import re
import socket
import sys
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from tests.bench.shaped import RealWheel, has_pep658, make_shaped_page, render_html, render_json
from tests.indexserver.server import RangeNotSatisfiableError, parse_byte_range

__all__ = [
    "DEFAULT_ROOTS",
    "VARIANTS",
    "Hit",
    "RealIndexServer",
    "extract_metadata",
]

DEFAULT_ROOTS = (Path("/opt/pypi"), Path("/opt/pypi-more"))
VARIANTS = ("plain", "pep658", "shaped")
_MEDIA_JSON = "application/vnd.pypi.simple.v1+json"
_LINK = re.compile(r'href="\.\./\.\./files/(?P<file>[^"#]+)#sha256=(?P<sha>[0-9a-f]{64})"')
_PAGE = re.compile(r"^/(?P<variant>[^/]+)/simple/(?:(?P<project>[^/]+)/?)?$")
_FILE = re.compile(r"^/(?P<variant>[^/]+)/files/(?P<file>[^/]+)$")
_METADATA_SUFFIX = ".metadata"
# What pypi.org sends: project pages may be reused for 10 minutes, files never change.
_PAGE_CACHE_CONTROL = "max-age=600, public"
_FILE_CACHE_CONTROL = "max-age=365000000, immutable, public"


class Hit(NamedTuple):
    """One answered request: what was asked, the status and how many body bytes went out."""

    method: str
    path: str
    status: int
    sent: int
    ranged: bool


@dataclass(frozen=True)
class _Link:
    filename: str
    sha256: str


def extract_metadata(wheel: Path) -> bytes:
    """The bytes of ``<name>-<version>.dist-info/METADATA`` inside ``wheel``.

    Reading a zip only touches its central directory and that one member, so this stays cheap
    even for the multi-hundred-megabyte wheels.
    """
    with zipfile.ZipFile(wheel) as archive:
        candidates = [
            name
            for name in archive.namelist()
            if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
        ]
        if len(candidates) != 1:
            raise ValueError(f"{wheel.name}: expected one .dist-info/METADATA, got {candidates}")
        return archive.read(candidates[0])


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    owner: RealIndexServer

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Stay quiet when a client hangs up (a timed-out pip is killed mid-download)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is ``RealIndexServer.requests``."""

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def _handle(self, *, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        owner = self.server.owner
        status, sent, ranged = 500, 0, False
        try:
            status, sent, ranged = owner._serve(self, path, send_body=send_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        owner._record(Hit(self.command, path, status, sent, ranged))

    def send_simple(
        self, status: int, body: bytes, headers: Mapping[str, str], *, send_body: bool
    ) -> int:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)
            return len(body)
        return 0


class RealIndexServer:
    """A threaded read-only server of ``roots`` on ``127.0.0.1``, started on construction.

    ``cache_dir`` receives the extracted METADATA sidecars. Use as a context manager or call
    ``close()``.
    """

    def __init__(
        self,
        cache_dir: Path,
        roots: Sequence[Path] = DEFAULT_ROOTS,
        port: int = 0,
    ) -> None:
        self._roots = [root for root in roots if (root / "simple").is_dir()]
        if not self._roots:
            raise FileNotFoundError(f"none of {[str(r) for r in roots]} holds a simple/ index")
        self._metadata_dir = cache_dir / "metadata"
        self._metadata_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, Path] = {}
        for root in self._roots:
            for entry in os.scandir(root / "files"):
                self._files.setdefault(entry.name, Path(entry.path))
        self._lock = threading.Lock()
        self._project_locks: dict[str, threading.Lock] = {}
        self._links: dict[str, tuple[_Link, ...]] = {}
        self._metadata_sha: dict[str, str] = {}
        # Rendered shaped pages: (project, format, gzipped) -> body, built once per server.
        self._shaped: dict[tuple[str, str, bool], bytes] = {}
        self._hits: list[Hit] = []
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> RealIndexServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    # -- addresses -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, variant: str) -> str:
        """The simple-API URL of ``variant`` (one of ``VARIANTS``), no trailing slash."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        return f"{self.base_url}/{variant}/simple"

    # -- content ---------------------------------------------------------------------------
    def project_names(self) -> list[str]:
        """Every normalized project name any root publishes."""
        names = {entry.name for root in self._roots for entry in os.scandir(root / "simple")} - {
            "index.html"
        }
        return sorted(names)

    def find_links(self, project: str) -> tuple[_Link, ...]:
        """The wheels of ``project`` across roots, first root first; empty when unknown."""
        name = canonicalize_name(project)
        with self._lock:
            cached = self._links.get(name)
        if cached is not None:
            return cached
        links: list[_Link] = []
        seen: set[str] = set()
        for root in self._roots:
            page = root / "simple" / name / "index.html"
            if not page.is_file():
                continue
            for match in _LINK.finditer(page.read_text()):
                if match["file"] not in seen and match["file"] in self._files:
                    seen.add(match["file"])
                    links.append(_Link(match["file"], match["sha"]))
        with self._lock:
            self._links[name] = tuple(links)
        return tuple(links)

    def prepare_metadata(self, projects: Iterable[str]) -> int:
        """Extract (or load from the cache) the sidecars of ``projects``; how many are ready."""
        return sum(len(self._find_metadata_hashes(project)) for project in projects)

    def _project_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._project_locks.setdefault(name, threading.Lock())

    def _find_metadata_hashes(self, project: str) -> dict[str, str]:
        """``{wheel: sha256 of its METADATA}``, extracting into the cache what is missing."""
        links = self.find_links(project)
        with self._project_lock(canonicalize_name(project)):
            hashes: dict[str, str] = {}
            for link in links:
                with self._lock:
                    known = self._metadata_sha.get(link.filename)
                if known is None:
                    sidecar = self._metadata_dir / (link.filename + _METADATA_SUFFIX)
                    if not sidecar.is_file():
                        data = extract_metadata(self._files[link.filename])
                        partial = sidecar.with_suffix(f".{os.getpid()}.part")
                        partial.write_bytes(data)
                        partial.replace(sidecar)
                    known = hashlib.sha256(sidecar.read_bytes()).hexdigest()
                    with self._lock:
                        self._metadata_sha[link.filename] = known
                hashes[link.filename] = known
            return hashes

    def _read_sidecar(self, wheel: str) -> bytes | None:
        """The cached METADATA of ``wheel``, extracted now if no page has asked for it yet."""
        if wheel not in self._files:
            return None
        sidecar = self._metadata_dir / (wheel + _METADATA_SUFFIX)
        if not sidecar.is_file():
            project = canonicalize_name(wheel.split("-", 1)[0])
            self._find_metadata_hashes(project)
        return sidecar.read_bytes() if sidecar.is_file() else None

    def _render_page(self, variant: str, project: str) -> bytes | None:
        links = self.find_links(project)
        if not links:
            return None
        hashes = self._find_metadata_hashes(project) if variant == "pep658" else {}
        lines = ["<!DOCTYPE html><html><body>"]
        for link in links:
            href = html.escape(f"../../files/{link.filename}#sha256={link.sha256}")
            extra = ""
            if link.filename in hashes:
                value = f"sha256={hashes[link.filename]}"
                extra = f' data-core-metadata="{value}" data-dist-info-metadata="{value}"'
            lines.append(f'<a href="{href}"{extra}>{html.escape(link.filename)}</a>')
        lines.append("</body></html>")
        return ("\n".join(lines) + "\n").encode()

    def _requires_python(self, wheel: str) -> str | None:
        sidecar = self._read_sidecar(wheel)
        for line in (sidecar or b"").decode("utf-8", "replace").splitlines():
            if not line.strip():
                break  # the headers end at the first blank line
            key, _, value = line.partition(":")
            if key.strip().lower() == "requires-python":
                return value.strip() or None
        return None

    def render_shaped(self, project: str, page_format: str, *, compressed: bool) -> bytes | None:
        """``project``'s real-shaped page as JSON or HTML (gzipped if asked), built once."""
        name = canonicalize_name(project)
        key = (name, page_format, compressed)
        with self._lock:
            cached = self._shaped.get(key)
        if cached is not None:
            return cached
        links = self.find_links(name)
        if not links:
            return None
        metadata = self._find_metadata_hashes(name)
        real = [
            RealWheel(
                link.filename,
                link.sha256,
                self._files[link.filename].stat().st_size,
                self._requires_python(link.filename),
                metadata.get(link.filename),
            )
            for link in links
        ]
        files = make_shaped_page(
            name,
            real,
            files_url=f"{self.base_url}/shaped",
            real_files_url=f"{self.base_url}/shaped/files",
        )
        body = render_json(name, files) if page_format == "json" else render_html(name, files)
        if compressed:
            body = gzip.compress(body, compresslevel=6, mtime=0)
        with self._lock:
            self._shaped[key] = body
        return body

    def _render_list(self) -> bytes:
        anchors = (f'<a href="{n}/">{n}</a>' for n in self.project_names())
        return (
            "<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n"
        ).encode()

    # -- request log -----------------------------------------------------------------------
    @property
    def requests(self) -> list[Hit]:
        """Every request answered since the last ``clear_requests()``, oldest first."""
        with self._lock:
            return list(self._hits)

    def clear_requests(self) -> None:
        with self._lock:
            self._hits.clear()

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)

    # -- serving (handler threads) ---------------------------------------------------------
    def _serve(self, handler: _Handler, path: str, *, send_body: bool) -> tuple[int, int, bool]:
        """Answer one request; returns ``(status, body bytes sent, was a 206)``."""
        page = _PAGE.match(path)
        file = _FILE.match(path)
        match = page or file
        content: tuple[bytes, str, str] | None = None  # body, content type, cache control
        extra: dict[str, str] = {}
        if match is None or match["variant"] not in VARIANTS:
            pass
        elif page is not None and page["variant"] == "shaped" and page["project"] is not None:
            accept = handler.headers.get("Accept", "")
            page_format = "json" if _MEDIA_JSON in accept else "html"
            compressed = "gzip" in handler.headers.get("Accept-Encoding", "")
            rendered = self.render_shaped(page["project"], page_format, compressed=compressed)
            if rendered is not None:
                media = _MEDIA_JSON if page_format == "json" else "text/html; charset=utf-8"
                content = (rendered, media, _PAGE_CACHE_CONTROL)
                extra["Vary"] = "Accept, Accept-Encoding"
                if compressed:
                    extra["Content-Encoding"] = "gzip"
        elif page is not None:
            project = page["project"]
            variant = page["variant"]
            rendered = (
                self._render_list() if project is None else self._render_page(variant, project)
            )
            if rendered is not None:
                content = (rendered, "text/html; charset=utf-8", _PAGE_CACHE_CONTROL)
        elif match["file"].endswith(_METADATA_SUFFIX) and match["variant"] != "plain":
            wheel = match["file"].removesuffix(_METADATA_SUFFIX)
            sidecar = self._read_sidecar(wheel)
            shaped_without = match["variant"] == "shaped" and not has_pep658(
                canonicalize_name(wheel.split("-", 1)[0])
            )
            if sidecar is not None and not shaped_without:
                content = (sidecar, "application/octet-stream", _FILE_CACHE_CONTROL)
        elif (wheel_path := self._files.get(match["file"])) is not None:
            return _send_file(handler, wheel_path, send_body=send_body)
        if content is None:
            headers = {"Content-Type": "text/plain"}
            return (
                404,
                handler.send_simple(404, b"Not Found\n", headers, send_body=send_body),
                False,
            )
        body, content_type, cache_control = content
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"Content-Type": content_type, "Cache-Control": cache_control, "ETag": etag}
        headers |= extra
        status, body = _conditional(handler, etag, body)
        return status, handler.send_simple(status, body, headers, send_body=send_body), False


def _conditional(handler: _Handler, etag: str, body: bytes) -> tuple[int, bytes]:
    """``(304, b"")`` when the request's ``If-None-Match`` names ``etag``, else ``(200, body)``."""
    tags = {
        t.strip().removeprefix("W/") for t in handler.headers.get("If-None-Match", "").split(",")
    }
    return (304, b"") if etag in tags or "*" in tags else (200, body)


def _send_file(handler: _Handler, path: Path, *, send_body: bool) -> tuple[int, int, bool]:
    stat = path.stat()
    size = stat.st_size
    etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
    headers = {
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "Cache-Control": _FILE_CACHE_CONTROL,
        "ETag": etag,
    }
    if _conditional(handler, etag, b"")[0] == 304:
        return 304, handler.send_simple(304, b"", headers, send_body=False), False
    try:
        span = parse_byte_range(handler.headers.get("Range"), size)
    except RangeNotSatisfiableError:
        headers["Content-Range"] = f"bytes */{size}"
        return 416, handler.send_simple(416, b"", headers, send_body=send_body), False
    first, last = span if span is not None else (0, size - 1)
    status = 200 if span is None else 206
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    if span is not None:
        handler.send_header("Content-Range", f"bytes {first}-{last}/{size}")
    count = last - first + 1 if size else 0
    handler.send_header("Content-Length", str(count))
    handler.end_headers()
    if not send_body or count == 0:
        return status, 0, span is not None
    with path.open("rb") as stream:
        sent = handler.connection.sendfile(stream, offset=first, count=count)
    return status, sent, span is not None
