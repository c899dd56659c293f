"""``inittui serve`` is private by default: real server processes, real HTTP and websockets.

Each case starts ``python -m inittui serve`` on a free port (``--port 0``) and talks to it the
way a browser, another site's page or a DNS-rebinding attacker would.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from harness import MODELS, ROOT

from inittui.tui.serve_security import content_disposition

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")

MLP = f"{MODELS}/zoo.py:make_mlp"


class Served:
    """A running ``inittui serve`` process and the URL it printed."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url
        self.base, _, query = url.partition("/?")
        self.token = query.removeprefix("token=")
        self.origin = self.base

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")


def start_server(tmp_path: Path, *extra: str) -> Served:
    proc = subprocess.Popen(
        [sys.executable, "-m", "inittui", "serve", MLP, "--port", "0", *extra],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the banner: printed once the socket is bound
    match = re.search(r"(http://\S+/\?token=\S+)", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no URL in {line!r}; stderr: {proc.communicate()[1]}")
    return Served(proc, match.group(1))


def stop(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.kill()
    served.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_server(tmp_path_factory.mktemp("serve"))
    yield served
    stop(served)


def http_status(url: str, **headers: str) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                return response.status, await response.text()

    return asyncio.run(go())


def ws_status(served: Served, path: str, **headers: str) -> int | bytes:
    """The handshake's refusal status, or the first bytes the app sent."""

    async def go() -> int | bytes:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(
                    served.base.replace("http:", "ws:") + path, headers=headers
                ) as websocket:
                    message = await websocket.receive(timeout=60)
                    return message.data if isinstance(message.data, bytes) else b""
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("name", "path", "headers", "status"),
    [
        ("page-no-token", "/", {}, 403),
        ("page-wrong-token", "/?token=wrong", {}, 403),
        ("page-good-token", "/?token={token}", {}, 200),
        ("page-dns-rebinding", "/?token={token}", {"Host": "evil.example"}, 403),
        ("page-rebinding-right-name-wrong-port", "/?token={token}", {"Host": "localhost:1"}, 403),
        ("page-foreign-origin", "/?token={token}", {"Origin": "http://evil.example"}, 403),
        ("download-no-token", "/download/abc", {}, 403),
        ("download-token-unknown-key", "/download/abc?token={token}", {}, 404),
        ("static-needs-no-token", "/static/js/textual.js", {}, 200),
        ("static-still-checks-host", "/static/js/textual.js", {"Host": "evil.example"}, 403),
    ],
)
def test_http_access(server: Served, name: str, path: str, headers: dict, status: int) -> None:
    got, body = http_status(server.base + path.format(token=server.token), **headers)
    assert got == status, (name, body)
    if status == 403:
        assert "forbidden" in body


def test_page_loads_nothing_from_the_network_and_has_a_title(server: Served) -> None:
    status, page = http_status(server.url)
    assert status == 200
    assert "<title>inittui</title>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page loads from the network"
    assert "googleapis" not in page
    # The websocket URL carries the token; the terminal gets the focus on load.
    assert f"/ws/{server.token}" in page
    assert "xterm-helper-textarea" in page and ".focus()" in page


def test_websocket_access(server: Served) -> None:
    good_origin = {"Origin": server.origin}
    assert ws_status(server, "/ws", **good_origin) == 403  # no token
    assert ws_status(server, "/ws/wrong", **good_origin) == 403
    assert ws_status(server, f"/ws/{server.token}", Origin="http://evil.example") == 403
    assert ws_status(server, f"/ws/{server.token}", Origin="null") == 403
    assert ws_status(server, f"/ws/{server.token}", Host="evil.example") == 403
    first = ws_status(server, f"/ws/{server.token}", **good_origin)
    assert isinstance(first, bytes)


def test_session_limit(tmp_path: Path) -> None:
    served = start_server(tmp_path, "--max-sessions", "1")
    try:

        async def go() -> bytes:
            url = served.base.replace("http:", "ws:") + f"/ws/{served.token}"
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(url) as first:
                    await first.receive(timeout=60)  # the first tab runs
                    async with session.ws_connect(url) as second:
                        message = await second.receive(timeout=30)
                        return message.data

        refused = asyncio.run(go())
        assert b"--max-sessions" in refused and b"close another tab" in refused
    finally:
        stop(served)


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_ends_server_and_tabs(tmp_path: Path, sig: signal.Signals) -> None:
    """With a tab open, SIGTERM ends everything within 2 s; after SIGKILL no app survives."""
    served = start_server(tmp_path)
    try:

        async def go() -> tuple[list[int], float, int | None]:
            url = served.base.replace("http:", "ws:") + f"/ws/{served.token}"
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(url) as websocket:
                    await websocket.receive(timeout=60)
                    children = served.children()
                    started = time.monotonic()
                    served.proc.send_signal(sig)
                    code = await asyncio.to_thread(served.proc.wait, 10)
                    return children, time.monotonic() - started, code

        children, took, code = asyncio.run(go())
        assert children, "the tab's app process was not the server's child"
        if sig == signal.SIGTERM:
            assert took < 2.0, f"SIGTERM took {took:.1f} s"
        print(f"{sig.name} took {took:.2f} s")
        assert _wait_gone(children, 2.0) == [], "the tab's process outlived the server"
    finally:
        stop(served)


def test_taken_port_is_one_line_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "inittui", "serve", MLP, "--port", str(port)],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"cannot listen on localhost:{port}" in result.stderr


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--arg", "no_such_kwarg=3"], "no_such_kwarg"),
        (["--load", "{tmp}/missing.pt"], "missing.pt"),
        (["--max-sessions", "0"], "--max-sessions must be"),
        (["--host", "no.such.host.invalid"], "cannot listen on no.such.host.invalid"),
    ],
)
def test_bad_options_fail_before_the_banner(tmp_path: Path, extra: list, fragment: str) -> None:
    args = [item.format(tmp=tmp_path) for item in extra]
    result = subprocess.run(
        [sys.executable, "-m", "inittui", "serve", MLP, "--port", "0", *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr


def test_non_loopback_host_warns(tmp_path: Path) -> None:
    served = start_server(tmp_path, "--host", "0.0.0.0")
    try:
        served.proc.send_signal(signal.SIGTERM)
        _, err = served.proc.communicate(timeout=30)
        assert "warning: --host 0.0.0.0 serves inittui beyond this machine" in err
    finally:
        stop(served)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("attachment; filename=w.pt", "attachment; filename=\"w.pt\"; filename*=UTF-8''w.pt"),
        (
            "attachment; filename=a;b c.pt",
            "attachment; filename=\"a;b c.pt\"; filename*=UTF-8''a%3Bb%20c.pt",
        ),
        (
            'attachment; filename=é"x.py',
            "attachment; filename=\"__x.py\"; filename*=UTF-8''%C3%A9%22x.py",
        ),
    ],
)
def test_download_names_are_quoted_per_rfc6266(header: str, expected: str) -> None:
    assert content_disposition(header) == expected


def test_each_tab_exports_into_its_own_folder_and_gets_one_zip(tmp_path: Path) -> None:
    """Two tabs: two folders; `e`, Enter in one exports script and checkpoint, and the browser
    is sent one download, a zip of both, with an RFC 6266 name."""
    served = start_server(tmp_path)
    try:

        async def screen_until(websocket, text: bytes) -> str | None:
            """Read the tab until its screen shows ``text``; a download key if one comes."""
            seen = b""
            while text not in seen:
                message = await websocket.receive()
                if message.type == aiohttp.WSMsgType.BINARY:
                    seen = (seen + message.data)[-20000:]
                elif message.type == aiohttp.WSMsgType.TEXT:
                    kind, value = message.json()[:2]
                    if kind == "deliver_file_start":
                        return value
                else:
                    raise AssertionError(f"the tab ended: {message}")
            return None

        async def go() -> tuple[bytes, str, list[str]]:
            url = served.base.replace("http:", "ws:") + f"/ws/{served.token}?width=120&height=40"
            async with asyncio.timeout(240), aiohttp.ClientSession() as session:
                async with session.ws_connect(url) as first, session.ws_connect(url):
                    await screen_until(first, b"planned")
                    await first.send_json(["stdin", "e"])
                    await screen_until(first, b"Export (enter)")
                    await first.send_json(["stdin", "\r"])
                    key = await screen_until(first, b"never shown")
                    download = f"{served.base}/download/{key}?token={served.token}"
                    async with session.get(download) as response:
                        assert response.status == 200
                        body = await response.read()
                        disposition = response.headers["Content-Disposition"]
                    folders = sorted(p.name for p in (tmp_path / "inittui-exports").iterdir())
                    return body, disposition, folders

        body, disposition, folders = asyncio.run(go())
        assert folders == ["tab-1", "tab-2"]
        exports = tmp_path / "inittui-exports"
        tabs = [tab for tab in exports.iterdir() if (tab / "init_weights.py").exists()]
        assert len(tabs) == 1 and (tabs[0] / "init_weights.pt").exists()
        assert not (tmp_path / "init_weights.py").exists()
        import io
        import zipfile

        names = sorted(zipfile.ZipFile(io.BytesIO(body)).namelist())
        assert names == ["init_weights.pt", "init_weights.py"]
        assert "filename*=UTF-8''inittui-export-1.zip" in disposition
    finally:
        stop(served)


def test_bundle_zips_several_files_and_never_replaces_one(tmp_path: Path, monkeypatch) -> None:
    from inittui.tui.serve_downloads import EXPORT_DIR_ENV, bundle, default_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(EXPORT_DIR_ENV, str(tmp_path / "tab-1"))
    assert default_path("init_weights.py") == str(Path("tab-1") / "init_weights.py")
    (tmp_path / "tab-1").mkdir()
    (tmp_path / "tab-1" / "inittui-export-1.zip").write_text("the user's own file")
    one, two = tmp_path / "a.py", tmp_path / "b.pt"
    one.write_text("x")
    two.write_bytes(b"y")
    assert bundle([str(one)]) == str(one)
    zipped = bundle([str(one), str(two)])
    assert zipped == str(tmp_path / "tab-1" / "inittui-export-2.zip")
    assert (tmp_path / "tab-1" / "inittui-export-1.zip").read_text() == "the user's own file"
    monkeypatch.delenv(EXPORT_DIR_ENV)
    assert default_path("init_weights.py") == "init_weights.py"
