"""Atomic writes of scripts, plans and checkpoints (.pt, .safetensors), and the export
action itself (:func:`check_outputs`, :func:`export_outputs`) the CLI and the TUI both run.

Every write goes to a temporary file in the destination folder, named
``.<name>.inittui-tmp-<pid>`` (``<name>`` shortened when the whole would pass the folder's
name limit), is flushed and fsynced, then renamed over the destination with ``os.replace``.
The old file stays in place until that rename: a reader, a crash or a kill (SIGKILL, SIGTERM)
at any moment finds the complete old file or the complete new one. A failure or SIGTERM
removes the temporary file; after SIGKILL it may stay behind under that name. inittui never
moves, renames or deletes a file it did not create. An existing destination (a dangling
symlink included) is replaced only with ``force=True``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
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
TEMP_MARK = ".inittui-tmp-"


def _exists(path: Path) -> bool:
    """True for anything at ``path``, a dangling symlink included."""
    return os.path.lexists(path)


def check_destination(
    path: str | Path, force: bool = False, suffixes: tuple[str, ...] = (), what: str = "file"
) -> Path:
    """Validate an output path before any work: suffix, folder exists and is writable,
    nothing there (not even a dangling symlink) unless ``force``."""
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
    if _exists(dest) and not force:
        raise InittuiError(f"{str(path)!r} already exists; pass --force to overwrite it")
    if not os.access(folder, os.W_OK):
        raise InittuiError(f"cannot write {str(path)!r}: folder {str(folder)!r} is read-only")
    return dest


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def temp_name(dest: Path, attempt: int = 0) -> str:
    """``.<name>.inittui-tmp-<pid>[-attempt]``, ``<name>`` cut so that the whole fits the
    folder's name limit (in bytes) even for a destination name at that limit."""
    tail = f"{TEMP_MARK}{os.getpid()}" + (f"-{attempt}" if attempt else "")
    room = _name_max(dest.parent) - len(tail.encode()) - 1
    name = os.fsencode(dest.name)[: max(room, 1)]
    return "." + name.decode("utf-8", "ignore") + tail  # a cut character is dropped


def _create_temp(dest: Path, path: str | Path) -> Path:
    """Create a new, empty temporary file beside ``dest`` (never an existing one)."""
    for attempt in range(100):
        tmp = dest.parent / temp_name(dest, attempt)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # left by a killed run with our pid: not ours to delete
            continue
        except OSError as exc:  # a folder that refuses new files (permissions, /proc, full disk)
            reason = exc.strerror or str(exc)
            raise InittuiError(
                f"writing {str(path)!r} failed: {reason}; nothing was written, "
                "choose a writable folder"
            ) from exc
        os.close(fd)
        _LIVE_TEMPS.add(tmp)
        return tmp
    raise InittuiError(f"writing {str(path)!r} failed: too many leftover temporary files")


# -- SIGTERM while writing: remove our temporary files, exit 143 -------------------------

_LIVE_TEMPS: set[Path] = set()


def _on_sigterm(signum: int, _frame: object) -> None:
    for tmp in list(_LIVE_TEMPS):
        with contextlib.suppress(OSError):
            tmp.unlink()
    os.write(
        2,
        b"error: terminated (SIGTERM) while writing; unfinished files removed, "
        b"every destination left whole\n",
    )
    os._exit(128 + signum)


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """In the main thread, SIGTERM removes the live temporary files and exits 143 (the
    default action would leave them); elsewhere signals cannot be handled, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()
    _LIVE_TEMPS.discard(tmp)


def _flush(tmp: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o666 & ~_umask())


def _commit(tmp: Path, dest: Path, path: str | Path, force: bool) -> None:
    """Rename ``tmp`` over ``dest``; the only step that touches the destination."""
    if _exists(dest) and not force:  # appeared while we were writing
        raise InittuiError(f"{str(path)!r} already exists; pass --force to overwrite it")
    os.replace(tmp, dest)
    _LIVE_TEMPS.discard(tmp)
    with contextlib.suppress(OSError):  # the rename itself reaches the disk
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_failed(path: str | Path, exc: OSError) -> InittuiError:
    reason = exc.strerror or str(exc)
    return InittuiError(f"writing {str(path)!r} failed: {reason}; nothing was written")


@contextlib.contextmanager
def atomic_path(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any exception (or SIGTERM) the temporary file is removed and ``path`` is left as it was.
    """
    dest = check_destination(path, force=force)
    with _sigterm_cleans_up():
        tmp = _create_temp(dest, path)
        try:
            yield tmp
            _flush(tmp)
            _commit(tmp, dest, path, force)
        except OSError as exc:
            _discard(tmp)
            raise _write_failed(path, exc) from exc
        except BaseException:
            _discard(tmp)
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


def _check_checkpoint_model(model: nn.Module) -> None:
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


def _save_checkpoint(
    model: nn.Module, tmp: Path, suffix: str, metadata: dict[str, str] | None
) -> None:
    """Write the checkpoint's bytes into ``tmp`` (the caller renames it into place)."""
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
        with open(tmp, "wb") as handle:  # a handle: the archive's inner name is not the
            torch.save(state, handle)  # temp file's, so the same state gives the same bytes


def write_checkpoint(
    model: nn.Module, path: str | Path, force: bool = False, metadata: dict[str, str] | None = None
) -> Path:
    """``.pt``/``.pth``: ``torch.save(model.state_dict())``. ``.safetensors``: every tensor
    once (tied names recorded in the metadata as ``alias:<name>`` = kept name)."""
    check_destination(path, force, CHECKPOINT_SUFFIXES, "checkpoint")
    _check_checkpoint_model(model)
    with atomic_path(path, force=force) as tmp:
        _save_checkpoint(model, tmp, Path(path).suffix.lower(), metadata)
    return Path(path)


def export_all(jobs: list[tuple[str, Callable[[Path], None]]], force: bool) -> list[Path]:
    """Validate every destination, write each job's bytes into its own temporary file
    (``write(tmp)``), fsync them all, and only then rename each over its destination. A
    failure before the renames (a full disk, an error, SIGTERM) removes the temporary files
    and leaves every destination as it was: the export is all or nothing, and no existing
    file is moved or deleted at any moment."""
    dests = [check_destination(path, force) for path, _ in jobs]
    staged: list[tuple[Path, Path, str]] = []
    current = ""
    with _sigterm_cleans_up():
        try:
            for (path, write), dest in zip(jobs, dests, strict=True):
                current = path
                tmp = _create_temp(dest, path)
                staged.append((tmp, dest, path))
                write(tmp)
                _flush(tmp)
            for tmp, dest, path in staged:
                current = path
                _commit(tmp, dest, path, force)
        except OSError as exc:
            for tmp, _, _ in staged:
                _discard(tmp)
            raise _write_failed(current, exc) from exc
        except BaseException:
            for tmp, _, _ in staged:
                _discard(tmp)
            raise
    return dests


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


def absolute(path: str | Path) -> str:
    """``path`` with ``~`` expanded, made absolute against the current folder now (not
    resolved: a symlink destination stays the link), so model code that changes the current
    folder later cannot redirect it."""
    return os.path.abspath(os.path.expanduser(path))


def check_outputs(paths: ExportPaths, force: bool, meta_device: bool = False) -> ExportPaths:
    """Check every destination before any work, so nothing is wasted and nothing written:
    no two outputs on one file, each suffix known, each folder writable, nothing there
    unless ``force``. ``meta_device``: the model will be on the meta device (no values), so a
    checkpoint is refused. Returns the same paths made absolute (:func:`absolute`): call it
    before any model code runs and write to those."""
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
    return ExportPaths(**{kind: absolute(path) for kind, path in outputs})


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
        jobs.append((paths.script, lambda p: p.write_text(source, encoding="utf-8")))
    if paths.checkpoint:
        planned = copy.deepcopy(model) if copy_model else model
        apply_plan(planned, resolved, seed=seed, progress=progress, cancel=cancel)
        _check_checkpoint_model(planned)
        meta = {"inittui_target": target, "inittui_seed": str(seed)}
        suffix = Path(paths.checkpoint).suffix.lower()
        jobs.append((paths.checkpoint, lambda p: _save_checkpoint(planned, p, suffix, meta)))
    if paths.plan:
        text = plan_to_toml(resolved.plan)
        jobs.append((paths.plan, lambda p: p.write_text(text, encoding="utf-8")))
    if cancel is not None and cancel():
        raise CancelledError("export cancelled; nothing was written")
    return export_all(jobs, force=force)  # type: ignore[arg-type]
