"""The real app in a real terminal: tmux at 80x24, keys sent, the visible text checked."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


class Terminal:
    def __init__(self, session: str) -> None:
        self.session = session

    def screen(self) -> str:
        return _tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str, pause: float = 0.3) -> None:
        for key in keys:
            _tmux("send-keys", "-t", self.session, key)
            time.sleep(pause)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.session], capture_output=True
            ).returncode
            == 0
        )


@pytest.fixture
def terminal():
    session = f"inittui-test-{uuid.uuid4().hex[:8]}"
    python = shlex.quote(sys.executable)
    if "run_app" in Path(ROOT / "inittui" / "cli.py").read_text():
        app = f"{python} -m inittui sample_models/mlp.py:MLP"
    else:  # until the CLI opens the TUI, start it through run_app
        code = "from inittui.tui.app import run_app; raise SystemExit(run_app('sample_models/mlp.py:MLP'))"
        app = f"{python} -c {shlex.quote(code)}"
    # COLUMNS/LINES (pytest's environment) would pin Textual's size: a resize must reach it
    command = (
        f"cd {shlex.quote(str(ROOT))} && unset COLUMNS LINES && TERM=xterm-256color {app}; sleep 5"
    )
    _tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        yield Terminal(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.heavy
@pytest.mark.timeout(150)
def test_real_terminal_session(terminal):
    screen = terminal.wait_for("parameter(s) planned")
    assert "sample_models/mlp.py:MLP · 33.9K params · cpu" in screen
    # the count is right-aligned in a column of its own
    assert re.search(r"0 Linear +4\.2K", screen) and "q quit" in screen
    terminal.keys("j", "j")
    screen = terminal.wait_for("detail · layers.0")
    assert "weight (64, 64)  fan_in 64 fan_out 64" in screen
    # assign kaiming_normal to every Linear's weight
    terminal.keys("a")
    terminal.wait_for("Assign a scheme: layers.0 (Linear)")
    terminal.keys("BTab", "BTab", "C-u")
    terminal.keys(*"weight", pause=0.1)
    terminal.keys("Tab", "Tab")
    terminal.keys(*(["Down"] * 12), pause=0.1)
    screen = terminal.wait_for("kaiming_normal: He normal")
    terminal.keys("Enter")
    screen = terminal.wait_for("rule 1 set here → kaiming_normal")
    assert re.search(r"0 Linear kaiming_normal +4\.2K", screen)
    assert "[+]" in screen
    terminal.keys("p")
    screen = terminal.wait_for("17 layers")
    assert "plan/now" in screen
    # resize mid-session: the preview is laid out again, numbers never cut
    _tmux("resize-window", "-t", terminal.session, "-x", "120", "-y", "40")
    screen = terminal.wait_for("c compare")  # wider: the key bar has room for more keys
    assert "layers.14" in screen  # taller: more preview rows
    _tmux("resize-window", "-t", terminal.session, "-x", "80", "-y", "24")
    deadline = time.monotonic() + 20
    screen = terminal.screen()
    while time.monotonic() < deadline and ("^p palette" in screen or "plan/now" not in screen):
        time.sleep(0.2)  # narrow again: the palette key loses its label
        screen = terminal.screen()
    assert "plan/now" in screen and re.search(r"layers\.0 +\d\.\d{2,3} +\d", screen)
    # n: the next flagged layer; v: the std-versus-depth plot and back
    terminal.keys("n")
    terminal.keys("v")
    screen = terminal.wait_for("o now  x plan")
    assert "1e-1 ┤" in screen and "layer" in screen  # a log axis with decade labels
    terminal.keys("v")
    terminal.wait_for("plan/now")
    # r: the rules pane lists the rule and how many parameters it decides
    terminal.keys("r")
    screen = terminal.wait_for("rules · 1")
    assert re.search(r"1 layers\.0 \[weight\] +1 param", screen)
    terminal.keys("r")
    # quit asks because the plan is unsaved
    terminal.keys("q")
    terminal.wait_for("Quit without saving?")
    terminal.keys("y")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "Quit without saving?" in terminal.screen():
        time.sleep(0.2)
    assert "Quit without saving?" not in terminal.screen()
