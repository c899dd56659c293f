"""Atomic writes of scripts, plans and checkpoints (.pt, .safetensors), and the export
action itself (:func:`check_outputs`, :func:`export_outputs`) the CLI and the TUI both run.

Every write goes to a temporary file in the destination folder, is flushed to disk, then
renamed over the destination: a reader never sees half a file, and a failure leaves nothing
behind. An existing file is replaced only with ``force=True``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script
from inittui.core.errors import CancelledError, InittuiError
from inittui.core.plan import ResolvedPlan, plan_to_toml

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


def check_destination(
    path: str | Path, force: bool = False, suffixes: tuple[str, ...] = (), what: str = "file"
) -> Path:
    """Validate an output path before any work: suffix, folder exists and is writable,
    no existing file unless ``force``."""
    dest = Path(path).expanduser()
    if suffixes and dest.suffix.lower() not in suffixes:
        raise InittuiError(
            f"cannot write {what} {str(path)!r}: unknown extension "
            f"{dest.suffix or '(none)'!r}; use {' or '.join(suffixes)}"
        )
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.exists():
        raise InittuiError(
            f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first"
        )
    if not folder.is_dir():
        raise InittuiError(f"cannot write {str(path)!r}: {str(folder)!r} is not a folder")
    if dest.is_dir():
        raise InittuiError(f"cannot write {str(path)!r}: it is a folder")
    if dest.exists() and not force:
        raise InittuiError(f"{str(path)!r} already exists; pass --force to overwrite it")
    if not os.access(folder, os.W_OK):
        raise InittuiError(f"cannot write {str(path)!r}: folder {str(folder)!r} is read-only")
    return dest


@contextlib.contextmanager
def atomic_path(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    dest = check_destination(path, force=force)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:  # a folder that refuses new files (permissions, /proc, full disk)
        reason = exc.strerror or str(exc)
        raise InittuiError(
            f"writing {str(path)!r} failed: {reason}; nothing was written, choose a writable folder"
        ) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if dest.exists() and not force:  # appeared while we were writing
            raise InittuiError(f"{str(path)!r} already exists; pass --force to overwrite it")
        mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror or str(exc)
        raise InittuiError(f"writing {str(path)!r} failed: {reason}; nothing was written") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str, force: bool = False) -> Path:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def unique_state_dict(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state_dict with each shared tensor once (under its first name), and a map of
    dropped alias name -> kept name (safetensors refuses shared tensors)."""
    state = model.state_dict()
    kept: dict[tuple, str] = {}
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        key = (
            (
                tensor.untyped_storage().data_ptr(),
                tensor.storage_offset(),
                tuple(tensor.shape),
                tuple(tensor.stride()),
                tensor.dtype,
            )
            if tensor.numel()
            else (id(tensor),)
        )
        if key in kept:
            aliases[name] = kept[key]
            continue
        kept[key] = name
        unique[name] = tensor
    return unique, aliases


def write_checkpoint(
    model: nn.Module, path: str | Path, force: bool = False, metadata: dict[str, str] | None = None
) -> Path:
    """``.pt``/``.pth``: ``torch.save(model.state_dict())``. ``.safetensors``: every tensor
    once (tied names recorded in the metadata as ``alias:<name>`` = kept name)."""
    check_destination(path, force, CHECKPOINT_SUFFIXES, "checkpoint")
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        raise InittuiError(
            "cannot write a checkpoint of a model on the meta device (it holds no values); "
            "export --script and run it after model.to_empty(device=...)"
        )
    lazy = [
        name
        for name, tensor in (*model.named_parameters(), *model.named_buffers())
        if isinstance(tensor, nn.parameter.UninitializedTensorMixin)
    ]
    if lazy:
        raise InittuiError(
            f"cannot write a checkpoint: {lazy[0]} is uninitialized (a lazy module); run one "
            "forward pass first so its shape is known, or export --script only"
        )
    suffix = Path(path).suffix.lower()
    with atomic_path(path, force=force) as tmp:
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            unique, aliases = unique_state_dict(model)
            meta = dict(metadata or {})
            meta.update({f"alias:{alias}": kept for alias, kept in aliases.items()})
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in unique.items()}
            # safetensors writes an unreadable header for an empty metadata dict with no
            # tensors: pass None when there is nothing to record.
            save_file(tensors, str(tmp), metadata=meta or None)
        else:
            state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
            torch.save(state, str(tmp))
    return Path(path)


def export_all(jobs: list[tuple[str, Callable[[Path], None]]], force: bool) -> list[Path]:
    """Validate every destination first, then write each; if one write fails, the files
    this call already wrote are removed, so an export is all or nothing."""
    for path, _ in jobs:
        check_destination(path, force)
    written: list[Path] = []
    backups: list[tuple[Path, Path]] = []
    try:
        for path, write in jobs:
            dest = Path(path).expanduser()
            if dest.exists():
                backup = dest.with_name(f".{dest.name}.inittui-backup")
                os.replace(dest, backup)
                backups.append((dest, backup))
            write(dest)
            written.append(dest)
    except BaseException:
        for dest in written:
            dest.unlink(missing_ok=True)
        for dest, backup in backups:
            os.replace(backup, dest)
        raise
    for _, backup in backups:
        backup.unlink(missing_ok=True)
    return written


# -- the export action: what `inittui export` and the TUI's export dialog both run ------

OUTPUT_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "script": ((".py",), "script"),
    "checkpoint": (CHECKPOINT_SUFFIXES, "checkpoint"),
    "plan": ((".toml",), "plan"),
}


@dataclass(frozen=True)
class ExportPaths:
    """Where an export writes: the init script, the checkpoint, the plan (None: skip)."""

    script: str | None = None
    checkpoint: str | None = None
    plan: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """``(kind, path)`` of each output given, in the order they are written."""
        return [(kind, path) for kind in OUTPUT_KINDS if (path := getattr(self, kind))]


def check_outputs(paths: ExportPaths, force: bool, meta_device: bool = False) -> None:
    """Check every destination before any work, so nothing is wasted and nothing written:
    no two outputs on one file, each suffix known, each folder writable, no existing file
    unless ``force``. ``meta_device``: the model will be on the meta device (no values), so a
    checkpoint is refused."""
    outputs = paths.items()
    if len({str(Path(p).expanduser().resolve()) for _, p in outputs}) < len(outputs):
        raise InittuiError("two outputs name the same file; give each its own path")
    for kind, path in outputs:
        suffixes, what = OUTPUT_KINDS[kind]
        check_destination(path, force, suffixes, what)
        if kind == "checkpoint" and meta_device:
            raise InittuiError(
                "cannot write a checkpoint from the meta device (no values); "
                "drop --checkpoint or use --device cpu"
            )


def export_outputs(
    model: nn.Module,
    resolved: ResolvedPlan,
    paths: ExportPaths,
    *,
    target: str,
    model_class: str,
    force: bool,
    copy_model: bool = True,
    script: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Path]:
    """Write the outputs ``paths`` names, all or nothing (:func:`export_all`); returns the
    paths written. The checkpoint is ``model`` with the plan applied (to a copy unless
    ``copy_model=False``: the caller's model may then change); ``script`` is the script's
    source when the caller already rendered it. ``progress`` follows the apply; ``cancel``
    is polled while applying and once before writing (:class:`CancelledError`)."""
    seed = resolved.plan.seed
    jobs: list[tuple[str, Callable[[Path], object]]] = []
    if paths.script:
        source = script or render_script(resolved, target, model_class, seed=seed)
        jobs.append((paths.script, lambda p: write_text(p, source, force=True)))
    if paths.checkpoint:
        planned = copy.deepcopy(model) if copy_model else model
        apply_plan(planned, resolved, seed=seed, progress=progress, cancel=cancel)
        meta = {"inittui_target": target, "inittui_seed": str(seed)}
        jobs.append((paths.checkpoint, lambda p: write_checkpoint(planned, p, True, meta)))
    if paths.plan:
        text = plan_to_toml(resolved.plan)
        jobs.append((paths.plan, lambda p: write_text(p, text, force=True)))
    if cancel is not None and cancel():
        raise CancelledError("export cancelled; nothing was written")
    return export_all(jobs, force=force)  # type: ignore[arg-type]
