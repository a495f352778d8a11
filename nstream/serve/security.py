"""The server's guard, one ASGI middleware around everything: token, Host and Origin checks, headers.

- With a token (required off loopback), every ``/api/`` call but the login needs ``Authorization:
  Bearer TOKEN`` or the page's login cookie; both are compared in constant time.
- Without one (loopback only), the Host header must name this machine: a web page elsewhere cannot
  reach the API through DNS rebinding.
- A state-changing request whose ``Origin`` is another site is refused (a form on any page could
  otherwise post jobs to 127.0.0.1), unless that origin was named with ``--cors-origin``.
- Every response says ``nosniff``, carries a strict CSP (the page's own scripts and styles only) and
  is never framed; API responses are not cached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

COOKIE = "nstream_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", CSP.encode()),
           (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
           (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PUBLIC_API = ("/api/login",)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def session_value(token: str) -> str:
    """The login cookie's value: derived from the token (the token itself never sits in a cookie)."""
    return hmac.new(token.encode(), b"nstream-session-v1", hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times say nothing about how much of a guess was right."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().split("=", 1) for part in header.split(";") if "=" in part)
    return {name: value for name, value in pairs}


def authorized(headers: dict[str, str], token: str) -> bool:
    """A bearer token or the login cookie matches."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and same_secret(given.strip(), token):
        return True
    cookie = _cookies(headers.get("cookie", "")).get(COOKIE)
    return cookie is not None and same_secret(cookie, session_value(token))


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: refuses what the module docstring lists with a JSON error, adds the headers."""

    def __init__(self, app: App, token: str | None, allowed_origins: Iterable[str] = (),
                 extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.origins = {origin.rstrip("/") for origin in allowed_origins}
        self.hosts = {*LOCAL_HOSTS, *extra_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope)
        api = scope["path"].startswith("/api/")

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                cached = any(key.lower() == b"cache-control" for key, _ in headers)
                message["headers"] = headers + HEADERS + ([(b"cache-control", b"no-store")] if api and not cached else [])
            await send(message)

        if problem is None:
            await self.app(scope, receive, with_headers)
            return
        status, text = problem
        body = json.dumps({"error": text}).encode()
        await with_headers({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) for a request that must not reach the app, else None."""
        headers = _headers(scope)
        host = headers.get("host", "")
        if self.token is None and _host_name(host) not in self.hosts:
            return 400, f"unexpected Host header {host!r}: this server answers on 127.0.0.1 (or localhost) only"
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin:
            if urlsplit(origin).netloc != host and origin.rstrip("/") not in self.origins:
                return 403, f"cross-origin request from {origin} refused (start the server with --cors-origin to allow it)"
        path = scope["path"]
        if self.token is not None and path.startswith("/api/") and path not in PUBLIC_API:
            if not authorized(headers, self.token):
                return 401, "this server needs its token: send 'Authorization: Bearer TOKEN', or log in on the page"
        return None
