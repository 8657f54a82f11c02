"""Property tests of project-page and filename parsing (``service.index.pages``).

Whatever an index sends, ``parse_page`` returns files or raises ``PageParseError``, and
``parse_dist_filename`` returns a name or ``None``; a well-formed page generated here parses to
exactly the files it lists for the project, in both formats.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.index.models import DistFile
from service.index.pages import (
    MEDIA_HTML,
    MEDIA_JSON,
    MEDIA_TEXT_HTML,
    PageParseError,
    parse_dist_filename,
    parse_page,
)
from tests.fuzz import fuzz_settings
from tests.fuzz.strategies import (
    DistFilename,
    canonical,
    dist_filenames,
    specifier_sets,
)

PROJECT = "Demo.Pkg"
PAGE_URL = f"https://index.example/simple/{canonical(PROJECT)}/"


def parse_files(content: bytes, content_type: str | None, **fields: Any) -> tuple[DistFile, ...]:
    """Every file ``parse_page`` lists (its listing makes them per version, on demand)."""
    return parse_page(content, content_type, **fields).files


# Real codecs that are no text encoding, or that refuse errors="replace", next to real ones.
_CHARSETS = [
    "utf-8",
    "latin-1",
    "utf-16",
    "cp037",
    "utf-7",
    "idna",
    "punycode",
    "rot13",
    "base64",
    "hex",
    "zlib",
    "unicode_escape",
    "raw_unicode_escape",
    "undefined",
    "nonsense",
    "",
]
content_types = st.sampled_from([MEDIA_JSON, MEDIA_HTML, MEDIA_TEXT_HTML]).flatmap(
    lambda media: st.sampled_from(_CHARSETS).map(
        lambda charset: f"{media}; charset={charset}" if charset else media
    )
) | st.text(max_size=40)

# URL-ish text that urllib chokes on: brackets (IPv6 hosts), ports, controls, schemes.
hrefs = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["http://[", "https://[::1", "//[x]:99999/", "http://h:port/", "\x00"]).flatmap(
        lambda prefix: st.text(max_size=30).map(lambda rest: prefix + rest)
    ),
    dist_filenames(PROJECT).map(lambda name: name.filename),
)

_FILE_KEYS = [
    "filename",
    "url",
    "hashes",
    "requires-python",
    "yanked",
    "size",
    "upload-time",
    "core-metadata",
    "dist-info-metadata",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hrefs,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_FILE_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)
# Page-shaped documents whose every value may be of the wrong type or hostile.
json_files = st.fixed_dictionaries(
    {}, optional={key: hrefs if key in ("filename", "url") else json_values for key in _FILE_KEYS}
)
json_pages = st.fixed_dictionaries(
    {},
    optional={
        "meta": st.fixed_dictionaries({}, optional={"api-version": st.text(max_size=6)})
        | json_values,
        "files": st.lists(json_files, max_size=5) | json_values,
        "name": json_values,
    },
)

_ATTRIBUTES = [
    "href",
    "data-requires-python",
    "data-yanked",
    "data-core-metadata",
    "data-dist-info-metadata",
    "name",
    "content",
]
_GARBAGE = [
    "</a>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<![if",
    "<!DOCTYPE",
    "<?xml",
    "<script>",
    "</script>",
    "&",
    "&#x",
    "&#",
    "&#99999999;",
    '"',
    "'",
    "<",
    ">",
    "=",
    "#sha256=",
]


@st.composite
def html_tags(draw: st.DrawFn) -> str:
    """An ``<a>``, ``<base>`` or ``<meta>`` with any of the attributes PEP 503 pages use."""
    tag = draw(st.sampled_from(["a", "a", "a", "base", "meta", "A"]))
    attributes = []
    values = st.none() | hrefs | st.sampled_from(["true", "sha256=ab", "pypi:repository-version"])
    for name, value in draw(
        st.dictionaries(st.sampled_from(_ATTRIBUTES), values, max_size=4)
    ).items():
        quote_char = draw(st.sampled_from(['"', "'", ""]))
        attributes.append(name if value is None else f"{name}={quote_char}{value}{quote_char}")
    return f"<{tag} {' '.join(attributes)}>"


html_documents = st.lists(
    html_tags() | st.sampled_from(_GARBAGE) | st.text(max_size=10), max_size=30
).map("".join)


def check_files(files: tuple[DistFile, ...]) -> None:
    """What every parsed file promises: its name parses, for the page's project, no userinfo."""
    assert isinstance(files, tuple)
    for dist_file in files:
        parsed = parse_dist_filename(dist_file.filename)
        assert parsed is not None
        assert parsed.project == canonical(PROJECT)
        assert (parsed.version, parsed.kind, parsed.tags) == (
            dist_file.version,
            dist_file.kind,
            dist_file.tags,
        )
        assert "@" not in dist_file.url.split("//", 1)[-1].split("/", 1)[0]


def parse_or_refuse(content: bytes, content_type: str) -> None:
    try:
        files = parse_files(content, content_type, url=PAGE_URL, project=PROJECT)
    except PageParseError:
        return
    check_files(files)


class TestHostilePages:
    @given(content=st.binary(max_size=2048), content_type=content_types)
    @fuzz_settings(300)
    def test_arbitrary_bytes_parse_or_raise_page_parse_error(
        self, content: bytes, content_type: str
    ) -> None:
        """Any body under any Content-Type: files, or ``PageParseError``."""
        parse_or_refuse(content, content_type)

    @given(document=json_pages | json_values, charset=st.sampled_from(["", "; charset=utf-8"]))
    @fuzz_settings(200)
    def test_garbled_json_parses_or_raises_page_parse_error(
        self, document: Any, charset: str
    ) -> None:
        """JSON of any shape, page-like keys with values of any type: files or the typed error."""
        parse_or_refuse(json.dumps(document).encode(), MEDIA_JSON + charset)

    @given(document=html_documents, content_type=content_types)
    @fuzz_settings(200)
    def test_garbled_html_parses_or_raises_page_parse_error(
        self, document: str, content_type: str
    ) -> None:
        """Tag soup of anchors, bases, metas, comments, declarations and odd hrefs."""
        encoding = "utf-8" if "charset" not in content_type else "latin-1"
        parse_or_refuse(document.encode(encoding, errors="replace"), content_type)

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b'{"files": [], "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", MEDIA_JSON),
            (b'{"files": ' + b"[" * 200_000, MEDIA_JSON),
            (b"<a href='" + b"x" * 8_000_000, MEDIA_HTML),
            (b"<!--" + b"x" * 8_000_000, MEDIA_HTML),
            (b"<a href=demo-pkg-1.0.tar.gz>" * 20_000, MEDIA_HTML),
        ],
        ids=["deep-json", "unclosed-deep-json", "unclosed-attribute", "unclosed-comment", "many"],
    )
    def test_huge_bodies_end_in_files_or_the_typed_error(
        self, content: bytes, content_type: str
    ) -> None:
        """Megabytes of nesting, an attribute that never closes, a comment that never ends."""
        parse_or_refuse(content, content_type)


@dataclass(frozen=True)
class Listed:
    """One file as the generated page lists it, and the ``DistFile`` it must parse to."""

    name: DistFilename
    href: str
    url: str
    hashes: dict[str, str]
    requires_python: str | None
    yanked: bool | str
    core_metadata: bool | dict[str, str] | None
    size: int | None
    upload_time: str | None


_HOSTS = ["https://index.example", "https://files.example", "https://user:secret@files.example"]
_digests = st.builds(
    lambda algorithm, digest: {algorithm: digest.hex()},
    st.sampled_from(["sha256", "sha512", "md5"]),
    st.binary(min_size=32, max_size=32),
)


@st.composite
def listed_files(draw: st.DrawFn, name: DistFilename) -> Listed:
    quoted = quote(name.filename)
    bucket = f"{draw(st.integers(min_value=0, max_value=255)):02x}"
    host = draw(st.sampled_from([None, *_HOSTS]))
    if host is None:  # relative to the page: /simple/<project>/ -> /packages/...
        href, url = (
            f"../../packages/{bucket}/{quoted}",
            f"https://index.example/packages/{bucket}/{quoted}",
        )
    else:
        href = f"{host}/packages/{bucket}/{quoted}"
        url = href.replace("user:secret@", "")
    return Listed(
        name=name,
        href=href,
        url=url,
        hashes=draw(st.just({}) | _digests),
        requires_python=draw(st.none() | specifier_sets()),
        yanked=draw(st.booleans() | st.text(min_size=1, max_size=30)),
        core_metadata=draw(st.none() | st.booleans() | _digests),
        size=draw(st.none() | st.integers(min_value=0, max_value=2**40)),
        upload_time=draw(st.none() | st.just("2024-01-02T03:04:05.123456Z")),
    )


def pages_files() -> st.SearchStrategy[list[Listed]]:
    return st.lists(dist_filenames(PROJECT).flatmap(listed_files), max_size=8)


def expected_file(listed: Listed, *, html_page: bool) -> DistFile:
    """What ``listed`` must parse to; HTML pages carry no size or upload time."""
    core_metadata = (
        None
        if listed.core_metadata in (None, False)
        else {}
        if listed.core_metadata is True
        else listed.core_metadata
    )
    return DistFile(
        filename=listed.name.filename,
        url=listed.url,
        kind=listed.name.kind,  # type: ignore[arg-type]
        version=listed.name.version,
        hashes=listed.hashes,
        requires_python=listed.requires_python,
        yanked=listed.yanked is not False,
        yanked_reason=listed.yanked if isinstance(listed.yanked, str) else None,
        size=None if html_page else listed.size,
        upload_time=None if html_page else listed.upload_time,
        core_metadata=core_metadata,
        tags=listed.name.tags,
    )


def render_json(files: list[Listed], foreign: list[DistFilename]) -> bytes:
    entries: list[dict[str, Any]] = []
    for listed in files:
        entry: dict[str, Any] = {"filename": listed.name.filename, "url": listed.href}
        entry["hashes"] = listed.hashes
        if listed.requires_python is not None:
            entry["requires-python"] = listed.requires_python
        entry["yanked"] = listed.yanked
        if listed.core_metadata is not None:
            entry["core-metadata"] = listed.core_metadata
        if listed.size is not None:
            entry["size"] = listed.size
        if listed.upload_time is not None:
            entry["upload-time"] = listed.upload_time
        entries.append(entry)
    entries += [{"filename": f.filename, "url": quote(f.filename), "hashes": {}} for f in foreign]
    page = {"meta": {"api-version": "1.1"}, "name": canonical(PROJECT), "files": entries}
    return json.dumps(page).encode()


def render_html(files: list[Listed], foreign: list[DistFilename]) -> bytes:
    anchors = []
    for listed in files:
        href = listed.href
        if listed.hashes:
            ((algorithm, digest),) = listed.hashes.items()
            href += f"#{algorithm}={digest}"
        attributes = [f'href="{html.escape(href)}"']
        if listed.requires_python is not None:
            attributes.append(f'data-requires-python="{html.escape(listed.requires_python)}"')
        if listed.yanked is True:
            attributes.append("data-yanked")
        elif isinstance(listed.yanked, str):
            attributes.append(f'data-yanked="{html.escape(listed.yanked)}"')
        if listed.core_metadata is True:
            attributes.append('data-core-metadata="true"')
        elif isinstance(listed.core_metadata, dict):
            ((algorithm, digest),) = listed.core_metadata.items()
            attributes.append(f'data-dist-info-metadata="{algorithm}={digest}"')
        anchors.append(f"<a {' '.join(attributes)}>{html.escape(listed.name.filename)}</a><br>")
    anchors += [f'<a href="{quote(f.filename)}">{html.escape(f.filename)}</a>' for f in foreign]
    head = '<meta name="pypi:repository-version" content="1.1">'
    return (
        f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(anchors)}</body></html>".encode()
    )


foreign_files = st.lists(
    dist_filenames().filter(lambda name: name.project != canonical(PROJECT)), max_size=3
)


class TestRoundTrip:
    @given(files=pages_files(), foreign=foreign_files)
    @fuzz_settings(100)
    def test_json_page_lists_exactly_its_files(
        self, files: list[Listed], foreign: list[DistFilename]
    ) -> None:
        """Every generated file of the project comes back as generated; other projects' don't."""
        parsed = parse_files(render_json(files, foreign), MEDIA_JSON, url=PAGE_URL, project=PROJECT)
        assert parsed == tuple(expected_file(listed, html_page=False) for listed in files)

    @given(files=pages_files(), foreign=foreign_files)
    @fuzz_settings(100)
    def test_html_page_lists_exactly_its_files(
        self, files: list[Listed], foreign: list[DistFilename]
    ) -> None:
        """The same files as PEP 503 anchors: hashes in fragments, metadata and yanking in data-."""
        parsed = parse_files(render_html(files, foreign), MEDIA_HTML, url=PAGE_URL, project=PROJECT)
        assert parsed == tuple(expected_file(listed, html_page=True) for listed in files)


class TestFilenames:
    @given(filename=st.text(max_size=80) | hrefs)
    @fuzz_settings(300)
    def test_any_text_is_a_name_or_none(self, filename: str) -> None:
        """No filename makes the parser raise: it is a distribution or it is skipped."""
        parsed = parse_dist_filename(filename)
        assert parsed is None or parsed.kind in ("wheel", "sdist")

    @given(
        stem=st.sampled_from(["demo-", "demo-1.0-", "demo-1.0-1-"]),
        digits=st.integers(min_value=4301, max_value=6000),
        suffix=st.sampled_from([".tar.gz", ".zip", "-py3-none-any.whl", "x-py3-none-any.whl"]),
    )
    @fuzz_settings(30)
    def test_numbers_too_long_for_int_are_skipped(
        self, stem: str, digits: int, suffix: str
    ) -> None:
        """Version or build numbers longer than Python converts (4300 digits) are a skip."""
        assert parse_dist_filename(stem + "1" * digits + suffix) is None

    @given(name=dist_filenames())
    @fuzz_settings(300)
    def test_generated_filenames_say_what_they_were_built_from(self, name: DistFilename) -> None:
        """Project (canonical), normalized version, kind and expanded tags all come back."""
        parsed = parse_dist_filename(name.filename)
        assert parsed is not None
        assert (parsed.project, parsed.version, parsed.kind, parsed.tags) == (
            name.project,
            name.version,
            name.kind,
            name.tags,
        )
