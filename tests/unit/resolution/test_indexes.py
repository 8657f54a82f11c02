"""Requests may name configured indexes, or URLs under the allowed prefixes only."""

import pytest

from service.resolution.indexes import IndexRefError, make_indexes, url_is_allowed
from service.resolution.request import IndexRef, PolicyOverride
from service.settings import load_settings


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    config = tmp_path / "resolvd.toml"
    config.write_text(
        """
[policy]
allowed_index_urls = ["https://mirror.example/pypi/"]

[[index]]
name = "corp"
url = "https://corp.example/simple/"
username_env = "CORP_USER"
password_env = "CORP_PASS"
ignore_error_codes = {metadata = [403]}

[[index]]
name = "pypi"
url = "https://pypi.org/simple"

[[index]]
name = "wheels"
url = "https://corp.example/wheels/"
format = "flat"
explicit = true
"""
    )
    return load_settings(config, environ={})


class TestUrlIsAllowed:
    @pytest.mark.parametrize(
        ("url", "allowed"),
        [
            ("https://mirror.example/pypi/simple", True),
            ("https://mirror.example/pypi", True),
            ("https://mirror.example/pypi-evil/simple", False),
            ("http://mirror.example/pypi/simple", False),
            ("https://mirror.example:8443/pypi/simple", False),
            ("https://mirror.example.evil/pypi/simple", False),
            ("HTTPS://Mirror.Example:443/pypi/simple", True),
            ("https://mirror.example/pypi/x/../simple", True),
        ],
    )
    def test_prefix_rules(self, url: str, allowed: bool) -> None:
        """Scheme, host and port must be equal and the path must lie under the prefix."""
        assert url_is_allowed(url, ["https://mirror.example/pypi/"]) is allowed

    @pytest.mark.parametrize(
        "url",
        [
            "https://mirror.example/pypi/../a/simple/",
            "https://mirror.example/pypi/%2e%2e/a/simple/",
            "https://mirror.example/pypi/%2E%2E/a/simple/",
            "https://mirror.example/pypi/%2e./a/simple/",
            "https://mirror.example/pypi/%252e%252e/a/simple/",
            "https://mirror.example/pypi/..%2fa/simple/",
            "https://mirror.example/pypi/..\\a/simple/",
            "HTTPS://MIRROR.EXAMPLE/pypi/%2E%2E/a/simple/",
        ],
    )
    def test_a_path_leaving_the_prefix_is_refused_however_spelled(self, url: str) -> None:
        """Dot segments, encoded dots (any case) and ambiguous escapes never pass the check."""
        assert url_is_allowed(url, ["https://mirror.example/pypi/"]) is False


class TestMakeIndexes:
    def test_configured_order_when_none_named(self, settings) -> None:  # type: ignore[no-untyped-def]
        """With no indexes in the request every configured index is used, in order."""
        assert [i.name for i in make_indexes([], settings, {})] == ["corp", "pypi", "wheels"]

    def test_credentials_come_from_the_environment(self, settings) -> None:  # type: ignore[no-untyped-def]
        """Credentials are read from the variables the index names, never from the request."""
        [corp] = make_indexes(
            [IndexRef(name="corp")], settings, {"CORP_USER": "u", "CORP_PASS": "s3cret-canary"}
        )
        assert corp.auth == ("u", "s3cret-canary")
        assert "s3cret-canary" not in repr(corp)

    def test_request_overrides_policy(self, settings) -> None:  # type: ignore[no-untyped-def]
        """A per-request ignore_error_codes replaces the configured half it names."""
        [corp] = make_indexes(
            [IndexRef(name="corp", ignore_error_codes=PolicyOverride(page=[403]))], settings, {}
        )
        assert corp.policy.page == frozenset({403, 404})
        assert corp.policy.metadata == frozenset({403})

    @pytest.mark.parametrize(
        ("ref", "field"),
        [
            (IndexRef(name="nope"), "indexes[0].name"),
            (IndexRef(url="https://elsewhere.example/simple"), "indexes[0].url"),
            (IndexRef(url="https://u:p@mirror.example/pypi/simple"), "indexes[0].url"),
            (IndexRef(), "indexes[0]"),
            (IndexRef(name="corp", url="https://mirror.example/pypi/simple"), "indexes[0]"),
            (IndexRef(name="corp", format="flat"), "indexes[0].format"),
        ],
    )
    def test_refused_refs_name_the_field(self, settings, ref: IndexRef, field: str) -> None:  # type: ignore[no-untyped-def]
        """Unknown names, URLs outside the prefixes and URLs with credentials are refused."""
        with pytest.raises(IndexRefError) as caught:
            make_indexes([ref], settings, {})
        assert caught.value.field == field

    @pytest.mark.parametrize(
        "url",
        [
            "https://mirror.example/pypi/../a/simple/",
            "https://mirror.example/pypi/%2E%2e/a/simple/",
            "https://mirror.example/pypi/%252e%252e/a/simple/",
            "https://mirror.example/pypi\\..\\a/simple/",
        ],
    )
    def test_an_escaping_url_is_refused_on_its_field(self, settings, url: str) -> None:  # type: ignore[no-untyped-def]
        """The request is refused naming ``indexes[0].url``; nothing is fetched later."""
        with pytest.raises(IndexRefError) as caught:
            make_indexes([IndexRef(url=url)], settings, {})
        assert caught.value.field == "indexes[0].url"

    def test_the_index_fetches_the_normalized_url(self, settings) -> None:  # type: ignore[no-untyped-def]
        """The URL the worker uses is exactly the one the prefix check judged."""
        [index] = make_indexes(
            [IndexRef(url="HTTPS://Mirror.Example:443/pypi/x/%2E%2E/./simple/")], settings, {}
        )
        assert index.url == index.name == "https://mirror.example/pypi/simple"

    def test_url_index_is_displayed_redacted(self, settings) -> None:  # type: ignore[no-untyped-def]
        """An index named by URL is shown by its URL."""
        [index] = make_indexes([IndexRef(url="https://mirror.example/pypi/simple")], settings, {})
        assert index.display_name == "https://mirror.example/pypi/simple"


class TestFlatAndExplicit:
    def test_a_configured_flat_index_keeps_its_url_as_written(self, settings) -> None:  # type: ignore[no-untyped-def]
        """A flat page's links resolve against its URL, so its trailing slash stays; a simple
        index's URL loses it. Both formats of one URL are cached apart."""
        [wheels] = make_indexes([IndexRef(name="wheels")], settings, {})
        assert (wheels.format, wheels.explicit) == ("flat", True)
        assert wheels.url == "https://corp.example/wheels/"
        url = "https://mirror.example/pypi/files/"
        [flat] = make_indexes([IndexRef(url=url, format="flat")], settings, {})
        [simple] = make_indexes([IndexRef(url=url)], settings, {})
        assert (flat.url, simple.url) == (
            "https://mirror.example/pypi/files/",
            "https://mirror.example/pypi/files",
        )
        assert flat.identity != simple.identity

    def test_sources_add_the_configured_index_they_name(self, settings) -> None:  # type: ignore[no-untyped-def]
        """A package pinned to a configured index the request did not list brings that index
        into the job, explicit: it serves only what is pinned to it."""
        indexes = make_indexes([IndexRef(name="corp")], settings, {}, sources={"x": "pypi"})
        assert [(i.name, i.explicit) for i in indexes] == [("corp", False), ("pypi", True)]
        listed = make_indexes([], settings, {}, sources={"x": "corp", "y": "wheels"})
        assert [i.name for i in listed] == ["corp", "pypi", "wheels"]

    def test_sources_may_name_a_url_index_of_the_request(self, settings) -> None:  # type: ignore[no-untyped-def]
        """An index the request names by URL is pinned to by that URL."""
        url = "https://mirror.example/pypi/simple/"
        indexes = make_indexes([IndexRef(url=url)], settings, {}, sources={"x": url})
        assert [i.name for i in indexes] == ["https://mirror.example/pypi/simple"]

    def test_an_unknown_source_index_names_the_package(self, settings) -> None:  # type: ignore[no-untyped-def]
        """``sources`` naming no index of the job nor of the configuration is refused."""
        with pytest.raises(IndexRefError) as caught:
            make_indexes([], settings, {}, sources={"torch": "pytorch"})
        assert caught.value.field == "sources.torch"
        assert "'pytorch'" in caught.value.message


class TestUnusableUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "https://mirror.example/pypi/sim\tple",
            "https://mirror.example/pypi/simple\r\nX-Evil: 1",
            "https://mirror.example/pypi/" + "a" * 5000,
        ],
        ids=["tab", "crlf", "too-long"],
    )
    def test_a_url_under_an_allowed_prefix_that_httpx_refuses_is_an_index_ref_error(
        self, settings, url: str
    ) -> None:  # type: ignore[no-untyped-def]
        """Python's URL parser drops tabs and newlines, so the prefix check alone would pass
        these; make_indexes refuses them, naming the field, before any job could run them."""
        with pytest.raises(IndexRefError) as caught:
            make_indexes([IndexRef(url=url)], settings, {})
        assert caught.value.field == "indexes[0].url"
