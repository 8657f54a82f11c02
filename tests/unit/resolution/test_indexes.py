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
        ],
    )
    def test_prefix_rules(self, url: str, allowed: bool) -> None:
        """Scheme, host and port must be equal and the path must lie under the prefix."""
        assert url_is_allowed(url, ["https://mirror.example/pypi/"]) is allowed


class TestMakeIndexes:
    def test_configured_order_when_none_named(self, settings) -> None:  # type: ignore[no-untyped-def]
        """With no indexes in the request every configured index is used, in order."""
        assert [i.name for i in make_indexes([], settings, {})] == ["corp", "pypi"]

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
        ],
    )
    def test_refused_refs_name_the_field(self, settings, ref: IndexRef, field: str) -> None:  # type: ignore[no-untyped-def]
        """Unknown names, URLs outside the prefixes and URLs with credentials are refused."""
        with pytest.raises(IndexRefError) as caught:
            make_indexes([ref], settings, {})
        assert caught.value.field == field

    def test_url_index_is_displayed_redacted(self, settings) -> None:  # type: ignore[no-untyped-def]
        """An index named by URL is shown by its URL."""
        [index] = make_indexes([IndexRef(url="https://mirror.example/pypi/simple")], settings, {})
        assert index.display_name == "https://mirror.example/pypi/simple"


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
