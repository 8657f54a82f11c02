"""Parsing project pages: PEP 503 HTML and PEP 691 JSON, with PEPs 592, 658, 700 and 714."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import urldefrag, urljoin

import msgspec
import pytest
from packaging.version import Version

from service.index import pages
from service.index.models import DistFile
from service.index.pages import (
    ACCEPT_PROJECT_PAGE,
    MEDIA_HTML,
    MEDIA_JSON,
    MEDIA_TEXT_HTML,
    PageBody,
    PageParseError,
    PageTooLargeError,
    _plain_absolute,
    negotiate,
    parse_dist_filename,
    parse_page,
    strip_userinfo,
)

PAGE_URL = "https://index.example/simple/demo/"
SHA = "a" * 64


def parse_files(content: bytes, content_type: str | None, **fields: Any) -> tuple[DistFile, ...]:
    """Every file ``parse_page`` lists (its listing makes them per version, on demand)."""
    return parse_page(content, content_type, **fields).files


def json_page(*files: dict[str, object], api_version: str = "1.1") -> bytes:
    return json.dumps(
        {"meta": {"api-version": api_version}, "name": "demo", "files": files}
    ).encode()


def json_file(
    filename: str = "demo-1.0-py3-none-any.whl", /, **fields: object
) -> dict[str, object]:
    return {"filename": filename, "url": f"../../files/{filename}", "hashes": {}, **fields}


def html_page(*anchors: str, head: str = "") -> bytes:
    return (
        f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(anchors)}</body></html>".encode()
    )


class TestNegotiate:
    def test_accept_header_prefers_json_then_versioned_html_then_legacy(self) -> None:
        """Accept lists PEP 691 JSON first, then v1 HTML at q=0.2, text/html at q=0.01."""
        expected = f"{MEDIA_JSON}, {MEDIA_HTML};q=0.2, {MEDIA_TEXT_HTML};q=0.01"
        assert expected == ACCEPT_PROJECT_PAGE

    @pytest.mark.parametrize(
        ("content_type", "expected"),
        [
            (MEDIA_JSON, "json"),
            (MEDIA_HTML, "html"),
            ("text/html; charset=utf-8", "html"),
            ("Application/Vnd.PyPI.Simple.V1+JSON", "json"),
        ],
    )
    def test_known_media_types(self, content_type: str, expected: str) -> None:
        """Each supported media type maps to its format, parameters and case aside."""
        assert negotiate(content_type) == expected

    @pytest.mark.parametrize(
        "content_type", [None, "", "application/json", "application/vnd.pypi.simple.v2+json"]
    )
    def test_other_media_types_are_errors(self, content_type: str | None) -> None:
        """Anything else (including a missing Content-Type) is a parse error."""
        with pytest.raises(PageParseError, match="unsupported content type"):
            negotiate(content_type)


class TestFilenames:
    def test_wheel_tags_are_expanded_and_sorted(self) -> None:
        """A compressed tag set expands to one string per tag."""
        parsed = parse_dist_filename(
            "Demo_Pkg-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        )
        assert parsed is not None
        assert parsed.project == "demo-pkg"
        assert parsed.kind == "wheel"
        assert parsed.tags == (
            "cp312-cp312-manylinux2014_x86_64",
            "cp312-cp312-manylinux_2_17_x86_64",
        )

    def test_version_is_normalized(self) -> None:
        """Versions come back in normalized form."""
        parsed = parse_dist_filename("demo-1.0.0alpha1.tar.gz")
        assert parsed is not None
        assert (parsed.version, parsed.kind, parsed.tags) == ("1.0.0a1", "sdist", ())

    @pytest.mark.parametrize(
        "filename",
        [
            "demo-1.0-py2.7.egg",
            "demo-1.0.win32.exe",
            "demo-1.0.tar.bz2",
            "demo-1.0.tgz",
            "demo-notaversion.tar.gz",
            "demo-1.0-bad.whl",
        ],
    )
    def test_legacy_and_unparsable_names_are_none(self, filename: str) -> None:
        """Eggs, installers, other archive types and malformed names are not distributions."""
        assert parse_dist_filename(filename) is None

    @pytest.mark.parametrize(
        "filename",
        [
            "demo-" + "1" * 4301 + ".tar.gz",
            "demo-1." + "1" * 4301 + "-py3-none-any.whl",
            "demo-1.0-" + "1" * 4301 + "-py3-none-any.whl",
        ],
        ids=["sdist-version", "wheel-version", "wheel-build"],
    )
    def test_numbers_longer_than_int_converts_are_none(self, filename: str) -> None:
        """A version or build number of 4301+ digits (past int()'s limit) is a skip, no crash."""
        assert parse_dist_filename(filename) is None


class TestJsonPages:
    def test_fields_map_to_dist_files(self) -> None:
        """Every PEP 691/700 field lands in the DistFile; relative URLs resolve against the page."""
        page = json_page(
            json_file(
                hashes={"sha256": SHA},
                **{
                    "requires-python": ">=3.9",
                    "size": 1234,
                    "upload-time": "2024-01-02T03:04:05.000000Z",
                },
            )
        )
        (dist_file,) = parse_files(page, MEDIA_JSON, url=PAGE_URL, project="Demo")
        assert dist_file.filename == "demo-1.0-py3-none-any.whl"
        assert dist_file.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
        assert dist_file.kind == "wheel"
        assert dist_file.version == "1.0"
        assert dist_file.hashes == {"sha256": SHA}
        assert dist_file.requires_python == ">=3.9"
        assert dist_file.size == 1234
        assert dist_file.upload_time == "2024-01-02T03:04:05.000000Z"
        assert dist_file.tags == ("py3-none-any",)
        assert (dist_file.yanked, dist_file.yanked_reason, dist_file.core_metadata) == (
            False,
            None,
            None,
        )

    @pytest.mark.parametrize(
        ("yanked", "expected"),
        [(False, (False, None)), (True, (True, None)), ("", (True, None)), ("bad", (True, "bad"))],
    )
    def test_yanked_variants(self, yanked: object, expected: tuple[bool, str | None]) -> None:
        """PEP 592: ``yanked`` is false, true, or a reason string (an empty reason is no reason)."""
        (dist_file,) = parse_files(
            json_page(json_file(yanked=yanked)), MEDIA_JSON, url=PAGE_URL, project="demo"
        )
        assert (dist_file.yanked, dist_file.yanked_reason) == expected

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({}, None),
            ({"core-metadata": False}, None),
            ({"core-metadata": True}, {}),
            ({"core-metadata": {"sha256": SHA}}, {"sha256": SHA}),
            ({"dist-info-metadata": True}, {}),
            ({"dist-info-metadata": {"sha256": SHA}}, {"sha256": SHA}),
            ({"core-metadata": {"sha256": SHA}, "dist-info-metadata": True}, {"sha256": SHA}),
        ],
    )
    def test_core_metadata_variants(
        self, fields: dict[str, object], expected: dict[str, str] | None
    ) -> None:
        """PEP 658/714: ``core-metadata`` wins over the legacy key; true means no hash given."""
        (dist_file,) = parse_files(
            json_page(json_file(**fields)), MEDIA_JSON, url=PAGE_URL, project="demo"
        )
        assert dist_file.core_metadata == expected

    def test_foreign_legacy_and_unparsable_files_are_skipped(self) -> None:
        """Only wheels and sdists of the page's project are listed."""
        page = json_page(
            json_file("demo-1.0.tar.gz"),
            json_file("demo-1.0.zip"),
            json_file("demo-1.0-py2.7.egg"),
            json_file("other-1.0-py3-none-any.whl"),
            json_file("demo-1.0.tar.bz2"),
        )
        files = parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")
        assert [f.filename for f in files] == ["demo-1.0.tar.gz", "demo-1.0.zip"]
        assert {f.kind for f in files} == {"sdist"}

    @pytest.mark.parametrize(
        "content",
        [b"not json", b'{"files": "nope"}', b'{"files": [{"filename": 1}]}', b"[]"],
    )
    def test_malformed_json_is_an_error(self, content: bytes) -> None:
        """A page that is not PEP 691 JSON is a parse error."""
        with pytest.raises(PageParseError, match="malformed JSON"):
            parse_files(content, MEDIA_JSON, url=PAGE_URL, project="demo")

    def test_newer_major_api_version_is_refused(self) -> None:
        """PEP 629: a major version the client does not know is an error."""
        with pytest.raises(PageParseError, match="unsupported repository API version"):
            parse_files(json_page(api_version="2.0"), MEDIA_JSON, url=PAGE_URL, project="demo")

    @pytest.mark.parametrize(
        ("api_version", "message"),
        [("²", "unparsable"), ("1" * 5000, "unsupported"), ("01.0", None)],
        ids=["superscript-digit", "5000-digits", "leading-zero"],
    )
    def test_api_versions_int_would_choke_on(self, api_version: str, message: str | None) -> None:
        """Non-ASCII digits are unparsable, a huge major is unsupported, 01 is 1: no ValueError."""
        page = json_page(json_file(), api_version=api_version)
        if message is None:
            assert len(parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")) == 1
            return
        with pytest.raises(PageParseError, match=f"{message} repository API version"):
            parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")

    def test_nesting_deeper_than_the_interpreter_is_a_parse_error(self) -> None:
        """msgspec's RecursionError on 100,000 nested arrays is a malformed page."""
        page = b'{"files": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        with pytest.raises(PageParseError, match="malformed JSON"):
            parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")

    def test_file_url_urllib_refuses_is_skipped(self) -> None:
        """A URL that does not parse (an unclosed IPv6 bracket) is no file; the rest stay."""
        page = json_page(
            {"filename": "demo-1.0.tar.gz", "url": "http://[::1/demo-1.0.tar.gz"}, json_file()
        )
        files = parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")
        assert [f.filename for f in files] == ["demo-1.0-py3-none-any.whl"]

    @pytest.mark.parametrize(
        "field",
        [
            {"hashes": ["sha256", "00"]},
            {"hashes": None},
            {"size": "12"},
            {"upload-time": 1700000000},
            {"core-metadata": "yes"},
            {"dist-info-metadata": 1},
        ],
        ids=["hashes-list", "hashes-null", "size-text", "time-number", "core-text", "dist-int"],
    )
    def test_a_file_with_a_field_of_the_wrong_type_is_skipped(
        self, field: dict[str, object]
    ) -> None:
        """Fields read only when a file is made are checked then: the file is unusable, the
        rest of the page stays (as for an unparsable URL)."""
        page = json_page(json_file("demo-1.0.tar.gz", **field), json_file())
        listing = parse_page(page, MEDIA_JSON, url=PAGE_URL, project="demo")
        assert [str(v) for v in listing.versions] == ["1.0"]
        assert [f.filename for f in listing.files] == ["demo-1.0-py3-none-any.whl"]

    def test_fields_read_late_keep_their_values(self) -> None:
        """Hashes, size, upload time and the PEP 714 metadata keys come through as sent."""
        page = json_page(
            json_file(
                hashes={"sha256": "ab" * 32},
                size=1234,
                **{"upload-time": "2024-01-02T03:04:05Z", "dist-info-metadata": {"sha256": "cd"}},
            ),
            json_file("demo-2.0.tar.gz", **{"core-metadata": True, "dist-info-metadata": False}),
        )
        wheel, sdist = parse_files(page, MEDIA_JSON, url=PAGE_URL, project="demo")
        assert wheel.hashes == {"sha256": "ab" * 32}
        assert (wheel.size, wheel.upload_time) == (1234, "2024-01-02T03:04:05Z")
        assert wheel.core_metadata == {"sha256": "cd"}
        assert sdist.core_metadata == {}
        assert (sdist.size, sdist.upload_time, sdist.hashes) == (None, None, {})

    def test_credentials_never_reach_file_urls(self) -> None:
        """Userinfo of the page URL or of a file URL is dropped: DistFiles hold no secrets."""
        page = json_page(
            json_file(),
            {"filename": "demo-2.0.tar.gz", "url": "https://u:pw@cdn.example/demo-2.0.tar.gz"},
        )
        files = parse_files(
            page, MEDIA_JSON, url="https://user:s3cret@index.example/simple/demo/", project="demo"
        )
        assert [f.url for f in files] == [
            "https://index.example/files/demo-1.0-py3-none-any.whl",
            "https://cdn.example/demo-2.0.tar.gz",
        ]


class TestHtmlPages:
    def test_anchor_attributes_map_to_dist_files(self) -> None:
        """href, hash fragment and data-* attributes become DistFile fields."""
        page = html_page(
            f'<a href="../../files/demo-1.0-py3-none-any.whl#sha256={SHA}" '
            'data-requires-python="&gt;=3.9,&lt;4">demo-1.0-py3-none-any.whl</a>'
        )
        (dist_file,) = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert dist_file.url == "https://index.example/files/demo-1.0-py3-none-any.whl"
        assert dist_file.hashes == {"sha256": SHA}
        assert dist_file.requires_python == ">=3.9,<4"
        assert dist_file.core_metadata is None
        assert not dist_file.yanked

    def test_escaped_href_and_percent_encoded_filename(self) -> None:
        """Entities in href are unescaped and the filename is the URL's decoded last segment."""
        page = html_page('<a href="/files/demo-1.0%2Blocal.tar.gz?a=1&amp;b=2">x</a>')
        (dist_file,) = parse_files(page, MEDIA_TEXT_HTML, url=PAGE_URL, project="demo")
        assert dist_file.url == "https://index.example/files/demo-1.0%2Blocal.tar.gz?a=1&b=2"
        assert (dist_file.filename, dist_file.version) == ("demo-1.0+local.tar.gz", "1.0+local")

    @pytest.mark.parametrize(
        ("attribute", "expected"),
        [
            ("", (False, None)),
            ("data-yanked", (True, None)),
            ('data-yanked=""', (True, None)),
            ('data-yanked="broken &amp; bad"', (True, "broken & bad")),
        ],
    )
    def test_yanked_variants(self, attribute: str, expected: tuple[bool, str | None]) -> None:
        """PEP 592: the attribute's presence yanks; its value, if any, is the reason."""
        page = html_page(f'<a href="demo-1.0.tar.gz" {attribute}>demo-1.0.tar.gz</a>')
        (dist_file,) = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert (dist_file.yanked, dist_file.yanked_reason) == expected

    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            ('data-core-metadata="true"', {}),
            (f'data-core-metadata="sha256={SHA}"', {"sha256": SHA}),
            ('data-dist-info-metadata="true"', {}),
            (f'data-dist-info-metadata="sha256={SHA}"', {"sha256": SHA}),
            (f'data-core-metadata="sha256={SHA}" data-dist-info-metadata="true"', {"sha256": SHA}),
            ('data-core-metadata="false"', None),
            ('data-core-metadata="nohash=1"', None),
        ],
    )
    def test_core_metadata_variants(self, attributes: str, expected: dict[str, str] | None) -> None:
        """PEP 658/714: ``true`` means no hash; ``<hash>=<value>`` a hash; the new name wins."""
        page = html_page(f'<a href="demo-1.0-py3-none-any.whl" {attributes}>w</a>')
        (dist_file,) = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert dist_file.core_metadata == expected

    def test_base_href_is_honoured(self) -> None:
        """A ``<base href>`` changes what relative links resolve against."""
        page = html_page(
            '<a href="demo-1.0.tar.gz">demo-1.0.tar.gz</a>',
            head='<base href="https://mirror.example/packages/">',
        )
        (dist_file,) = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert dist_file.url == "https://mirror.example/packages/demo-1.0.tar.gz"

    def test_unknown_hash_fragments_are_ignored(self) -> None:
        """Only hashlib-guaranteed algorithms are kept from a fragment."""
        page = html_page('<a href="demo-1.0.tar.gz#whirlpool=abc">x</a>')
        (dist_file,) = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert dist_file.hashes == {}

    def test_charset_parameter_decodes_the_page(self) -> None:
        """The Content-Type charset decodes the page."""
        page = '<a href="demo-1.0.tar.gz" data-yanked="café">x</a>'.encode("latin-1")
        (dist_file,) = parse_files(page, "text/html; charset=latin-1", url=PAGE_URL, project="demo")
        assert dist_file.yanked_reason == "café"

    @pytest.mark.parametrize(
        "charset", ["idna", "punycode", "unicode_escape", "raw_unicode_escape", "undefined", "hex"]
    )
    def test_codecs_no_page_is_written_in_fall_back_to_utf8(self, charset: str) -> None:
        """Python codecs that are no charset (some raise even with errors="replace") mean UTF-8."""
        page = '<a href="demo-1.0.tar.gz" data-yanked="café \\u00e9">x</a>'.encode()
        (dist_file,) = parse_files(
            page, f"text/html; charset={charset}", url=PAGE_URL, project="demo"
        )
        assert dist_file.yanked_reason == "café \\u00e9"

    def test_marked_sections_and_declarations_are_passed_over(self) -> None:
        """``<![if0 ...]>`` (CPython's HTMLParser asserts on it) is skipped like a declaration."""
        page = html_page("<![if0 x]>", '<a href="demo-1.0.tar.gz">x</a>')
        files = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert [f.filename for f in files] == ["demo-1.0.tar.gz"]

    def test_links_in_comments_and_scripts_are_not_links(self) -> None:
        """Comments, raw-text elements and attribute values holding ``>`` are tokenized as HTML."""
        page = html_page(
            '<!-- <a href="demo-0.1.tar.gz">old</a> -->',
            "<script>var s = '<a href=\"demo-0.2.tar.gz\">';</script>",
            '<a data-requires-python="&gt;=3.8" href="demo-1.0.tar.gz" title="a>b">x</a>',
            "<A HREF='demo-2.0.tar.gz'>y</A>",
        )
        files = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert [(f.filename, f.requires_python) for f in files] == [
            ("demo-1.0.tar.gz", ">=3.8"),
            ("demo-2.0.tar.gz", None),
        ]

    def test_href_urllib_refuses_is_skipped(self) -> None:
        """An href that does not parse (an unclosed IPv6 bracket) is no file; the rest stay."""
        page = html_page(
            '<a href="http://[::1/demo-1.0.tar.gz">x</a>', '<a href="demo-2.0.tar.gz">y</a>'
        )
        files = parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")
        assert [f.filename for f in files] == ["demo-2.0.tar.gz"]

    def test_base_href_urllib_refuses_is_a_parse_error(self) -> None:
        """Relative links cannot resolve against a base that does not parse."""
        page = html_page('<a href="demo-1.0.tar.gz">x</a>', head='<base href="http://[x/">')
        with pytest.raises(PageParseError, match="unusable <base href"):
            parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")

    def test_repository_version_meta_is_checked(self) -> None:
        """PEP 629 applies to HTML too."""
        page = html_page(head='<meta name="pypi:repository-version" content="2.0">')
        with pytest.raises(PageParseError, match="unsupported repository API version"):
            parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo")

    def test_anchors_without_href_and_foreign_files_are_skipped(self) -> None:
        """Anchors without href, and links to other projects, are not files of this page."""
        page = html_page('<a name="top">x</a>', '<a href="other-1.0.tar.gz">o</a>')
        assert parse_files(page, MEDIA_HTML, url=PAGE_URL, project="demo") == ()


class TestListing:
    """What ``parse_page`` gives: versions at once, each version's files when asked."""

    def test_versions_come_from_filenames_newest_first_spellings_merged(self) -> None:
        """``1.0`` and ``1.0.0`` are one version; foreign and unparsable names are no version."""
        listing = parse_page(
            json_page(
                json_file("demo-1.0.0-py3-none-any.whl"),
                json_file("demo-2.0rc1.tar.gz"),
                json_file("demo-1.0.tar.gz"),
                json_file("demo-10.0-py3-none-any.whl"),
                json_file("other-3.0.tar.gz"),
                json_file("demo-x.y.tar.gz"),
            ),
            MEDIA_JSON,
            url=PAGE_URL,
            project="demo",
        )
        assert [str(v) for v in listing.versions] == ["10.0", "2.0rc1", "1.0.0"]
        assert [f.filename for f in listing.files_of(listing.versions[-1])] == [
            "demo-1.0.0-py3-none-any.whl",
            "demo-1.0.tar.gz",
        ]
        assert listing.file_count == 6

    def test_a_version_s_files_are_made_once_and_shared(self) -> None:
        """Asking twice gives the same records; a version the page does not list has none."""
        listing = parse_page(json_page(json_file()), MEDIA_JSON, url=PAGE_URL, project="demo")
        (version,) = listing.versions
        assert listing.files_of(version) is listing.files_of(version)
        assert listing.files_of(Version("9")) == ()
        assert not listing.lists(Version("9"))

    def test_a_wheel_whose_tags_do_not_parse_is_dropped_when_its_version_is_made(self) -> None:
        """The first pass only splits names; the full parse still refuses a malformed wheel."""
        listing = parse_page(
            json_page(json_file("demo-1.0-py3-none-any.whl"), json_file("demo-1.0-x-y-.whl")),
            MEDIA_JSON,
            url=PAGE_URL,
            project="demo",
        )
        assert [f.filename for f in listing.files_of(Version("1.0"))] == [
            "demo-1.0-py3-none-any.whl"
        ]

    @pytest.mark.parametrize("page_format", ["json", "html"])
    def test_files_are_made_again_from_the_compressed_body(self, page_format: str) -> None:
        """Once the decoded page is forgotten (or read back from a cache), the body suffices."""
        files = [json_file(f"demo-{n}.0-py3-none-any.whl") for n in range(3)]
        content, media = (
            (json_page(*files), MEDIA_JSON)
            if page_format == "json"
            else (html_page(*(f'<a href="{f["url"]}">x</a>' for f in files)), MEDIA_HTML)
        )
        listing = parse_page(content, media, url=PAGE_URL, project="demo")
        expected = listing.files
        pages._hot.clear()  # as if every other page had been parsed since
        again = parse_page(
            listing.body.content(), media, url=PAGE_URL, project="demo", body=listing.body
        )
        assert again.digest == listing.digest
        assert [again.files_of(v) for v in again.versions] == [
            listing.files_of(v) for v in listing.versions
        ]
        assert listing.files == expected
        assert listing.body.size == len(content) > len(listing.body.data)

    @pytest.mark.parametrize("page_format", ["json", "html"])
    def test_more_files_than_the_cap_is_page_too_large(self, page_format: str) -> None:
        """fetch.max_page_files bounds what a page may list, foreign files included."""
        names = [f"other{n}-1.0.tar.gz" for n in range(5)]
        content, media = (
            (json_page(*(json_file(n) for n in names)), MEDIA_JSON)
            if page_format == "json"
            else (html_page(*(f'<a href="{n}">{n}</a>' for n in names)), MEDIA_HTML)
        )
        assert parse_page(content, media, url=PAGE_URL, project="demo", max_files=5).versions == ()
        with pytest.raises(PageTooLargeError) as caught:
            parse_page(content, media, url=PAGE_URL, project="demo", max_files=4)
        assert caught.value.limit == 4
        assert caught.value.files > 4

    def test_entries_as_short_as_json_allows_are_still_counted(self) -> None:
        """The search before decoding is skipped for pages shorter than the cap's worth of the
        shortest entries: those entries are no shorter than the bound assumes."""
        entry = b'{"filename":"","url":""}'
        content = b'{"files":[' + b",".join([entry] * 40) + b"]}"
        assert 40 * pages._MIN_JSON_FILE_BYTES <= len(content) < 41 * pages._MIN_JSON_FILE_BYTES
        with pytest.raises(PageTooLargeError) as caught:
            parse_page(content, MEDIA_JSON, url=PAGE_URL, project="demo", max_files=39)
        assert caught.value.files == 40


class TestPageBody:
    def test_a_gzipped_body_is_kept_as_it_came(self) -> None:
        """The index's gzip bytes are stored (nothing compressed again) and give the page."""
        content = json_page(*(json_file(f"demo-{n}.0-py3-none-any.whl") for n in range(50)))
        sent = gzip.compress(content)
        body = PageBody.make(content, MEDIA_JSON, PAGE_URL, gzipped=sent)
        assert (body.encoding, body.data, body.size) == ("gzip", sent, len(content))
        assert body.content() == content
        listing = parse_page(content, MEDIA_JSON, url=PAGE_URL, project="demo", body=body)
        pages._hot.clear()
        assert [f.filename for f in listing.files] == [
            f"demo-{n}.0-py3-none-any.whl" for n in range(50)
        ]

    def test_otherwise_it_is_compressed_with_zstd(self) -> None:
        content = json_page(json_file("demo-1.0.tar.gz"))
        body = PageBody.make(content, MEDIA_JSON, PAGE_URL)
        assert body.encoding == "zstd"
        assert body.content() == content

    def test_a_body_stored_before_the_encoding_field_reads_as_zstd(self) -> None:
        """Cache entries written without ``encoding`` (zstd was then the only one) still load."""
        content = json_page(json_file("demo-1.0.tar.gz"))
        body = PageBody.make(content, MEDIA_JSON, PAGE_URL)
        stored = msgspec.msgpack.encode(
            {"data": body.data, "content_type": MEDIA_JSON, "url": PAGE_URL, "size": len(content)}
        )
        assert msgspec.msgpack.decode(stored, type=PageBody).content() == content

    @pytest.mark.parametrize(
        "damage",
        [
            lambda data: data[: len(data) // 2],  # truncated
            lambda data: data[:20] + bytes(len(data) - 20),  # corrupt
        ],
        ids=["truncated", "corrupt"],
    )
    def test_a_damaged_gzip_body_is_a_parse_error(self, damage: Any) -> None:
        content = json_page(*(json_file(f"demo-{n}.0.tar.gz") for n in range(50)))
        body = PageBody.make(content, MEDIA_JSON, PAGE_URL, gzipped=damage(gzip.compress(content)))
        with pytest.raises(PageParseError, match="does not"):
            body.content()

    def test_a_gzip_body_never_inflates_past_its_size(self) -> None:
        """A stored body that says it is small but inflates big (a bomb in the cache) stops at
        its size and is refused."""
        bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
        body = PageBody(
            data=bomb, content_type=MEDIA_JSON, url=PAGE_URL, size=1024, encoding="gzip"
        )
        with pytest.raises(PageParseError, match="1024 bytes"):
            body.content()


@pytest.mark.parametrize(
    ("href", "plain"),
    [
        ("https://files.example/packages/ab/demo-1.0-py3-none-any.whl", True),
        ("http://127.0.0.1:8080/f/demo-1.0.tar.gz?x=1", True),
        ("https://a/%2e%2e/demo-1.0.tar.gz", True),  # the index's own business: kept as sent
        ("https://a/b/../demo-1.0.tar.gz", False),
        ("https://u:p@a/demo-1.0.tar.gz", False),
        ("https://a/demo-1.0.tar.gz#sha256=00", False),
        ("https://a/./demo-1.0.tar.gz", False),
        ("https://a/x y/demo-1.0.tar.gz", False),
        ("HTTPS://a/demo-1.0.tar.gz", False),
        ("https://[::1/demo-1.0.tar.gz", False),
        ("/relative/demo-1.0.tar.gz", False),
    ],
)
def test_plain_absolute_links_skip_only_joins_that_change_nothing(href: str, plain: bool) -> None:
    """The fast path for JSON file URLs takes a link as it is only where urljoin, urldefrag
    and stripping user info would give that same link."""
    assert _plain_absolute(href) is plain
    if plain:
        joined, fragment = urldefrag(urljoin(PAGE_URL, href))
        assert (strip_userinfo(joined), fragment) == (href, "")
