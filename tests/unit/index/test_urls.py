"""URLs are normalized before a policy compares them; ambiguous spellings are refused."""

from __future__ import annotations

import pytest

from service.index.urls import AmbiguousURLError, is_plain_path, normalize_url


class TestNormalizeUrl:
    @pytest.mark.parametrize(
        ("url", "normalized"),
        [
            ("http://127.0.0.1:8080/d/../a/simple/", "http://127.0.0.1:8080/a/simple/"),
            ("http://127.0.0.1:8080/d/%2e%2e/a/simple/", "http://127.0.0.1:8080/a/simple/"),
            ("http://127.0.0.1:8080/d/%2E%2e/a/simple/", "http://127.0.0.1:8080/a/simple/"),
            ("http://127.0.0.1:8080/d/./simple/.", "http://127.0.0.1:8080/d/simple/"),
            ("http://127.0.0.1:8080/../../simple", "http://127.0.0.1:8080/simple"),
            ("http://127.0.0.1:8080/d/simple/..", "http://127.0.0.1:8080/d/"),
            ("HTTPS://Mirror.EXAMPLE/pypi/simple", "https://mirror.example/pypi/simple"),
            ("https://mirror.example:443/pypi/", "https://mirror.example/pypi/"),
            ("http://mirror.example:8443/pypi/", "http://mirror.example:8443/pypi/"),
            ("http://[::1]:80/%7Euser/%61/", "http://[::1]/~user/a/"),
            ("http://mirror.example/a%20b/%c3%a9/", "http://mirror.example/a%20b/%C3%A9/"),
            ("http://mirror.example", "http://mirror.example"),
        ],
    )
    def test_one_spelling_per_location(self, url: str, normalized: str) -> None:
        """Dot segments, plain or encoded in any case, resolve; scheme, host, port are canonical."""
        assert normalize_url(url) == normalized
        assert normalize_url(normalized) == normalized

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/d/%252e%252e/a/simple/",
            "http://127.0.0.1:8080/d/%2F../a/simple/",
            "http://127.0.0.1:8080/d/..%2fa/simple/",
            "http://127.0.0.1:8080/d/..%5Ca/simple/",
            "http://127.0.0.1:8080/d/..\\a/simple/",
            "http://127.0.0.1:8080/d/%25/simple/",
            "http://127.0.0.1:notaport/d/",
            "http://127.0.0.1:8080/d/..;/a/simple/",
            "http://127.0.0.1:8080/d/%2E%2E;x/a/simple/",
        ],
    )
    def test_ambiguous_spellings_are_refused(self, url: str) -> None:
        """Encoded slashes, backslashes, percent signs and ``..;`` have no one meaning: refused."""
        with pytest.raises(AmbiguousURLError):
            normalize_url(url)


class TestIsPlainPath:
    @pytest.mark.parametrize(
        ("path", "plain"),
        [
            ("/d/simple/demo/", True),
            ("/d/simple/../demo/", False),
            ("/d/simple/./demo/", False),
            ("/d/simple/%2E%2E/demo/", False),
            ("/d/simple/%252e%252e/demo/", False),
            ("/d/simple\\demo/", False),
            ("/d/simple%2fdemo/", False),
            ("/d/simple/..;/demo/", False),
            ("/d/simple/a;b/demo/", True),
        ],
    )
    def test_plain_paths(self, path: str, plain: bool) -> None:
        """A plain path has no dot segment and nothing a server might decode into one."""
        assert is_plain_path(path) is plain
