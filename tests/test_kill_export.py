"""A kill cannot lose a file: a real ``inittui export --force`` writing a 256 MB checkpoint
over an existing one is killed (SIGKILL, SIGTERM) at several moments; every time the
destination holds the complete old file or the complete new one, it never goes missing,
and SIGTERM leaves no temporary file (docs/script.md, "How it is written")."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import MODELS, ROOT

PLAN = 'version = 1\nseed = 0\n[[rule]]\nselect = "**"\nscheme = "constant"\nval = 0.25\n'
OLD = b"the user's old checkpoint\n" * 40_000

# (signal, when): "start" = that many seconds after the process started; "temp" = that many
# seconds after the temporary file appeared (mid-write).
KILLS = [
    (signal.SIGKILL, ("start", 0.2)),
    (signal.SIGKILL, ("temp", 0.0)),
    (signal.SIGKILL, ("temp", 0.5)),
    (signal.SIGKILL, ("temp", 1.0)),
    (signal.SIGKILL, ("temp", 1.5)),
    (signal.SIGTERM, ("start", 0.5)),
    (signal.SIGTERM, ("temp", 0.0)),
    (signal.SIGTERM, ("temp", 0.2)),
    (signal.SIGTERM, ("temp", 1.0)),
]


def _export(folder: Path, out: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "inittui", "export", f"{MODELS}/big_ckpt.py:Big"]
    command += ["--plan", str(folder / "p.toml"), "--checkpoint", out, "--force"]
    return subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".w.pt.inittui-tmp-*"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kill_at(proc: subprocess.Popen, folder: Path, when: tuple[str, float], sig) -> str:
    """Send ``sig`` at the moment ``when``; while waiting, the destination must always be
    there. Returns what the moment turned out to be."""
    dest = folder / "w.pt"
    start = time.monotonic()
    kind, delay = when
    if kind == "temp":
        while not _temps(folder) and proc.poll() is None:
            assert os.path.lexists(dest), "the destination went missing"
            time.sleep(0.005)
        if proc.poll() is not None:
            return "finished before the temp file was seen"
        start = time.monotonic()
    while time.monotonic() - start < delay and proc.poll() is None:
        assert os.path.lexists(dest), "the destination went missing"
        time.sleep(0.005)
    state = "mid-write" if _temps(folder) else "no temp yet / already renamed"
    if proc.poll() is not None:
        return "finished before the signal"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return state


@pytest.mark.heavy
@pytest.mark.timeout(600)
def test_a_killed_export_leaves_the_old_or_the_new_file_whole(tmp_path):
    (tmp_path / "p.toml").write_text(PLAN)
    reference = _export(tmp_path, "new.pt")
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode()
    new = _digest(tmp_path / "new.pt")
    old = hashlib.sha256(OLD).hexdigest()
    found = []
    for sig, when in KILLS:
        (tmp_path / "w.pt").write_bytes(OLD)
        proc = _export(tmp_path, "w.pt")
        moment = _kill_at(proc, tmp_path, when, sig)
        stderr = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
        digest = _digest(tmp_path / "w.pt")
        assert digest in (old, new), (sig, when, moment, stderr)
        result = "old" if digest == old else "new"
        found.append((sig.name, when, moment, proc.returncode, result))
        leftovers = _temps(tmp_path)
        if sig == signal.SIGTERM:
            assert leftovers == [], (when, moment, stderr)
            assert proc.returncode in (143, -signal.SIGTERM, 0), (proc.returncode, stderr)
        for temp in leftovers:  # after SIGKILL: named so it cannot be taken for a user file
            assert temp.name.startswith(".w.pt.inittui-tmp-")
            temp.unlink()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pt", "p.toml", "w.pt"]
    print("\n".join(map(str, found)))
    # At least one kill landed while the checkpoint was being written.
    assert any(moment == "mid-write" for _, _, moment, _, _ in found), found
