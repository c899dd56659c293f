"""The functions every exported init script starts with, and that the in-app apply runs.

Like :mod:`inittui.core.runtime`, each function here is copied verbatim into exported scripts
with ``inspect.getsource``: top-level, using only ``torch`` as a global and importing what
else it needs (``hashlib``, ``contextlib``) inside its body. The in-app apply calls these very
functions, so the script and the app cannot disagree on seeds, on where numbers are drawn or
on what is checked.
"""

from __future__ import annotations

import inspect
import math

import torch

DRAW_SCHEME = 2
"""How parameters are cut into generators: 1, each parameter drawn whole from one generator
seeded by (seed, name); 2, a parameter larger than one tile draws each tile from its own
generator seeded by (seed, name, tile index), so a rank holding a shard draws only its tiles
(orthogonal, sparse, eye and dirac still draw whole)."""

TILE_ROWS = 256
TILE_COLS = 512
"""A tile: TILE_ROWS rows of dim 0 x TILE_COLS of dim 1 x all of the other dims; a 1-D
tensor is cut in runs of TILE_ROWS * TILE_COLS elements, a 0-D one is one tile. Part of the
draw scheme: they are fixed by the parameter's shape, never by how it is sharded."""


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


def _tiles(shape, box=None):
    """Yield ``(index, tile)`` for the tiles of a tensor of ``shape`` that overlap ``box``
    (every tile when None), in tile order (row-major over tile row, tile column).

    A tile (and a box) is a ``(start, stop)`` pair per dim of the whole tensor. A tensor of
    2 or more dims is cut in TILE_ROWS rows of dim 0 x TILE_COLS of dim 1 x all of the rest; a
    1-D tensor in runs of TILE_ROWS * TILE_COLS elements; a 0-D tensor is one tile. A dim of
    size 0 is one (empty) tile along it. The tiles cover every element exactly once.
    """
    shape = tuple(shape)
    if not shape:
        yield 0, ()
        return
    steps = (TILE_ROWS * TILE_COLS,) if len(shape) == 1 else (TILE_ROWS, TILE_COLS)
    counts = [max(1, -(-shape[d] // step)) for d, step in enumerate(steps)]
    if box is not None and any(b <= a and shape[d] > 0 for d, (a, b) in enumerate(box)):
        return  # the box holds nothing
    ranges = []
    for d, step in enumerate(steps):
        n, count = shape[d], counts[d]
        lo, hi = (0, n) if box is None else box[d]
        first = min(lo // step, count - 1)
        last = count if hi <= lo else min(-(-hi // step), count)
        ranges.append(range(first, last))
    rest = tuple((0, n) for n in shape[len(steps) :])
    for i in ranges[0]:
        for j in ranges[1] if len(ranges) > 1 else (None,):
            tile = ((i * steps[0], min((i + 1) * steps[0], shape[0])),)
            if j is not None:
                tile += ((j * steps[1], min((j + 1) * steps[1], shape[1])),)
            yield (i if j is None else i * counts[1] + j), tile + rest


def _block_seed(seed, name, index):
    """Tile ``index``'s seed: the first 8 bytes of sha256("<seed>/<index>:<name>"), as 63
    bits. Seed and index are digits, so no name can forge another tile's (or, with its
    ``/``, another parameter's :func:`_param_seed`) text."""
    import hashlib

    digest = hashlib.sha256(f"{seed}/{index}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _box(target):
    """The part of the whole tensor this rank holds of ``target``, as ``(start, stop)`` per
    dim: all of a plain tensor; for a DTensor (``distribute_tensor``, FSDP2) its local
    shard, from ``Shard``/``Replicate`` placements as DTensor cuts them (``torch.chunk``
    along the dim, mesh dims in order, an empty chunk past the last one). None when the
    placements are not a box (``_StridedShard``, ``Partial``) or the cut does not match the
    local shard."""
    shape = tuple(target.shape)
    box = [(0, n) for n in shape]
    placements = getattr(target, "placements", None)
    if placements is None:
        return box
    mesh = target.device_mesh
    coordinate = mesh.get_coordinate()
    if coordinate is None:  # this rank is not in the mesh: it holds nothing
        return [(0, 0) for _ in shape]
    for mesh_dim, placement in enumerate(placements):
        kind = type(placement).__name__
        if kind == "Replicate":
            continue
        if kind != "Shard" or not shape:
            return None
        dim = placement.dim % len(shape)
        start, stop = box[dim]
        size = -(-(stop - start) // mesh.size(mesh_dim))
        lo = min(start + coordinate[mesh_dim] * size, stop)
        box[dim] = (lo, min(lo + size, stop))
    if tuple(b - a for a, b in box) != tuple(target.to_local().shape):
        return None
    return box


def _parts(tile, split):
    """Yield ``(k, index, row)`` for the split blocks that meet ``tile``, in split order:
    ``k`` the block, ``index`` the block's part of the tile (to index the tile's buffer),
    ``row`` the part's first row of dim 0 in the whole tensor. ``split`` is ``(dim, sizes)``
    or None (one block: the whole tile)."""
    if split is None:
        yield 0, (), tile[0][0] if tile else 0
        return
    dim, sizes = split
    lo, hi = tile[dim]
    start = 0
    for k, size in enumerate(sizes):
        a, b = max(start, lo), min(start + size, hi)
        start += size
        if a < b:
            yield k, (slice(None),) * dim + (slice(a - lo, b - lo),), a if dim == 0 else tile[0][0]


def _blocks(params, name, seed, split=None):
    """Yield ``(p, g, k, r)`` to draw parameter ``name`` tile by tile (draw scheme 2).

    For each tile this rank holds part of (:func:`_box`): ``p`` is the tile (or, with
    ``split = (dim, sizes)``, each split block's part of it, in split order) as a CPU tensor
    of the parameter's dtype, ``g`` the tile's own CPU generator seeded by
    :func:`_block_seed`, ``k`` the split block, ``r`` the first row of ``p`` in the whole
    tensor (for row fills). Once the caller filled the tile, its part of this rank's shard is
    copied in. A tile that is a contiguous slab of a plain contiguous CPU parameter is drawn
    in place (same numbers, no copy); a DTensor whose placements are no box gets the whole
    tensor drawn, tile by tile, and cut by :func:`_copy_into` (same numbers, more work).
    """
    target = params[name]
    shape = tuple(target.shape)
    box = _box(target)
    plain = type(target) in (torch.Tensor, torch.nn.Parameter)
    direct = plain and target.device.type == "cpu" and target.is_contiguous()
    local = target if plain else target.to_local()
    full = None if box is not None else torch.empty(shape, dtype=target.dtype)
    for index, tile in _tiles(shape, box):
        generator = torch.Generator(device="cpu").manual_seed(_block_seed(seed, name, index))
        cut = tuple(slice(a, b) for a, b in tile)
        in_place = direct and all(tile[d] == (0, shape[d]) for d in range(1, len(shape)))
        if in_place:  # rows of a contiguous tensor: contiguous, the buffer's layout
            work = target[cut]
        else:
            work = torch.empty(tuple(b - a for a, b in tile), dtype=target.dtype)
        for k, part, row in _parts(tile, split):
            yield work[part], generator, k, row
        if full is not None:
            full[cut].copy_(work)
        elif not in_place:
            inner = [(max(a, box[d][0]), min(b, box[d][1])) for d, (a, b) in enumerate(tile)]
            source = tuple(slice(a - tile[d][0], b - tile[d][0]) for d, (a, b) in enumerate(inner))
            into = tuple(slice(a - box[d][0], b - box[d][0]) for d, (a, b) in enumerate(inner))
            local[into].copy_(work[source])
    if full is not None:
        _copy_into(target, full)


def _rows(p, r, start, stop):
    """Rows ``start:stop`` of the whole tensor that lie in ``p``, whose first row is the
    whole tensor's row ``r`` (possibly none): forget-gate and padding rows, tile by tile."""
    lo = min(max(start - r, 0), p.shape[0])
    return p[lo : min(max(stop - r, lo), p.shape[0])]


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
TILE_FUNCTIONS = (_tiles, _block_seed, _box, _parts, _blocks, _rows)
"""The draw-scheme-2 functions: copied into a script only when one of its steps draws by
tiles."""


def prelude_source(tiles: bool = False) -> str:
    """Source of the prelude functions, for an exported script; with ``tiles``, the tile
    constants and the functions that draw tile by tile too."""
    functions = PRELUDE_FUNCTIONS + (TILE_FUNCTIONS if tiles else ())
    text = "\n\n".join(inspect.getsource(fn).rstrip() + "\n" for fn in functions)
    if not tiles:
        return text
    constants = (
        "# A tile: TILE_ROWS rows of dim 0 x TILE_COLS of dim 1 x the other dims whole (a 1-D\n"
        "# tensor: runs of TILE_ROWS * TILE_COLS); fixed by the draw scheme, not by sharding.\n"
        f"TILE_ROWS = {TILE_ROWS}\nTILE_COLS = {TILE_COLS}\n\n\n"
    )
    return constants + text


def tile_count(shape) -> int:
    """How many tiles a tensor of ``shape`` has (:func:`_tiles`)."""
    shape = tuple(shape)
    if len(shape) < 2:
        return max(1, -(-math.prod(shape) // (TILE_ROWS * TILE_COLS))) if shape else 1
    return max(1, -(-shape[0] // TILE_ROWS)) * max(1, -(-shape[1] // TILE_COLS))


PRELUDE_NAMESPACE = {fn.__name__: fn for fn in PRELUDE_FUNCTIONS + TILE_FUNCTIONS}
