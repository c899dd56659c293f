"""Where a recorded init call came from: the caller's ``file:line`` and the module method
that made it, read by walking frames (``sys._getframe`` and ``f_back``; ``inspect.stack``
reads source files and is far too slow). Each code object is classified once.

A frame is skipped when it is plumbing: inittui itself, torch outside ``torch/nn/modules``
(``torch.nn.init``, ``no_grad`` decorators, ``Module.apply``), or an init function by name
(``normal_``, ``trunc_normal_``, ...: torch's, or a library's wrapper of them such as
transformers' ``initialization`` or timm's ``trunc_normal_``). ``at`` is the first frame that
is not skipped; ``by`` the nearest frame from there whose ``self`` is an ``nn.Module``, named
by the method's qualified name (the class that defines it: ``Linear.reset_parameters``).
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import torch
from torch import nn

USER, SKIP, INIT_FRAME = 0, 1, 2
# Public torch.nn.init functions that write a tensor (the ones the recorder wraps).
INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)
# Frames of these names are init functions: torch's, and libraries' wrappers of them
# (transformers' initialization, timm's trunc_normal_, lecun_normal_, flax-style inits).
INIT_NAMES = frozenset(
    {
        *INIT_FUNCTIONS,
        "lecun_normal_",
        "variance_scaling_",
        "_variance_scaling",
        "default_flax_embed_init_",
    }
)
# The arguments an init function's frame is read for (its other locals are not).
ARG_NAMES = ("mean", "std", "a", "b", "val", "gain", "mode", "nonlinearity", "sparsity", "groups")

_INITTUI = str(Path(__file__).resolve().parents[1]) + os.sep
_TORCH = str(Path(torch.__file__).resolve().parent) + os.sep
_TORCH_MODULES = _TORCH + os.path.join("nn", "modules") + os.sep
_TORCH_MODULE_PY = _TORCH_MODULES + "module.py"

_kind: dict[object, int] = {}
_owner: dict[object, str | None] = {}
_paths: dict[str, str] = {}


def _classify(code) -> int:
    if code.co_name in INIT_NAMES:
        return INIT_FRAME
    filename = os.path.realpath(code.co_filename) if code.co_filename[:1] != "<" else ""
    if filename.startswith(_INITTUI):
        return SKIP
    if filename.startswith(_TORCH):
        inside_layers = filename.startswith(_TORCH_MODULES) and filename != _TORCH_MODULE_PY
        return USER if inside_layers else SKIP
    return USER


def caller_site(frame):
    """``(at, by, init)`` for a call made from ``frame``: ``at`` is ``(code, lineno)`` of the
    first frame that is not plumbing (None if none), ``by`` the owning module method's
    name, ``init`` the outermost init-named frame passed on the way as ``(frame, name,
    args)`` (None if none)."""
    found = None
    kinds = _kind
    while frame is not None:
        code = frame.f_code
        kind = kinds.get(code)
        if kind is None:
            kind = kinds[code] = _classify(code)
        if kind == USER:
            break
        if kind == INIT_FRAME:
            found = frame
        frame = frame.f_back
    init = None
    if found is not None:
        local = found.f_locals
        args = tuple((n, local[n]) for n in ARG_NAMES if n in local and _plain(local[n]))
        init = (found, found.f_code.co_name, args)
    if frame is None:
        return None, None, init
    return (frame.f_code, frame.f_lineno), _owner_of(frame), init


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _owner_of(frame) -> str | None:
    """The qualified name of the nearest module method at or above ``frame``."""
    for _ in range(32):
        code = frame.f_code
        kind = _kind.get(code)
        if kind is None:
            kind = _kind[code] = _classify(code)
        if kind == USER:
            owner = _owner.get(code, False)
            if owner is False:
                owner = _owner[code] = _method_name(frame)
            if owner:
                return owner
        elif code.co_filename.startswith(_INITTUI):
            return None
        frame = frame.f_back
        if frame is None:
            return None
    return None


def _method_name(frame) -> str | None:
    code = frame.f_code
    if not code.co_argcount or code.co_varnames[0] != "self":
        return None
    if not isinstance(frame.f_locals.get("self"), nn.Module):
        return None
    return getattr(code, "co_qualname", code.co_name)


def _roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths.get("purelib"), paths.get("platlib"), str(Path(_TORCH).parent)}
    return sorted((str(Path(r).resolve()) + os.sep for r in roots if r), key=len, reverse=True)


_ROOTS = _roots()


def site_text(at) -> str | None:
    """``(code, lineno)`` -> ``"torch/nn/modules/linear.py:124"``: a path inside
    site-packages from there, under the working directory relative to it, else whole."""
    if at is None:
        return None
    code, line = at
    filename = code.co_filename
    short = _paths.get(filename)
    if short is None:
        full = os.path.realpath(filename) if filename[:1] != "<" else filename
        short = full
        for root in _ROOTS:
            if full.startswith(root):
                short = full[len(root) :]
                break
        else:
            cwd = os.getcwd() + os.sep
            if full.startswith(cwd):
                short = full[len(cwd) :]
        _paths[filename] = short
    return f"{short}:{line}"
