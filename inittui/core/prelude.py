"""The functions every exported init script starts with, and that the in-app apply runs.

Like :mod:`inittui.core.runtime`, each function here is copied verbatim into exported scripts
with ``inspect.getsource``: top-level, using only ``torch`` as a global and importing what
else it needs (``hashlib``, ``contextlib``) inside its body. The in-app apply calls these very
functions, so the script and the app cannot disagree on seeds, on where numbers are drawn or
on what is checked.
"""

from __future__ import annotations

import inspect

import torch


def _param_seed(seed, name):
    """Per-parameter seed: the first 8 bytes of sha256("<seed>:<name>"), as 63 bits.

    Stable across runs, machines and Python versions; independent of every other
    parameter, so adding a layer or reordering rules changes no other parameter's values.
    """
    import hashlib

    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _fresh(params, name, seed):
    """Context manager yielding ``(work, generator)`` for parameter ``name``.

    ``work`` is a CPU tensor of the parameter's full shape and dtype, filled by the caller
    from a CPU generator seeded by :func:`_param_seed`, then copied into the parameter on
    exit. Drawing on the CPU makes the numbers identical on every device; drawing the full
    tensor makes a sharded parameter (DTensor, FSDP2) get exactly its shard of the numbers
    an unsharded run gets.
    """
    import contextlib

    @contextlib.contextmanager
    def fresh():
        target = params[name]
        generator = torch.Generator(device="cpu").manual_seed(_param_seed(seed, name))
        work = torch.empty(tuple(target.shape), dtype=target.dtype, device="cpu")
        yield work, generator
        _copy_into(target, work)

    return fresh()


def _copy_into(target, work):
    """Copy the full CPU tensor ``work`` into ``target``: a plain tensor on any device, or a
    DTensor, whose local shard is cut from ``work`` without communication."""
    placements = getattr(target, "placements", None)
    if placements is not None:
        from torch.distributed.tensor import distribute_tensor

        local = distribute_tensor(
            work.to(target.device_mesh.device_type),
            target.device_mesh,
            placements,
            src_data_rank=None,
        )
        target.to_local().copy_(local.to_local())
        return
    target.copy_(work)


def _check_params(model, expected_shapes):
    """Raise ValueError, before anything is touched, when the model does not match the plan.

    ``expected_shapes`` maps each planned parameter name to its shape.
    """
    params = dict(model.named_parameters(remove_duplicate=False))
    missing = [name for name in expected_shapes if name not in params]
    wrong = [
        f"{name} is {tuple(params[name].shape)}, plan has {tuple(shape)}"
        for name, shape in expected_shapes.items()
        if name in params and tuple(params[name].shape) != tuple(shape)
    ]
    on_meta = [name for name in expected_shapes if name in params and params[name].is_meta]
    problems = []
    if missing:
        problems.append(
            f"missing parameters: {', '.join(missing[:5])}"
            + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        )
    if wrong:
        problems.append(
            f"shape mismatch: {'; '.join(wrong[:3])}"
            + (f" (+{len(wrong) - 3} more)" if len(wrong) > 3 else "")
        )
    if on_meta:
        problems.append(
            f"{len(on_meta)} parameter(s) on the meta device have no storage; "
            "call model.to_empty(device=...) first"
        )
    if problems:
        raise ValueError("model does not match this init plan: " + "; ".join(problems))
    return params


PRELUDE_FUNCTIONS = (_param_seed, _copy_into, _fresh, _check_params)


def prelude_source() -> str:
    """Source of the prelude functions, for an exported script."""
    return "\n\n".join(inspect.getsource(fn).rstrip() + "\n" for fn in PRELUDE_FUNCTIONS)


PRELUDE_NAMESPACE = {fn.__name__: fn for fn in PRELUDE_FUNCTIONS}
