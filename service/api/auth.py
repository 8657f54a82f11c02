"""Who is calling: bearer tokens from ``auth.tokens_env``, or one anonymous client.

When ``auth.tokens_env`` names an environment variable holding ``client_id:token`` pairs
(separated by commas or whitespace), every route but the health checks requires
``Authorization: Bearer <token>`` and a job is visible only to the client that created it.
Unset, every caller is the client ``anonymous``. Tokens are read once, when the app is built,
and only their SHA-256 digests are kept: a heap dump or a debugger shows no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from litestar import Request

from service.api.problems import Unauthorized
from service.settings import Settings, SettingsError

__all__ = ["ANONYMOUS", "TokenTable", "load_token_table"]

ANONYMOUS = "anonymous"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """Maps bearer tokens to client ids; ``None`` tokens means authentication is off.

    Tokens are high-entropy secrets, so a plain SHA-256 is the right digest (a slow password
    hash would only slow every request down).
    """

    def __init__(self, tokens: Mapping[str, str] | None) -> None:
        self._digests = (
            {_digest(token): client for token, client in tokens.items()}
            if tokens is not None
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._digests is not None

    def identify(self, authorization: str | None) -> str:
        """The client id for an ``Authorization`` header value; raise ``Unauthorized``."""
        if self._digests is None:
            return ANONYMOUS
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized(
                "Send 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="resolvd"'},
            )
        presented_digest = _digest(presented.strip())
        client = None
        # Compare against every digest, in constant time, so timing reveals nothing.
        for digest, client_id in self._digests.items():
            if hmac.compare_digest(digest, presented_digest):
                client = client_id
        if client is None:
            raise Unauthorized(
                "The bearer token is not recognized.",
                headers={"WWW-Authenticate": 'Bearer realm="resolvd", error="invalid_token"'},
            )
        return client


def load_token_table(settings: Settings, environ: Mapping[str, str]) -> TokenTable:
    """Read the ``client_id:token`` pairs named by ``auth.tokens_env``."""
    variable = settings.auth.tokens_env
    if not variable:
        return TokenTable(None)
    tokens: dict[str, str] = {}
    for pair in environ.get(variable, "").replace(",", " ").split():
        client_id, sep, token = pair.partition(":")
        if not sep or not client_id or not token:
            raise SettingsError(f"{variable}: expected 'client_id:token' pairs")
        tokens[token] = client_id
    if not tokens:
        raise SettingsError(f"auth.tokens_env names {variable}, which holds no tokens")
    return TokenTable(tokens)


async def provide_client(request: Request[Any, Any, Any]) -> str:
    """Litestar dependency: the calling client's id."""
    table: TokenTable = request.app.state.tokens
    return table.identify(request.headers.get("authorization"))
