"""Credentials never leave the process inside a URL."""

import pytest

from service.diagnostics.redact import redact_text, redact_url


class TestRedactUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://user:secret@host/simple", "https://user:****@host/simple"),
            ("https://token@host:8080/simple", "https://****@host:8080/simple"),
            ("https://host/simple", "https://host/simple"),
        ],
    )
    def test_password_is_masked(self, url: str, expected: str) -> None:
        """The password (or a bare token) is replaced by ****; the user name stays."""
        assert redact_url(url) == expected


class TestRedactText:
    def test_every_url_in_text_is_masked(self) -> None:
        """URLs embedded in free text are redacted too."""
        text = "GET https://u:s3cret@a/x failed; retry http://t0k@b/y"
        assert redact_text(text) == "GET https://u:****@a/x failed; retry http://****@b/y"
