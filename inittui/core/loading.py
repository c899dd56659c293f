"""TARGET -> nn.Module: import a model file or package, construct it, place it, load weights.

A TARGET is ``path/to/file.py:Name`` or ``package.module:Name``. ``Name`` (dotted names
allowed) is an ``nn.Module`` subclass, a callable returning a module, or a module instance.
Every failure raises :class:`InittuiError` with one line saying what to do.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from inittui.core.checkpoints import load_checkpoint
from inittui.core.errors import InittuiError
from inittui.core.infiles import require_regular_file
from inittui.core.provenance import Provenance, attach, record_construction, with_checkpoint

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DTYPE_ALIASES = {
    "fp32": "float32",
    "fp64": "float64",
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "float": "float32",
    "double": "float64",
}


@dataclass
class LoadedModel:
    """A constructed model and where it came from."""

    model: nn.Module
    target: str
    name: str
    source_module: types.ModuleType
    device: torch.device
    dtype: torch.dtype | None
    kwargs: dict[str, object] = field(default_factory=dict)
    checkpoint: str | None = None
    # What construction did to each parameter (core/provenance.py), keyed by every name of
    # each parameter; None when the TARGET is a module instance (built before inittui saw it).
    provenance: dict[str, Provenance] | None = None

    @property
    def model_class(self) -> str:
        return type(self.model).__name__

    @property
    def on_meta(self) -> bool:
        return self.device.type == "meta"


# --------------------------------------------------------------------------- arguments


def parse_arg(item: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value); VALUE is a Python literal, else a string."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise InittuiError(f"--arg {item!r} is not KEY=VALUE; write e.g. --arg depth=12")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw
    return key, value


def build_kwargs(args: Sequence[str] = (), kwargs_json: str | None = None) -> dict[str, object]:
    """Merge ``--kwargs JSON`` and ``--arg KEY=VALUE`` items (``--arg`` wins)."""
    kwargs: dict[str, object] = {}
    if kwargs_json:
        try:
            loaded = json.loads(kwargs_json)
        except json.JSONDecodeError as exc:
            raise InittuiError(
                f"--kwargs is not valid JSON ({exc.msg} at column {exc.colno}); "
                "write e.g. --kwargs '{\"depth\": 12}'"
            ) from None
        if not isinstance(loaded, dict):
            raise InittuiError("--kwargs must be a JSON object, e.g. '{\"depth\": 12}'")
        kwargs.update(loaded)
    for item in args:
        key, value = parse_arg(item)
        kwargs[key] = value
    return kwargs


def parse_device(spec: str | None) -> torch.device:
    """Validate ``--device`` and check that it exists on this machine."""
    spec = (spec or "cpu").strip()
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise InittuiError(f"unknown device {spec!r}; use cpu, cuda, cuda:N, mps or meta") from None
    if device.type not in ("cpu", "cuda", "mps", "meta"):
        raise InittuiError(f"unsupported device {spec!r}; use cpu, cuda, cuda:N, mps or meta")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InittuiError(
                f"device {spec!r} is not available: this torch build sees no CUDA GPU; "
                "use --device cpu (or meta for shapes only)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise InittuiError(
                f"device {spec!r} does not exist: {count} CUDA device(s), "
                f"use cuda:0..cuda:{count - 1}"
            )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise InittuiError(f"device {spec!r} is not available on this machine; use --device cpu")
    return device


def parse_dtype(spec: str | None) -> torch.dtype | None:
    if spec is None:
        return None
    name = DTYPE_ALIASES.get(spec.strip().lower(), spec.strip().lower())
    if name not in DTYPES:
        raise InittuiError(f"unknown dtype {spec!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def available_devices() -> list[str]:
    """Devices a user can pick here: cpu, each CUDA device, mps when present."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


# --------------------------------------------------------------------------- import


def split_target(target: str) -> tuple[str, str]:
    """``'a/b.py:Net'`` -> ``('a/b.py', 'Net')``; the last colon separates the name."""
    location, sep, name = target.rpartition(":")
    if not sep or not location or not name:
        raise InittuiError(f"TARGET {target!r} must be path/to/file.py:Name or package.module:Name")
    return location, name


def _is_file_location(location: str) -> bool:
    return location.endswith(".py") or os.sep in location or "/" in location


@contextlib.contextmanager
def _on_sys_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def _import_error(what: str, exc: BaseException) -> InittuiError:
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename or what).name} line {exc.lineno}"
        return InittuiError(f"syntax error in {where}: {exc.msg}; fix the model file")
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return InittuiError(
            f"importing {what} failed: it imports module {exc.name!r}, which is not installed; "
            "install the package that provides it, or fix the import"
        )
    if isinstance(exc, SystemExit):
        return InittuiError(
            f"importing {what} failed: it called sys.exit({exc.code!r}) while being imported; "
            "put script code under if __name__ == '__main__':"
        )
    detail = (
        f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
    )
    return InittuiError(f"importing {what} failed: {detail} (run with --debug for the traceback)")


def _package_root(path: Path) -> tuple[Path, str]:
    """Find the outermost folder with __init__.py above ``path``; return (sys.path entry,
    dotted module name), so relative imports inside a user's package work."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def import_location(location: str) -> types.ModuleType:
    """Import a model file by path, or a module by dotted name."""
    if _is_file_location(location):
        path = Path(location).expanduser()
        if not path.exists():
            raise InittuiError(
                f"model file {location!r} not found; check the path (TARGET is file.py:Name)"
            )
        if path.is_dir() or path.suffix != ".py":
            raise InittuiError(f"{location!r} is not a Python file; TARGET is file.py:Name")
        require_regular_file(path, "model file", "TARGET is file.py:Name")
        path = path.resolve()
        root, dotted = _package_root(path)
        with _on_sys_path(str(path.parent)), _on_sys_path(str(root)):
            try:
                if "." in dotted:
                    return importlib.import_module(dotted)
                module_name = f"inittui_user_{abs(hash(str(path)))}_{path.stem}"
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(module_name, None)
                    raise
                return module
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - user code may raise anything
                raise _import_error(path.name, exc) from exc
    with _on_sys_path(os.getcwd()):
        try:
            return importlib.import_module(location)
        except ModuleNotFoundError as exc:
            if exc.name and location.startswith(exc.name):
                raise InittuiError(
                    f"no module named {location!r}; give a file path (file.py:Name) "
                    "or an importable package.module:Name"
                ) from exc
            raise _import_error(location, exc) from exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            raise _import_error(location, exc) from exc


def _module_candidates(module: types.ModuleType) -> list[str]:
    names = []
    for attr, value in vars(module).items():
        if attr.startswith("_"):
            continue
        if (
            isinstance(value, type)
            and issubclass(value, nn.Module)
            and getattr(value, "__module__", None) == module.__name__
        ) or isinstance(value, nn.Module):
            names.append(attr)
    return names


def resolve_name(module: types.ModuleType, name: str, location: str) -> object:
    obj: object = module
    for part in name.split("."):
        if not hasattr(obj, part):
            candidates = _module_candidates(module)
            hint = difflib.get_close_matches(part, candidates or list(vars(module)), n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            listed = (
                f"modules there: {', '.join(candidates)}"
                if candidates
                else ("it defines no nn.Module")
            )
            raise InittuiError(f"{location} has no {name!r}; {suggestion}{listed}")
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------- construct


def _check_signature(factory: object, kwargs: Mapping[str, object], label: str) -> None:
    try:
        signature = inspect.signature(factory)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    params = [
        p
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    names = {p.name for p in params}
    unknown = [k for k in kwargs if k not in names]
    if unknown and not accepts_any:
        allowed = ", ".join(p.name for p in params) or "none"
        raise InittuiError(
            f"{label} got unexpected argument(s) {', '.join(repr(k) for k in unknown)}; "
            f"its arguments: {allowed}"
        )
    missing = [
        p.name
        for p in params
        if p.default is p.empty and p.name not in kwargs and p.kind != p.POSITIONAL_ONLY
    ]
    if missing:
        example = " ".join(f"--arg {m}=VALUE" for m in missing)
        raise InittuiError(
            f"{label} needs constructor argument(s) {', '.join(repr(m) for m in missing)}; "
            f"pass {example}"
        )


def construct(obj: object, kwargs: Mapping[str, object], label: str) -> nn.Module:
    """Instantiate a class / call a factory / take an instance."""
    if isinstance(obj, nn.Module):
        if kwargs:
            raise InittuiError(
                f"{label} is a module instance and takes no --arg/--kwargs; "
                "point TARGET at its class or a factory function instead"
            )
        return obj
    if not callable(obj):
        raise InittuiError(
            f"{label} is a {type(obj).__name__}, not an nn.Module class, factory or instance; "
            "point TARGET at one"
        )
    _check_signature(obj, kwargs, label)
    try:
        result = obj(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InittuiError(
            f"constructing {label} failed: {type(exc).__name__}"
            f"{': ' + first if first else ''} (run with --debug for the traceback)"
        ) from exc
    if not isinstance(result, nn.Module):
        raise InittuiError(
            f"{label}(...) returned a {type(result).__name__}, not an nn.Module; make it return "
            "the model, or point TARGET at the nn.Module class"
        )
    return result


def load_model(
    target: str,
    kwargs: Mapping[str, object] | None = None,
    device: str | torch.device | None = "cpu",
    dtype: str | torch.dtype | None = None,
    checkpoint: str | None = None,
    seed: int = 0,
) -> LoadedModel:
    """Import, construct, place (device, dtype) and optionally load weights.

    The global RNG is seeded with ``seed`` around construction (and restored after), so
    parameters that a plan leaves alone start from the same values on every run.
    """
    kwargs = dict(kwargs or {})
    dev = device if isinstance(device, torch.device) else parse_device(device)
    dt = dtype if isinstance(dtype, torch.dtype) or dtype is None else parse_dtype(dtype)
    location, name = split_target(target)
    module = import_location(location)
    obj = resolve_name(module, name, location)
    label = name
    folder = (
        str(Path(location).expanduser().resolve().parent)
        if _is_file_location(location)
        else os.getcwd()
    )
    # Construction draws from the global RNG: seed it (without leaking the state) so the
    # same TARGET gives the same starting weights on every run.
    # The recorder (core/provenance.py) notes every init call and write; it draws nothing.
    provenance = None
    with _on_sys_path(folder), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if isinstance(obj, nn.Module):
            model = construct(obj, kwargs, label)
        else:
            with record_construction() as recorder:
                if dev.type == "meta":
                    with torch.device("meta"):
                        model = construct(obj, kwargs, label)
                else:
                    model = construct(obj, kwargs, label)
            # Map before moving: .to() gives parameters new storages.
            provenance = recorder.provenance(model)
            del recorder
    # A model built under torch.device("meta") is already there; anything else moves.
    if model_device(model) != dev:
        model = move_to_device(model, dev)
    if dt is not None:
        model = model.to(dtype=dt)
    if checkpoint:
        load_checkpoint(model, checkpoint, on_meta=dev.type == "meta")
        if provenance is not None:
            provenance = with_checkpoint(provenance, checkpoint)
    if provenance is not None:
        attach(model, provenance)
    return LoadedModel(
        model=model,
        target=target,
        name=name,
        source_module=module,
        device=dev,
        dtype=dt,
        kwargs=dict(kwargs),
        checkpoint=checkpoint,
        provenance=provenance,
    )


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (cpu for an empty model)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def move_to_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model.to(device)``, or an :class:`InittuiError` that says why not."""
    try:
        return model.to(device)
    except NotImplementedError as exc:  # "Cannot copy out of meta tensor"
        raise InittuiError(
            f"cannot move the model to {device}: {str(exc).splitlines()[0]}; "
            "a model built on meta needs --load CKPT or --device meta"
        ) from exc
    except RuntimeError as exc:
        raise InittuiError(
            f"cannot move the model to {device}: {str(exc).splitlines()[0]}"
        ) from exc


def example_inputs_function(loaded: LoadedModel):
    """The model file's ``example_inputs`` function, if it defines one."""
    fn = getattr(loaded.source_module, "example_inputs", None)
    return fn if callable(fn) else None
