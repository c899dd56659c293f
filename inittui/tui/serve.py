"""Serve the terminal UI in a web browser with textual-serve (``inittui serve TARGET``).

Each browser tab runs ``inittui TARGET ...`` in its own process (through
``inittui.tui.serve_child``, which dies with the server); the server only relays the terminal.
The server is private by default (see ``serve_security``): a token in the printed URL, the
Host and Origin headers checked, at most ``max_sessions`` tabs at once. The socket is bound
before anything is printed, so a taken port is one error line and no banner.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shlex
import signal
import socket
import sys
from pathlib import Path

from aiohttp import WSCloseCode, web
from textual_serve import server as ts_server
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from inittui.core.errors import InittuiError
from inittui.tui.serve_page import render_page
from inittui.tui.serve_security import (
    WILDCARD_HOSTS,
    AccessPolicy,
    fix_download_headers,
    is_loopback,
    url_host,
)

EXPORT_ROOT = "inittui-exports"
"""Folder (under the working directory) that holds one ``tab-N`` folder per browser tab."""


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket now, so a taken port or a bad host fails before the banner."""
    bind_host = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    try:
        return socket.create_server((bind_host, port), family=family, backlog=64)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InittuiError(f"cannot listen on {url_host(host)}:{port}: {reason}") from None


class TabService(AppService):
    """One tab's app process; known to the server so shutdown can end it."""

    server: InittuiServer  # set on the per-server subclass

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width=width, height=height)
        environment["INITTUI_SERVE_PARENT"] = str(os.getpid())
        environment["INITTUI_EXPORT_DIR"] = str(self.server.next_tab_folder())
        return environment

    async def start(self, width: int, height: int) -> None:
        self.server.services.add(self)
        await super().start(width, height)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            self.server.services.discard(self)


class InittuiServer(Server):
    """textual-serve's server behind the access policy, with a session limit and a fast exit."""

    def __init__(
        self,
        argv: list[str],
        sock: socket.socket,
        host: str,
        max_sessions: int = 4,
        title: str = "inittui",
    ) -> None:
        child = [sys.executable, "-m", "inittui.tui.serve_child", *argv]
        # `exec`: the shell textual-serve starts becomes the app, whose parent is this server.
        super().__init__("exec " + shlex.join(child), host=host, title=title)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.policy = AccessPolicy(host=host, port=self.port)
        self.max_sessions = max_sessions
        self.sessions = 0
        self.services: set[TabService] = set()
        self.sockets: set[web.WebSocketResponse] = set()
        self._tab_numbers = itertools.count(1)
        self.export_root = Path.cwd() / EXPORT_ROOT

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if is_loopback(self.host) and ":" not in self.host else self.host
        if self.host in WILDCARD_HOSTS:
            shown = socket.gethostname()
        return f"http://{url_host(shown)}:{self.port}/?token={self.policy.token}"

    def next_tab_folder(self) -> Path:
        """A fresh ``inittui-exports/tab-N`` folder for the tab now starting."""
        while True:
            folder = self.export_root / f"tab-{next(self._tab_numbers)}"
            try:
                folder.mkdir(parents=True)
                return folder
            except FileExistsError:
                continue

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{token}", self.handle_websocket)
        app.middlewares.append(self.policy.middleware())
        app.on_response_prepare.append(fix_download_headers)
        app.on_shutdown.insert(0, self._end_tabs)
        return app

    async def on_startup(self, app: web.Application) -> None:
        print(f"inittui serve: open {self.url}", flush=True)
        print("Press Ctrl+C to stop.", flush=True)

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        font_size = to_int(request.query.get("fontsize", "16"), 16)
        websocket_url = f"ws://{request.host}/ws/{self.policy.token}"
        page = render_page(self.title, websocket_url, font_size)
        return web.Response(text=page, content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.sessions >= self.max_sessions:
            websocket = web.WebSocketResponse()
            await websocket.prepare(request)
            message = (
                f"inittui serve: {self.max_sessions} session(s) are open, the most this server "
                "allows (--max-sessions); close another tab and reload this one.\r\n"
            )
            await websocket.send_bytes(message.encode())
            await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many sessions")
            return websocket
        self.sessions += 1
        try:
            return await super().handle_websocket(request)
        finally:
            self.sessions -= 1

    async def _end_tabs(self, app: web.Application) -> None:
        """On shutdown: kill every tab's process, so the websockets end at once."""
        for service in list(self.services):
            process = service._process
            if process is not None and process.returncode is None:
                process.kill()
        closing = [
            service.remote_close() for service in list(self.services) if service.remote_close
        ]
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=0.3)

    def serve(self, debug: bool = False) -> None:
        """Run until SIGINT or SIGTERM (textual-serve's loop, on the socket bound already)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        loop.add_signal_handler(signal.SIGINT, self.request_exit)
        loop.add_signal_handler(signal.SIGTERM, self.request_exit)
        service = type("TabService", (TabService,), {"server": self})
        ts_server.AppService = service  # textual-serve builds its AppService from this name
        web.run_app(
            self._make_app(),
            sock=self.sock,
            handle_signals=False,
            loop=loop,
            print=lambda *args: None,
            shutdown_timeout=0.5,
        )


def serve(
    argv: list[str],
    host: str = "localhost",
    port: int = 8000,
    max_sessions: int = 4,
    title: str | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``inittui ARGV`` per browser tab on ``host:port`` (or on ``sock``, bound already
    by ``bind``) until Ctrl+C or SIGTERM."""
    sock = sock or bind(host, port)
    server = InittuiServer(argv, sock, host, max_sessions, title or "inittui")
    if not is_loopback(host):
        print(
            f"warning: --host {host} serves inittui beyond this machine; anyone who gets the "
            "URL with its token can drive it and write files as you",
            file=sys.stderr,
            flush=True,
        )
    server.serve()
    # The server is done (tabs killed, sockets closed); tearing down the interpreter with torch
    # loaded takes seconds more, and SIGTERM must end everything within 2 s.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# Re-exported for callers that built the command themselves.
__all__ = ["InittuiServer", "bind", "serve", "AppService"]
