"""``check_url``: a URL httpx would refuse is refused up front, with a reason in words."""

from __future__ import annotations

import httpx
import pytest

from service.index.urls import MAX_URL_LENGTH, UnusableURLError, check_url

PREFIX = "https://mirror.example/pypi/"

REFUSED = {
    "tab": (PREFIX + "sim\tple", "'\\t' at position 31"),
    "crlf": (PREFIX + "simple\r\nX-Evil: 1", "'\\r' at position 34"),
    "newline": (PREFIX + "simple\n", "'\\n'"),
    "space": ("https://mirror example/simple", "' '"),
    "nul": (PREFIX + "simple\x00", "'\\x00'"),
    "zero-width-space": (PREFIX + "sim\u200bple", "'\\u200b'"),
    "too-long": (PREFIX + "a" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH}"),
    "bad-idna": ("https://xn--a.example/simple", "not a usable URL"),
    "label-too-long": (f"https://{'a' * 64}.example/simple", "not a DNS name"),
    "host-too-long": (f"https://{'a.' * 130}example/simple", "not a DNS name"),
    "port-too-big": ("https://mirror.example:99999/simple", "port 99999"),
    "port-zero": ("https://mirror.example:0/simple", "port 0"),
    "bad-ipv6": ("https://[::1/simple", "not a usable URL"),
}

ACCEPTED = [
    "https://pypi.org/simple",
    "https://mirror.example:8443/pypi/simple/",
    "http://127.0.0.1:9/corp/simple",
    "http://[::1]:8080/simple",
    "https://münchen.example/simple",
    "https://xn--mnchen-3ya.example/simple",
    PREFIX + "%09encoded-tab-is-just-a-path",
    "https://" + "a" * 63 + ".example/simple",
]


class TestCheckUrl:
    @pytest.mark.parametrize(("url", "reason"), REFUSED.values(), ids=list(REFUSED))
    def test_what_httpx_would_refuse_is_refused_with_a_reason(self, url: str, reason: str) -> None:
        """Each URL is refused; the message says why without repeating the URL."""
        with pytest.raises(UnusableURLError) as caught:
            check_url(url)
        assert reason in str(caught.value)
        assert url not in str(caught.value)

    @pytest.mark.parametrize("url", ACCEPTED)
    def test_ordinary_urls_pass_and_httpx_takes_them(self, url: str) -> None:
        """Index URLs in use, IDN hosts and IPv6 literals pass, and httpx agrees."""
        check_url(url)
        assert httpx.Request("GET", url).url.raw_host
