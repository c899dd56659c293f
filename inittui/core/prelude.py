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

    A plain contiguous CPU parameter is its own ``work`` tensor: the same shape, dtype,
    layout and generator draw the same numbers, without a second buffer and a copy (this
    halves the time of a large apply). The schemes overwrite every element, so what the
    parameter held before never matters.
    """
    import contextlib

    @contextlib.contextmanager
    def fresh():
        target = params[name]
        generator = torch.Generator(device="cpu").manual_seed(_param_seed(seed, name))
        if (
            type(target) in (torch.Tensor, torch.nn.Parameter)
            and target.device.type == "cpu"
            and target.is_contiguous()
        ):
            yield target, generator
            return
        work = torch.empty(tuple(target.shape), dtype=target.dtype, device="cpu")
        yield work, generator
        _copy_into(target, work)

    return fresh()


def _copy_into(target, work):
    """Copy the full CPU tensor ``work`` into ``target``: a plain tensor on any device, or a
    DTensor (``distribute_tensor``, FSDP2's ``fully_shard``), whose local shard is cut from
    ``work`` without communication: every rank draws the same full tensor."""
    placements = getattr(target, "placements", None)
    if placements is None:
        target.copy_(work)
        return
    import inspect

    try:
        from torch.distributed.tensor import distribute_tensor
    except ImportError:  # torch < 2.4 keeps DTensor in a private module
        from torch.distributed._tensor import distribute_tensor
    mesh = target.device_mesh
    if "src_data_rank" in inspect.signature(distribute_tensor).parameters:
        # src_data_rank=None: each rank keeps its own chunk of the (identical) full tensor.
        local = distribute_tensor(
            work.to(mesh.device_type), mesh, placements, src_data_rank=None
        ).to_local()
    else:
        # Older torch has no src_data_rank (distribute_tensor would scatter from rank 0):
        # cut the same chunk by hand.
        local = _local_chunk(work, target)
    shard = target.to_local()
    if tuple(local.shape) != tuple(shard.shape):  # never let copy_ broadcast a wrong cut
        raise ValueError(
            f"cannot cut this rank's shard of a {tuple(target.shape)} DTensor with placements "
            f"{tuple(placements)}: got {tuple(local.shape)}, the shard is {tuple(shard.shape)}"
        )
    shard.copy_(local)


def _local_chunk(work, target):
    """This rank's chunk of the full tensor ``work`` for the DTensor ``target``, as
    DTensor's ``Shard`` cuts it: ``torch.chunk`` along the dim, mesh dims in order, an empty
    chunk for a rank past the last one; ``Replicate`` keeps it whole."""
    mesh = target.device_mesh
    coordinate = mesh.get_coordinate()
    if coordinate is None:  # this rank is not in the mesh: it holds nothing
        return work.new_empty(tuple(target.to_local().shape))
    for mesh_dim, placement in enumerate(target.placements):
        kind = type(placement).__name__
        if kind == "Replicate":
            continue
        if kind != "Shard":
            raise NotImplementedError(
                f"cannot cut a shard for placement {placement!r} with this torch "
                f"{torch.__version__}; upgrade torch (2.7 or later cuts any placement)"
            )
        chunks = work.chunk(mesh.size(mesh_dim), dim=placement.dim)
        index = coordinate[mesh_dim]
        work = chunks[index] if index < len(chunks) else work.narrow(placement.dim, 0, 0)
    return work.to(target.to_local().device)


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


PRELUDE_FUNCTIONS = (_param_seed, _copy_into, _local_chunk, _fresh, _check_params)


def prelude_source() -> str:
    """Source of the prelude functions, for an exported script."""
    return "\n\n".join(inspect.getsource(fn).rstrip() + "\n" for fn in PRELUDE_FUNCTIONS)


PRELUDE_NAMESPACE = {fn.__name__: fn for fn in PRELUDE_FUNCTIONS}
