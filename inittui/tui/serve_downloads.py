"""Exports of a tab served by ``inittui serve``: its own folder, and one download per export.

The server gives each tab a folder (``INITTUI_EXPORT_DIR``) that the export dialog's default
paths use, so two tabs never overwrite each other's files unless the user types a path.
Browsers block every download after the first that textual.js opens without a click, so
several exported files reach the browser as one ``.zip``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

EXPORT_DIR_ENV = "INITTUI_EXPORT_DIR"
STORE_ABOVE = 16 * 1024 * 1024  # bytes: larger files (checkpoints) are stored, not deflated


def default_path(name: str) -> str:
    """``name`` inside this tab's export folder (relative to the working directory when the
    folder is below it), or ``name`` itself outside ``inittui serve``."""
    folder = os.environ.get(EXPORT_DIR_ENV)
    if not folder:
        return name
    path = Path(folder) / name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bundle(paths: list[str]) -> str | None:
    """One file to download for ``paths``: the file itself, or a new zip of all of them
    (``inittui-export-N.zip`` beside the first, never replacing a file). None: nothing."""
    if len(paths) <= 1:
        return paths[0] if paths else None
    folder = Path(os.environ.get(EXPORT_DIR_ENV) or Path(paths[0]).parent)
    for number in range(1, 10_000):
        target = folder / f"inittui-export-{number}.zip"
        try:
            handle = open(target, "xb")  # noqa: SIM115 - closed by ZipFile below
        except FileExistsError:
            continue
        with handle, zipfile.ZipFile(handle, "w") as archive:
            names: set[str] = set()
            for path in paths:
                name = Path(path).name
                while name in names:  # two outputs with one name in different folders
                    name = "_" + name
                names.add(name)
                big = os.path.getsize(path) > STORE_ABOVE
                kind = zipfile.ZIP_STORED if big else zipfile.ZIP_DEFLATED
                archive.write(path, arcname=name, compress_type=kind)
        return str(target)
    return None
