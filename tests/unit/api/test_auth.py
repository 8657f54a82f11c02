"""Bearer tokens: identified in constant time from digests, never kept in the clear."""

from __future__ import annotations

import pickle

import pytest

from service.api.auth import ANONYMOUS, TokenTable, load_token_table
from service.api.problems import Unauthorized
from service.settings import AuthSettings, Settings, SettingsError

TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-9876543210": "bob"}


class TestTokenTable:
    def test_a_presented_token_names_its_client(self) -> None:
        """Each token maps to its client; the scheme is case-insensitive."""
        table = TokenTable(TOKENS)
        assert table.identify("Bearer tok-alice-0123456789") == "alice"
        assert table.identify("bearer  tok-bob-9876543210 ") == "bob"

    @pytest.mark.parametrize(
        "header", [None, "", "Bearer", "Bearer ", "Basic dG9rOng=", "Bearer tok-alice-01234567"]
    )
    def test_anything_else_is_unauthorized(self, header: str | None) -> None:
        """Missing, malformed, other schemes and prefixes of a real token are all refused."""
        with pytest.raises(Unauthorized):
            TokenTable(TOKENS).identify(header)

    def test_the_table_holds_no_token_in_the_clear(self) -> None:
        """Only digests are kept: nothing a dump of the object shows can be replayed."""
        dumped = pickle.dumps(TokenTable(TOKENS).__dict__)
        for token in TOKENS:
            assert token.encode() not in dumped

    def test_without_tokens_everyone_is_anonymous(self) -> None:
        table = TokenTable(None)
        assert not table.enabled
        assert table.identify(None) == ANONYMOUS


class TestLoading:
    def test_pairs_are_read_from_the_named_variable(self) -> None:
        settings = Settings(auth=AuthSettings(tokens_env="T"))
        table = load_token_table(settings, {"T": "alice:tok-a,bob:tok-b"})
        assert table.identify("Bearer tok-b") == "bob"

    @pytest.mark.parametrize("value", ["", "alice", "alice:", ":tok"])
    def test_malformed_or_empty_tables_are_configuration_errors(self, value: str) -> None:
        with pytest.raises(SettingsError, match="T"):
            load_token_table(Settings(auth=AuthSettings(tokens_env="T")), {"T": value})
