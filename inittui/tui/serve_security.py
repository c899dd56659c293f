"""Who may talk to ``inittui serve``: a per-server token, the Host and the Origin header.

The page, the downloads and the websocket each need the token (in ``?token=``, in the
websocket path ``/ws/TOKEN`` or in the cookie the page sets); a request whose Host is not the
bound host (DNS rebinding) or whose Origin is not the served origin (another site's page) is
refused with 403 before it reaches textual-serve. Static files (textual.js, fonts) need no token.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` and ``::1`` reach only this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as it appears in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class AccessPolicy:
    """The checks one server applies to every request."""

    host: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie_name(self) -> str:
        # Cookies are shared by every port of a host: one name per port keeps servers apart.
        return f"inittui-token-{self.port}"

    def allowed_hosts(self) -> set[str] | None:
        """Host header values accepted; None: any (a wildcard bind, where the token decides)."""
        if self.host in WILDCARD_HOSTS:
            return None
        names = set(LOOPBACK_NAMES) if is_loopback(self.host) else {url_host(self.host)}
        return {f"{name.lower()}:{self.port}" for name in names}

    def check(self, request: web.Request) -> str | None:
        """Why ``request`` is refused, or None when it may pass."""
        host = request.headers.get("Host", "").lower()
        allowed = self.allowed_hosts()
        if allowed is not None and host not in allowed:
            return "forbidden: unexpected Host header (open the URL inittui serve printed)"
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return "forbidden: cross-origin request"
        if request.path.startswith("/static/"):
            return None
        if not self._token_ok(request):
            return "forbidden: missing or wrong token (open the URL inittui serve printed)"
        return None

    def _token_ok(self, request: web.Request) -> bool:
        for candidate in (
            request.query.get("token"),
            request.match_info.get("token"),
            request.cookies.get(self.cookie_name),
        ):
            if candidate and hmac.compare_digest(candidate.encode(), self.token.encode()):
                return True
        return False

    def middleware(self) -> Callable:
        @web.middleware
        async def guard(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            problem = self.check(request)
            if problem is not None:
                raise web.HTTPForbidden(text=problem + "\n")
            response = await handler(request)
            if request.path == "/" and request.query.get("token"):
                # The page's downloads are opened by textual.js without the token: the cookie
                # carries it (HttpOnly, and never sent by another site's page).
                response.set_cookie(
                    self.cookie_name, self.token, httponly=True, samesite="Strict", path="/"
                )
            return response

        return guard


def content_disposition(value: str) -> str:
    """Rewrite textual-serve's ``attachment; filename=NAME`` per RFC 6266: an ASCII fallback
    in quotes and the exact name in ``filename*=UTF-8''...`` (a ``;`` no longer cuts it)."""
    kind, sep, name = value.partition("; filename=")
    if not sep:
        return value
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    quoted = urllib.parse.quote(name, safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


async def fix_download_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: quote the download name."""
    value = response.headers.get("Content-Disposition")
    if value is not None:
        response.headers["Content-Disposition"] = content_disposition(value)
