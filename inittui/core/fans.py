"""Fans from the computation: which dims of each parameter contract with the input.

torch's ``_calculate_fan_in_and_fan_out`` reads fans off the layout (dim 1 x kernel is
fan_in, dim 0 x kernel is fan_out). That is right for torch's own Linear and Conv, and wrong
for a weight stored (in, out) (transformers' ``Conv1D``, any ``x @ W``) or a transposed
convolution. Here the fans come from what the forward does with the parameter:

* **Trace** (``fan_source = "trace"``): one forward on the meta device (no memory, any
  model size) under a :class:`TorchDispatchMode` that follows every parameter through views
  (``t``, ``permute``, ``view``, ``split``...) to the op that consumes it. ``mm`` / ``addmm``
  / ``bmm`` / ``baddbmm`` (what ``linear``, ``matmul`` and ``einsum`` decompose into): the
  param dims that contract with the input make fan_in, those that reach the output make
  fan_out. ``convolution``: fan_in = in/groups * prod(kernel), fan_out = out/groups *
  prod(kernel), as torch computes for an ungrouped conv. ``embedding``: torch's fans.
* **Known layout** (``"known layout"``), without a forward or where the trace cannot tell:
  transformers ``Conv1D`` (weight (in, out)), transposed and grouped torch convolutions.
* **torch** (``"torch"``): the layout rule. A 2-D+ parameter of a module that is neither
  torch's nor a known layout, which no forward explained, gets an "unverified fans" note.

Transposed convolution, weight (in, out/groups, *k) with stride s: output position o of
each spatial dim receives input i through tap j when o = i*s + j*dilation - padding, so
over the output the taps that land on one position average prod(k)/prod(s); each output
element sums in/groups channels of those: **fan_in = in/groups * prod(k) / prod(s)** (not
always whole: k = 3, s = 2 alternates 2 and 1 taps). Each input element reaches out/groups
channels at prod(k) positions: **fan_out = out/groups * prod(k)**. A grouped conv (out,
in/groups, *k) likewise has fan_out = out/groups * prod(k), not torch's out * prod(k).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from inittui.core.schemes.stats import fans as torch_fans

Fan = int | float
aten = torch.ops.aten

_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRACE, KNOWN, TORCH = "trace", "known layout", "torch"


@dataclass(frozen=True)
class FanInfo:
    """Effective fans of one parameter, where they come from and, if they mislead, why."""

    fan_in: Fan
    fan_out: Fan
    source: str
    note: str | None = None


def whole(value: float) -> Fan:
    """``value`` as an int when it is whole (fans print as ``768``, not ``768.0``)."""
    return int(value) if float(value).is_integer() else float(value)


# -- known layouts ----------------------------------------------------------------------


def is_conv1d_layout(module: nn.Module) -> bool:
    """transformers' ``Conv1D`` (GPT-2, GPT-J...): ``y = x @ weight + bias``, weight (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def conv_fans(
    shape: Sequence[int], groups: int, transposed: bool, stride: Sequence[int]
) -> tuple[Fan, Fan]:
    """Fans of a conv weight from its op's arguments (see the module docstring)."""
    kernel = math.prod(shape[2:])
    if transposed:  # (in, out/groups, *k)
        per_group_in = shape[0] / groups
        return whole(per_group_in * kernel / math.prod(stride)), shape[1] * kernel
    return shape[1] * kernel, whole(shape[0] / groups * kernel)  # (out, in/groups, *k)


def known_layout(module: nn.Module, local: str, shape: Sequence[int]) -> FanInfo | None:
    """Effective fans of a module type whose layout misleads torch's rule, else None."""
    if local != "weight" or len(shape) < 2:
        return None
    if is_conv1d_layout(module) and len(shape) == 2:
        return FanInfo(shape[0], shape[1], KNOWN)
    if isinstance(module, _CONV_TRANSPOSE):
        fan_in, fan_out = conv_fans(shape, module.groups, True, module.stride)
        return FanInfo(fan_in, fan_out, KNOWN)
    if isinstance(module, _CONV) and module.groups > 1:
        fan_in, fan_out = conv_fans(shape, module.groups, False, module.stride)
        return FanInfo(fan_in, fan_out, KNOWN)
    return None


def _is_torch_module(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.")


def layout_fans(module: nn.Module, local: str, shape: Sequence[int] | None) -> FanInfo | None:
    """Fans without a forward: a known layout, else torch's rule (None under 2 dims)."""
    if shape is None:
        return None
    base = torch_fans(shape)
    if base is None:
        return None
    known = known_layout(module, local, shape)
    if known is not None:
        return explain(known, base, module)
    note = None
    if not _is_torch_module(module) and not is_conv1d_layout(module):
        note = (
            f"unverified fans: {type(module).__name__} is not a layer whose layout inittui "
            "knows and no traced forward showed how it uses this tensor; torch's layout rule "
            "applies (give --input-shape so a forward can tell)"
        )
    return FanInfo(base[0], base[1], TORCH, note)


def explain(info: FanInfo, base: tuple[int, int], module: nn.Module | None) -> FanInfo:
    """``info`` with a note naming both fans when they differ from torch's ``base``."""
    if info.note is not None or (info.fan_in, info.fan_out) == base:
        return info
    why = "the forward contracts other dims than torch's layout rule assumes"
    if module is not None and is_conv1d_layout(module):
        why = "the weight is stored (in, out): y = x @ W"
    elif isinstance(module, _CONV_TRANSPOSE):
        stride = "x".join(map(str, module.stride))
        why = (
            f"transposed conv (stride {stride}, groups {module.groups}): weight is "
            "(in, out/groups, k...), each output sums in/groups*k/stride^d inputs, each input "
            "reaches out/groups*k outputs"
        )
    elif isinstance(module, _CONV) and module.groups > 1:
        kind = "depthwise" if module.groups == module.in_channels else "grouped"
        why = f"{kind} conv (groups={module.groups}): each input reaches out/groups*k outputs"
    elif info.source == TRACE:
        why = "the traced forward contracts these dims with the input"
    note = (
        f"fan_in {info.fan_in}, fan_out {info.fan_out} from the computation ({why}); torch's "
        f"layout rule gives fan_in {base[0]}, fan_out {base[1]}"
    )
    return FanInfo(info.fan_in, info.fan_out, info.source, note)


# -- the trace --------------------------------------------------------------------------

Dims = tuple[frozenset[int], ...]  # per dim of a derived tensor: the param dims it holds
_IDENTITY_OPS = {
    aten.detach.default,
    aten.alias.default,
    aten.clone.default,
    aten._to_copy.default,
    aten.contiguous.default,
    aten.lift_fresh.default,
    aten.neg.default,
    aten.mul.Tensor,
    aten.mul.Scalar,
    aten.div.Tensor,
    aten.div.Scalar,
    aten.add.Tensor,
    aten.sub.Tensor,
}
_VIEW_OPS = {
    aten.view.default,
    aten._unsafe_view.default,
    aten.reshape.default,
    aten.expand.default,
    aten.unsqueeze.default,
    aten.squeeze.default,
    aten.squeeze.dim,
    aten.squeeze.dims,
}
_SAME_DIM_SPLITS = {
    aten.split.Tensor,
    aten.split_with_sizes.default,
    aten.chunk.default,
    aten.slice.Tensor,
    aten.narrow.default,
}
_MATMULS = {  # op -> index of its two matrix operands
    aten.mm.default: (0, 1),
    aten.bmm.default: (0, 1),
    aten.addmm.default: (1, 2),
    aten.baddbmm.default: (1, 2),
    aten.matmul.default: (0, 1),
}
_CONVS = {aten.convolution.default, aten._convolution.default}
_EMBEDDINGS = {aten.embedding.default, aten._embedding_bag.default, aten.embedding_bag.default}


def reshape_dims(old: Sequence[int], dims: Dims, new: Sequence[int]) -> Dims:
    """The param dims of each dim of ``old`` reshaped to ``new`` (same numel): dims are
    grouped where the running products meet; every new dim of a group holds the group's
    (a split dim keeps its param dim in each part, merged dims hold all of theirs)."""
    out: list[frozenset[int]] = []
    i = j = 0
    while i < len(old) or j < len(new):
        if j < len(new) and new[j] == 1:
            out.append(frozenset())
            j += 1
            continue
        if i < len(old) and old[i] == 1:
            i += 1
            continue
        if i >= len(old) or j >= len(new):
            raise ValueError("shapes do not align")
        group, size_old, size_new, start = set(dims[i]), old[i], new[j], j
        i, j = i + 1, j + 1
        while size_old != size_new:
            if size_old < size_new:
                group |= dims[i]
                size_old *= old[i]
                i += 1
            else:
                size_new *= new[j]
                j += 1
        out += [frozenset(group)] * (j - start)
    return tuple(out)


class _Recorder(TorchDispatchMode):
    """Follows meta parameters through views to the ops that consume them."""

    def __init__(self, names: dict[int, tuple[str, torch.Tensor]]) -> None:
        super().__init__()
        self.shapes = {name: tuple(t.shape) for name, t in names.values()}
        self.derived: dict[int, tuple[str, Dims, torch.Tensor]] = {
            key: (name, tuple(frozenset({d}) for d in range(t.dim())), t)
            for key, (name, t) in names.items()
        }
        self.uses: dict[str, list[tuple[Fan, Fan] | str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._note(func, args, out)
        except Exception:  # noqa: BLE001 - bookkeeping must never break the forward
            pass
        return out

    def _of(self, value: object) -> tuple[str, Dims, torch.Tensor] | None:
        if isinstance(value, torch.Tensor):
            return self.derived.get(id(value))
        return None

    def _keep(self, tensor: object, name: str, dims: Dims) -> None:
        if isinstance(tensor, torch.Tensor) and len(dims) == tensor.dim():
            self.derived[id(tensor)] = (name, dims, tensor)

    def _use(self, name: str, use: tuple[Fan, Fan] | str) -> None:
        self.uses.setdefault(name, []).append(use)

    def _note(self, func, args, out) -> None:
        found = [(i, self._of(a)) for i, a in enumerate(args) if self._of(a) is not None]
        if not found:
            return
        if func in _MATMULS:
            self._matmul(func, args, found)
        elif func in _CONVS:
            self._conv(args, found)
        elif func in _EMBEDDINGS:
            name, dims, tensor = found[0][1]
            base = torch_fans(tensor.shape)
            if found[0][0] == 0 and base is not None and _identity(dims):
                self._use(name, base)
        elif func in _IDENTITY_OPS or func in _VIEW_OPS:
            self._follow(func, args, found, out)
        elif func in (aten.t.default, aten.transpose.int, aten.permute.default):
            name, dims, tensor = found[0][1]
            if func == aten.t.default:
                order = list(range(tensor.dim()))[::-1]
            elif func == aten.transpose.int:
                order = list(range(tensor.dim()))
                a, b = args[1] % tensor.dim(), args[2] % tensor.dim()
                order[a], order[b] = order[b], order[a]
            else:
                order = [d % tensor.dim() for d in args[1]]
            self._keep(out, name, tuple(dims[d] for d in order))
        elif func in _SAME_DIM_SPLITS:
            name, dims, _ = found[0][1]
            for piece in out if isinstance(out, (list, tuple)) else [out]:
                self._keep(piece, name, dims)
        elif func in (aten.select.int, aten.unbind.int):
            name, dims, tensor = found[0][1]
            dim = (args[1] if len(args) > 1 else 0) % tensor.dim()
            rest = dims[:dim] + dims[dim + 1 :]
            for piece in out if isinstance(out, (list, tuple)) else [out]:
                self._keep(piece, name, rest)
        else:
            for _, (name, _, _) in found:
                self._use(name, str(func.overloadpacket.__name__))

    def _follow(self, func, args, found, out) -> None:
        """Views and element-wise ops: the output holds the input's param dims."""
        if not isinstance(out, torch.Tensor):
            return
        for _, (name, dims, tensor) in found:
            if func in _VIEW_OPS and func != aten.expand.default:
                self._keep(out, name, reshape_dims(tensor.shape, dims, out.shape))
                return
            if func == aten.expand.default:
                pad = (frozenset(),) * (out.dim() - tensor.dim())
                self._keep(out, name, pad + dims)
                return
            if tuple(tensor.shape) == tuple(out.shape):
                self._keep(out, name, dims)
                return

    def _matmul(self, func, args, found) -> None:
        left, right = _MATMULS[func]
        sides = {i: item for i, item in found if i in (left, right)}
        if len(sides) == 2:  # parameter times parameter: no input to contract with
            for name, _, _ in sides.values():
                self._use(name, "a product of two parameters")
            return
        for i, (name, dims, tensor) in sides.items():
            if tensor.dim() < 2:
                self._use(name, "a matrix-vector product")
                continue
            if i == left:  # W @ x: dim -1 contracts, dim -2 is the output
                contracted, produced = dims[-1], dims[-2]
            else:  # x @ W: dim -2 contracts, dim -1 is the output
                contracted, produced = dims[-2], dims[-1]
            self._use(name, self._fans_of(name, contracted, produced))

    def _fans_of(self, name: str, contracted: frozenset, produced: frozenset) -> tuple | str:
        shape = self.shapes[name]
        if not contracted or not produced or contracted & produced:
            return "a contraction whose input and output dims cannot be told apart"
        return (
            math.prod(shape[d] for d in contracted),
            math.prod(shape[d] for d in produced),
        )

    def _conv(self, args, found) -> None:
        for i, (name, dims, tensor) in found:
            if i != 1 or not _identity(dims):
                self._use(name, "a convolution in an unusual position")
                continue
            stride, transposed, groups = args[3], bool(args[6]), int(args[8])
            self._use(name, conv_fans(tensor.shape, groups, transposed, stride))


def _identity(dims: Dims) -> bool:
    return all(d == frozenset({k}) for k, d in enumerate(dims))


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are meta twins (ties kept): no
    tensor data is copied and ``model`` is not touched."""
    memo: dict[int, object] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        if id(param) not in memo:
            twin = param.detach().to("meta")
            # requires_grad as the original: eval-mode fast paths (fused encoder layers)
            # would hide the contractions from the trace.
            memo[id(param)] = nn.Parameter(twin, requires_grad=param.requires_grad)
    for _, buffer in model.named_buffers(remove_duplicate=False):
        memo.setdefault(id(buffer), buffer.detach().to("meta"))
    return copy.deepcopy(model, memo)


def trace(model: nn.Module, inputs: Sequence[torch.Tensor]) -> dict[str, list] | None:
    """Run ``model(*inputs)`` once on a meta copy (:func:`meta_copy`); per parameter (first
    name) the uses seen: ``(fan_in, fan_out)`` for a contraction, else the op's name. None
    when the copy or the forward fails on meta (data-dependent code, CPU tensors kept
    outside buffers...)."""
    if type(model).forward is nn.Module.forward:  # no forward: nothing to trace
        return None
    if any(isinstance(p, nn.parameter.UninitializedTensorMixin) for p in model.parameters()):
        return None
    try:
        twin = meta_copy(model)
        unique: dict[int, tuple[str, torch.Tensor]] = {}
        for name, param in twin.named_parameters(remove_duplicate=False):
            unique.setdefault(id(param), (name, param))
        recorder = _Recorder(unique)
        with recorder:
            twin(*(x.detach().to("meta") for x in inputs))
    except Exception:  # noqa: BLE001 - any user forward may fail on meta
        return None
    return recorder.uses


def traced_fans(uses: Sequence[tuple[Fan, Fan] | str]) -> FanInfo | str:
    """One parameter's fans from its uses, or why they stay unverified."""
    contractions = {use for use in uses if isinstance(use, tuple)}
    if len(contractions) == 1:
        fan_in, fan_out = next(iter(contractions))
        return FanInfo(whole(fan_in), whole(fan_out), TRACE)
    if len(contractions) > 1:
        shown = ", ".join(f"{a}/{b}" for a, b in sorted(contractions, key=str))
        return f"its uses disagree on the fans (fan_in/fan_out {shown})"
    kinds = sorted({str(use) for use in uses})
    if not kinds:
        return "the traced forward did not use it"
    return f"the traced forward uses it only in {', '.join(kinds[:3])}, not a contraction"


def permutation_for(shape: Sequence[int], fan_in: Fan, fan_out: Fan) -> tuple[int, ...] | None:
    """A permutation of ``shape``'s dims under which torch's layout rule gives (fan_in,
    fan_out): the identity when it already does, None when none does (a stride-aware
    transposed conv, a grouped conv's fan_out)."""
    dims = tuple(int(s) for s in shape)
    if len(dims) > 6:
        return None
    for order in itertools.permutations(range(len(dims))):
        if torch_fans(tuple(dims[d] for d in order)) == (fan_in, fan_out):
            return order
    return None


# -- the tree's fans ----------------------------------------------------------------------


def apply_trace(tree, model: nn.Module, uses: dict[str, list]) -> None:
    """Overlay the traced fans on ``tree``'s records (a :class:`~inittui.core.tree.ModelTree`)."""
    modules = tree.module_objects
    for record in tree.parameters:
        if record.shape is None or record.torch_fan_in is None:
            continue
        base = (record.torch_fan_in, record.torch_fan_out)
        owner = modules.get(record.module) or model.get_submodule(record.module)
        found = traced_fans(uses.get(record.name, ()))
        if isinstance(found, FanInfo):
            info = explain(found, base, owner)
        elif record.fan_source == TORCH and record.fan_note is not None:
            info = FanInfo(
                base[0],
                base[1],
                TORCH,
                f"unverified fans: {found}; torch's layout rule applies",
            )
        else:
            continue
        record.fan_in, record.fan_out = info.fan_in, info.fan_out
        record.fan_source, record.fan_note = info.source, info.note


def trace_inputs(
    loaded,
    input_shapes: Sequence[str] | None = None,
    input_dtype: str | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, ...] | None:
    """The inputs the preview would use (``--input-shape``, ``example_inputs``, inferred
    from the first layer), or None when none are known. A model on the meta device gets
    the same shapes, with no values."""
    from inittui.core.loading import LoadedModel, example_inputs_function, model_device
    from inittui.core.probe.inputs import infer_inputs, make_inputs

    model = loaded.model if isinstance(loaded, LoadedModel) else loaded
    try:
        if model_device(model).type != "meta":
            return tuple(make_inputs(loaded, input_shapes, input_dtype, seed=seed))
        if input_shapes:
            return _meta_inputs(model, input_shapes, input_dtype)
        fn = example_inputs_function(loaded) if isinstance(loaded, LoadedModel) else None
        if fn is not None:
            value = fn(model) if inspect.signature(fn).parameters else fn()
            value = (value,) if isinstance(value, torch.Tensor) else tuple(value)
            return tuple(x.detach().to("meta") for x in value)
        return tuple(infer_inputs(model, input_dtype, seed=seed, device="meta"))
    except Exception:  # noqa: BLE001 - no inputs: the layouts stand
        return None


def _meta_inputs(
    model: nn.Module, input_shapes: Sequence[str], input_dtype: str | None
) -> tuple[torch.Tensor, ...]:
    """``--input-shape`` inputs for a model on meta: the shapes and dtypes, no values."""
    from inittui.core.probe.inputs import first_layer, parse_input_dtype, parse_input_shape

    if input_dtype:
        dtype = parse_input_dtype(input_dtype)
    else:
        found = first_layer(model)
        embeds = found is not None and isinstance(found[1], (nn.Embedding, nn.EmbeddingBag))
        floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
        dtype = torch.int64 if embeds else (floats[0] if floats else torch.float32)
    shapes = [parse_input_shape(text) for text in input_shapes]
    return tuple(torch.empty(shape, dtype=dtype, device="meta") for shape in shapes)


def traced_tree(
    loaded,
    input_shapes: Sequence[str] | None = None,
    input_dtype: str | None = None,
    seed: int = 0,
):
    """:func:`~inittui.core.tree.build_tree` with the fans of one traced forward when
    inputs are known (see :func:`trace_inputs`); the known layouts otherwise."""
    from inittui.core.loading import LoadedModel
    from inittui.core.tree import build_tree

    model = loaded.model if isinstance(loaded, LoadedModel) else loaded
    tree = build_tree(model)
    if isinstance(loaded, LoadedModel):
        from inittui.core.plan.expr_context import constructor_arguments

        tree.constructor_args = constructor_arguments(loaded)
    if type(model).forward is nn.Module.forward:
        return tree
    inputs = trace_inputs(loaded, input_shapes, input_dtype, seed)
    if inputs is not None:
        uses = trace(model, inputs)
        if uses is not None:
            apply_trace(tree, model, uses)
    return tree
