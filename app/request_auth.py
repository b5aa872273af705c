"""Who is asking: the one place that reads the Authorization header and tells API requests apart.

Pages and the API share flask-login; the API also accepts bearer tokens, which must never turn a
page request into a token-authenticated one (pages rely on the session's CSRF protection).
"""

from __future__ import annotations

from flask import Request, request

API_PREFIX = "/api/"
TOKEN_AUTH_KEY = "wirewan.token_auth"


def is_api_request(req: Request | None = None) -> bool:
    """Whether the request is for the JSON API (answered with JSON errors, never HTML)."""
    return (req or request).path.startswith(API_PREFIX)


def bearer_token(req: Request | None = None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    header = (req or request).headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return header[7:].strip()


def is_token_auth(req: Request | None = None) -> bool:
    """Whether this request was authenticated by a bearer token (no cookie, so no CSRF risk)."""
    return bool((req or request).environ.get(TOKEN_AUTH_KEY, False))


def mark_token_auth(req: Request | None = None) -> None:
    (req or request).environ[TOKEN_AUTH_KEY] = True
