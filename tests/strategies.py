"""Hypothesis strategies for fuzzing inittui: random module trees and random plans.

- :func:`layers` draws one layer of any kind inittui knows about (Linear and a subclass,
  Bilinear, Conv/ConvTranspose 1-3d with groups, Embedding/EmbeddingBag with padding_idx,
  BatchNorm/InstanceNorm/LayerNorm/GroupNorm/RMSNorm, RNN/LSTM/GRU with layers, directions
  and proj_size, the cells, MultiheadAttention with kdim/vdim and bias_k/bias_v, PReLU,
  TransformerEncoderLayer, a custom leaf with no torch default, parameter-free layers).
- :func:`module_trees` nests them in custom containers, Sequential, ModuleList and
  ModuleDict, registers parameters and buffers directly on containers, shares modules under
  a second name, ties parameters (a head tied to an embedding, any two of the same shape)
  and sometimes converts the whole model to another dtype.
- :func:`plans_for` draws a VALID plan for a given model: type/glob/exact selectors taken
  from the model, params globs, schemes from :data:`inittui.core.schemes.SCHEMES` with
  arguments drawn from each :class:`~inittui.core.schemes.Arg` (kind, choices, range), only
  schemes that can apply to every parameter the rule selects, per_gate on recurrent
  parameters, forget_bias on LSTM biases, scale, keep and default. Rules hold normalized
  arguments (as ``rule_from_dict`` makes them), so a TOML round trip is the identity.
- :func:`wild_rules` draws rules with anything in them (bad globs, unknown schemes, wrong
  argument types, NaN extension values) and :func:`plan_documents` raw TOML-like
  documents: both are for "never crash, always a clean InittuiError".
- :func:`plans` is a small model-independent plan strategy (moderate arguments).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from hypothesis import strategies as st
from torch import nn

from inittui.core.plan import Plan, Rule, gate_count, module_matches
from inittui.core.schemes import SCHEMES, Arg, SchemeError

# --------------------------------------------------------------------------- modules


class Box(nn.Module):
    """A user's container class (no forward; the tree is all that matters)."""


class MyLinear(nn.Linear):
    """A user subclass of Linear: ``type:Linear`` must select it too."""


class Scaler(nn.Module):
    """A custom leaf with its own parameter and buffer; torch knows no default for it."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(n))
        self.register_buffer("count", torch.zeros(()))


CONTAINERS = (Box, nn.Sequential, nn.ModuleList, nn.ModuleDict)

small = st.integers(1, 4)
maybe_zero = st.integers(0, 4)


def _linear(draw) -> nn.Module:
    cls = draw(st.sampled_from([nn.Linear, MyLinear]))
    return cls(draw(maybe_zero), draw(maybe_zero), bias=draw(st.booleans()))


def _bilinear(draw) -> nn.Module:
    return nn.Bilinear(draw(small), draw(small), draw(small), bias=draw(st.booleans()))


def _conv(draw) -> nn.Module:
    dims = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    groups = draw(st.integers(1, 3))
    cls = {
        (1, False): nn.Conv1d,
        (2, False): nn.Conv2d,
        (3, False): nn.Conv3d,
        (1, True): nn.ConvTranspose1d,
        (2, True): nn.ConvTranspose2d,
        (3, True): nn.ConvTranspose3d,
    }[dims, transposed]
    kernel = tuple(draw(st.integers(1, 3 if dims < 3 else 2)) for _ in range(dims))
    return cls(
        groups * draw(st.integers(1, 2)),
        groups * draw(st.integers(1, 3)),
        kernel,
        groups=groups,
        bias=draw(st.booleans()),
    )


def _embedding(draw) -> nn.Module:
    num, dim = draw(st.integers(1, 6)), draw(small)
    padding = draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    if draw(st.booleans()):
        return nn.Embedding(num, dim, padding_idx=padding)
    mode = draw(st.sampled_from(["mean", "sum", "max"]))
    return nn.EmbeddingBag(num, dim, mode=mode, padding_idx=padding)


def _norm(draw) -> nn.Module:
    kind = draw(st.sampled_from(["batch", "instance", "layer", "group", "rms"]))
    affine = draw(st.booleans())
    if kind == "batch":
        cls = draw(st.sampled_from([nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d]))
        return cls(draw(small), affine=affine, track_running_stats=draw(st.booleans()))
    if kind == "instance":
        cls = draw(st.sampled_from([nn.InstanceNorm1d, nn.InstanceNorm2d]))
        return cls(draw(small), affine=affine, track_running_stats=draw(st.booleans()))
    if kind == "layer":
        shape = tuple(draw(st.lists(small, min_size=1, max_size=2)))
        return nn.LayerNorm(shape, elementwise_affine=affine, bias=draw(st.booleans()))
    if kind == "group":
        groups = draw(st.integers(1, 3))
        return nn.GroupNorm(groups, groups * draw(small), affine=affine)
    shape = tuple(draw(st.lists(small, min_size=1, max_size=2)))
    return nn.RMSNorm(shape, elementwise_affine=affine)


def _recurrent(draw) -> nn.Module:
    cls = draw(st.sampled_from([nn.RNN, nn.LSTM, nn.GRU]))
    hidden = draw(small)
    kwargs: dict[str, object] = {
        "num_layers": draw(st.integers(1, 2)),
        "bias": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
    }
    if cls is nn.LSTM:
        kwargs["proj_size"] = draw(st.integers(0, hidden - 1))
    if cls is nn.RNN:
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    return cls(draw(small), hidden, **kwargs)


def _cell(draw) -> nn.Module:
    cls = draw(st.sampled_from([nn.RNNCell, nn.LSTMCell, nn.GRUCell]))
    return cls(draw(small), draw(small), bias=draw(st.booleans()))


def _attention(draw) -> nn.Module:
    heads = draw(st.integers(1, 2))
    embed = heads * draw(st.integers(1, 3))
    return nn.MultiheadAttention(
        embed,
        heads,
        bias=draw(st.booleans()),
        add_bias_kv=draw(st.booleans()),
        kdim=draw(st.one_of(st.none(), small)),
        vdim=draw(st.one_of(st.none(), small)),
    )


def _transformer(draw) -> nn.Module:
    heads = draw(st.integers(1, 2))
    return nn.TransformerEncoderLayer(
        heads * draw(st.integers(1, 2)),
        heads,
        dim_feedforward=draw(small),
        dropout=0.0,
        norm_first=draw(st.booleans()),
        bias=draw(st.booleans()),
    )


def _prelu(draw) -> nn.Module:
    return nn.PReLU(draw(st.integers(1, 3)), init=draw(st.floats(-1, 1, width=32)))


def _plain(draw) -> nn.Module:
    choice = draw(st.sampled_from(["relu", "identity", "dropout", "scaler"]))
    if choice == "scaler":
        return Scaler(draw(small))
    return {"relu": nn.ReLU, "identity": nn.Identity, "dropout": nn.Dropout}[choice]()


LAYER_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "linear": _linear,
    "conv": _conv,
    "embedding": _embedding,
    "norm": _norm,
    "recurrent": _recurrent,
    "cell": _cell,
    "attention": _attention,
    "bilinear": _bilinear,
    "prelu": _prelu,
    "transformer": _transformer,
    "plain": _plain,
}


@st.composite
def layers(draw) -> nn.Module:
    """One layer of any kind (see LAYER_BUILDERS)."""
    return LAYER_BUILDERS[draw(st.sampled_from(list(LAYER_BUILDERS)))](draw)


def attach(parent: nn.Module, name: str, child: nn.Module) -> None:
    """Add ``child`` under ``parent`` the way each container kind is grown."""
    if isinstance(parent, nn.ModuleList):
        parent.append(child)
    elif isinstance(parent, nn.ModuleDict):
        parent[name] = child
    else:
        parent.add_module(name, child)


# Modules whose parameters can be re-pointed at another Parameter (RNNs keep flat-weight
# lists, so ties there are not something torch supports).
_TIEABLE = (nn.Linear, nn.Bilinear, nn.Embedding, nn.EmbeddingBag, nn.PReLU, Box, Scaler)
_TIEABLE_BASES = (nn.modules.conv._ConvNd,)


def _tieable(module: nn.Module) -> bool:
    return isinstance(module, _TIEABLE + _TIEABLE_BASES) or type(module).__name__.endswith("Norm")


@st.composite
def module_trees(draw, max_nodes: int = 8) -> nn.Module:
    """A random model: nested containers, layers, shared modules, tied parameters,
    parameters and buffers on containers; sometimes float64/bfloat16/float16."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(st.integers(0, 2**16)))
        return _build_tree(draw, max_nodes)


def _build_tree(draw, max_nodes: int) -> nn.Module:
    root = Box()
    containers: list[nn.Module] = [root]
    built: list[nn.Module] = []
    for i in range(draw(st.integers(1, max_nodes))):
        parent = draw(st.sampled_from(containers))
        if draw(st.integers(0, 3)) == 0:
            child = draw(st.sampled_from(CONTAINERS))()
            containers.append(child)
        else:
            child = draw(layers())
        built.append(child)
        attach(parent, f"m{i}", child)

    for i in range(draw(st.integers(0, 2))):  # parameters directly on containers
        owner = draw(st.sampled_from(containers))
        shape = draw(st.lists(st.integers(0, 3), max_size=4))
        owner.register_parameter(
            f"p{i}", nn.Parameter(torch.randn(shape), requires_grad=draw(st.booleans()))
        )
    for i in range(draw(st.integers(0, 2))):  # buffers, persistent or not
        owner = draw(st.sampled_from(containers))
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        owner.register_buffer(f"b{i}", torch.randn(shape), persistent=draw(st.booleans()))

    if draw(st.booleans()):  # the classic tie: an LM head sharing the embedding matrix
        vocab, dim = draw(st.integers(1, 6)), draw(small)
        emb = nn.Embedding(vocab, dim, padding_idx=draw(st.one_of(st.none(), st.just(0))))
        head = nn.Linear(dim, vocab, bias=draw(st.booleans()))
        head.weight = emb.weight
        first, second = (emb, head) if draw(st.booleans()) else (head, emb)
        attach(draw(st.sampled_from(containers)), "tie_a", first)
        attach(draw(st.sampled_from(containers)), "tie_b", second)
        built += [first, second]

    for j in range(draw(st.integers(0, 2))):  # a module under a second name
        if not built:
            break
        child = draw(st.sampled_from(built))
        parent = draw(st.sampled_from(containers))
        if child is parent or any(m is parent for m in child.modules()):
            continue  # would make a cycle
        attach(parent, f"s{j}", child)

    for _ in range(draw(st.integers(0, 2))):  # tie two parameters of the same shape
        slots = [
            (module, name, param)
            for module in root.modules()
            if _tieable(module)
            for name, param in module.named_parameters(recurse=False)
        ]
        if len(slots) < 2:
            break
        src = draw(st.sampled_from(slots))
        same = [s for s in slots if s[2].shape == src[2].shape and s[2] is not src[2]]
        if not same:
            continue
        module, name, _ = draw(st.sampled_from(same))
        setattr(module, name, src[2])

    dtype = draw(
        st.sampled_from(
            [torch.float32, torch.float32, torch.float64, torch.bfloat16, torch.float16]
        )
    )
    if dtype is not torch.float32:
        root.to(dtype)
    return root


# --------------------------------------------------------------------------- plans


def float_values(arg: Arg, wide: bool = True, limit: float = math.inf) -> st.SearchStrategy[float]:
    """Finite floats inside the argument's range: moderate ones, and (``wide``) any up to
    ``limit`` in magnitude."""
    lo, hi = arg.minimum, arg.maximum
    # A valid plan's values times its scale (at most 3) must fit the parameter's dtype
    # (float32): resolution refuses larger ones (issue 12, finite numbers).
    limit = min(limit, 1e37)
    if math.isfinite(limit):
        lo = -limit if lo is None else max(lo, -limit)
        hi = limit if hi is None else min(hi, limit)

    def ranged(low: float | None, high: float | None) -> st.SearchStrategy[float]:
        if lo is not None:
            low = lo if low is None else max(low, lo)
        if hi is not None:
            high = hi if high is None else min(high, hi)
        return st.floats(
            low,
            high,
            exclude_min=arg.exclusive_minimum and low == lo,
            exclude_max=arg.exclusive_maximum and high == hi,
            allow_nan=False,
            allow_infinity=False,
        )

    moderate = ranged(-3.0, 3.0)
    return st.one_of(moderate, ranged(None, None)) if wide else moderate


def arg_values(arg: Arg, wide: bool = True, limit: float = math.inf) -> st.SearchStrategy[object]:
    """A valid value for one scheme argument, from its kind, choices and range."""
    if arg.choices is not None:
        return st.sampled_from(arg.choices)
    if arg.kind is int:
        low = int(arg.minimum) if arg.minimum is not None else -3
        return st.integers(low, low + 4)
    if arg.kind is str:
        return st.text(max_size=5)
    return float_values(arg, wide, limit)


@st.composite
def scheme_args(draw, name: str, wide: bool = True, limit: float = math.inf) -> dict[str, object]:
    """Valid, normalized arguments for scheme ``name`` (every key present); float values
    stay within ``limit`` (so that they fit the parameters' dtype)."""
    scheme = SCHEMES[name]
    raw = {arg.name: draw(arg_values(arg, wide, limit)) for arg in scheme.args}
    if name in ("uniform", "trunc_normal"):  # bounds in order, a < b for trunc_normal
        a, b = sorted((raw["a"], raw["b"]))
        if name == "trunc_normal" and a == b:
            b = math.nextafter(a, math.inf)
            if not math.isfinite(b):
                a, b = math.nextafter(a, -math.inf), a
        raw["a"], raw["b"] = a, b
    try:
        return scheme.validate(raw)
    except SchemeError:  # trunc_normal bounds torch's sampler cannot reach: the defaults
        return scheme.validate({})


@dataclass(frozen=True)
class Slot:
    """One name of one parameter, as resolve_plan sees it."""

    name: str
    local: str
    module: nn.Module
    paths: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: torch.dtype


def slots_of(model: nn.Module) -> list[Slot]:
    paths: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(path)
    out = []
    for name, param in model.named_parameters(remove_duplicate=False):
        module_path, _, local = name.rpartition(".")
        module = model.get_submodule(module_path)
        out.append(
            Slot(
                name,
                local,
                module,
                tuple(paths[id(module)]),
                tuple(int(s) for s in param.shape),
                param.dtype,
            )
        )
    return out


def _type_names(model: nn.Module) -> list[str]:
    names: list[str] = []
    for module in model.modules():
        for cls in type(module).__mro__[:-1]:  # not `object`
            for name in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}"):
                if name not in names:
                    names.append(name)
    return names


@st.composite
def selectors(draw, model: nn.Module) -> str:
    """``type:<Class>`` (any MRO name, qualified or not), an exact path, or a glob."""
    paths = sorted({p for p, _ in model.named_modules(remove_duplicate=False)})
    kind = draw(st.sampled_from(["type", "path", "glob", "fixed"]))
    if kind == "type":
        return "type:" + draw(st.sampled_from(_type_names(model) + ["NoSuchLayer"]))
    if kind == "fixed":
        return draw(st.sampled_from(["**", "*", "", "m*", "*.**", "[ms]?", "[!m]*", "nothing"]))
    path = draw(st.sampled_from(paths))
    if kind == "path":
        return path
    parts = path.split(".") if path else []
    parts = [draw(st.sampled_from([p, "*", p[:1] + "*", "?" * len(p) or "*"])) for p in parts]
    glob = ".".join(parts)
    tail = draw(st.sampled_from(["", ".**", "**"]))
    if not glob and tail.startswith("."):
        tail = "**"
    return glob + tail


_PARAM_GLOBS = (
    "*",
    "weight*",
    "bias*",
    "*weight*",
    "weight_hh*",
    "weight_ih*",
    "bias_*h*",
    "?eight",
)


def _matches(slot: Slot, select: str, params: str) -> bool:
    return fnmatch.fnmatchcase(slot.local, params) and module_matches(
        select, slot.paths, slot.module
    )


def _per_gate_ok(slots: list[Slot]) -> bool:
    return bool(slots) and all(gate_count(s.module, s.local) is not None for s in slots)


def _forget_ok(slots: list[Slot]) -> bool:
    return bool(slots) and all(
        isinstance(s.module, (nn.LSTM, nn.LSTMCell)) and s.local.startswith(("bias_ih", "bias_hh"))
        for s in slots
    )


def _scheme_shape(slot: Slot, per_gate: bool) -> tuple[int, ...]:
    if not per_gate:
        return slot.shape
    gates = gate_count(slot.module, slot.local) or 1
    return (slot.shape[0] // gates, *slot.shape[1:])


def _trunc_normal_precise(args: dict[str, object], slots: list[Slot]) -> bool:
    """Whether torch's trunc_normal_ rejection sampler keeps enough precision in every
    selected dtype (it computes z^2/2 in the tensor's dtype; see plan._dtype_range_problem)."""
    mean, std, a, b = (float(args[k]) for k in ("mean", "std", "a", "b"))  # type: ignore[arg-type]
    z_mode = (max(a, min(mean, b)) - mean) / std
    eps = max((torch.finfo(s.dtype).eps for s in slots), default=0.0)
    return 0.5 * z_mode * z_mode * eps <= 0.5


@st.composite
def rules_for(draw, model: nn.Module, slots: list[Slot] | None = None, wide: bool = True) -> Rule:
    """A valid rule that resolves on ``model``: its scheme applies to every parameter it
    selects (with the drawn arguments and per_gate)."""
    slots = slots_of(model) if slots is None else slots
    if slots and draw(st.booleans()):  # aimed at one parameter: its type or path, its name
        recurrent = [s for s in slots if gate_count(s.module, s.local) is not None]
        pool = recurrent if recurrent and draw(st.booleans()) else slots  # gates are rare
        slot = draw(st.sampled_from(pool))
        path = draw(st.sampled_from(slot.paths))
        select = draw(
            st.sampled_from(
                ["type:" + type(slot.module).__name__, path, (path + ".**") if path else "**"]
            )
        )
        prefix = slot.local.split("_")[0]
        params = draw(st.sampled_from([slot.local, prefix + "*", slot.local[:-1] + "?", "*"]))
    else:
        select = draw(selectors(model))
        locals_ = sorted({s.local for s in slots})
        params = draw(st.sampled_from(list(_PARAM_GLOBS) + locals_))
    chosen = [s for s in slots if _matches(s, select, params)]
    per_gate = _per_gate_ok(chosen) and draw(st.booleans())
    forget_bias = None
    if _forget_ok(chosen) and draw(st.booleans()):
        forget_bias = draw(st.floats(-3, 3, allow_nan=False))
    shapes = {_scheme_shape(s, per_gate) for s in chosen}
    fits = [
        name
        for name, scheme in SCHEMES.items()
        if all(scheme.applicability(shape) is None for shape in shapes)
    ]
    scheme = draw(st.sampled_from(["default", *fits]))
    args: dict[str, object] = {}
    # uniform_/fill_ refuse values beyond the dtype's range (float16: 65504), and resolution
    # refuses a normal whose tail (mean + ~9 std) times the scale (up to 3) does not fit it:
    # stay well inside
    limit = min((torch.finfo(s.dtype).max / 40 for s in chosen), default=math.inf)
    if scheme != "default":
        args = draw(scheme_args(scheme, wide, limit))
        if scheme == "trunc_normal" and not _trunc_normal_precise(args, chosen):
            args = SCHEMES[scheme].validate({})
        if any(SCHEMES[scheme].applicability(shape, args) for shape in shapes):
            args = SCHEMES[scheme].validate({})  # dirac's groups: the default always fits
    scale = draw(st.one_of(st.none(), st.floats(-3, 3, allow_nan=False)))
    note = draw(st.one_of(st.none(), st.text(min_size=1, max_size=8)))
    return Rule(
        select,
        scheme,
        params,
        args=args,
        per_gate=per_gate,
        forget_bias=forget_bias,
        scale=scale,
        note=note,
    )


@st.composite
def plans_for(draw, model: nn.Module, max_rules: int = 5, wide: bool = True) -> Plan:
    """A random valid plan for ``model`` (see :func:`rules_for`); often starts with
    ``** -> default`` as users do."""
    slots = slots_of(model)
    rules = [Rule("**", "default")] if draw(st.booleans()) else []
    rules += draw(st.lists(rules_for(model, slots, wide), max_size=max_rules))
    return Plan(rules=tuple(rules), seed=draw(st.integers(0, 2**63 - 1)))


# --------------------------------------------------------------------------- anything goes

_ARG_NAMES = sorted({arg.name for scheme in SCHEMES.values() for arg in scheme.args})
any_value = st.one_of(
    st.floats(),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=4),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
glob_text = st.text(alphabet="ab.*?[]!-^\\:typeLinr0 ", max_size=10)


@st.composite
def wild_rules(draw, model: nn.Module) -> Rule:
    """A Rule built directly (as the TUI or an API user would): a valid rule for ``model``
    with one or more parts replaced by anything (bad globs, unknown schemes, arguments of
    the wrong type, NaN/inf extension values, per_gate/forget_bias where they do not fit)."""
    rule = draw(rules_for(model))
    changes: dict[str, object] = {}
    for part in draw(st.sets(st.sampled_from(list(_WILD_PARTS)), min_size=1, max_size=3)):
        changes[part] = draw(_WILD_PARTS[part])
    return replace(rule, **changes)


_WILD_PARTS: dict[str, st.SearchStrategy[object]] = {
    "select": st.one_of(
        glob_text, st.text(alphabet="Lina.r_ 0*[", max_size=8).map("type:".__add__)
    ),
    "params": st.one_of(glob_text, st.just("")),
    "scheme": st.sampled_from([*SCHEMES, "default", "keep", "kaiming", "Normal", ""]),
    "args": st.dictionaries(st.sampled_from([*_ARG_NAMES, "gian", "scale"]), any_value, max_size=3),
    "per_gate": st.just(True),
    "forget_bias": st.floats(),
    "scale": st.floats(),
}


@st.composite
def wild_plans(draw, model: nn.Module) -> Plan:
    """Valid and wild rules mixed, a wild one last (so that it decides something)."""
    rule = st.one_of(wild_rules(model), rules_for(model))
    rules = (*draw(st.lists(rule, max_size=3)), draw(wild_rules(model)))
    return Plan(rules=rules, seed=draw(st.integers(0, 2**63 - 1)))


@st.composite
def plan_documents(draw) -> object:
    """A parsed-TOML-like document: usually a plan's shape with odd values in it."""
    rule_table = st.dictionaries(
        st.sampled_from(
            ["select", "params", "scheme", "per_gate", "forget_bias", "scale", "note", *_ARG_NAMES]
        ),
        st.one_of(
            any_value,
            glob_text,
            st.sampled_from([*SCHEMES, "default", "type:Linear", "**"]),
        ),
    )
    rule = st.one_of(rule_table, any_value)
    document = {
        "version": draw(st.one_of(st.just(1), any_value)),
        "seed": draw(st.one_of(st.integers(-5, 2**64), any_value)),
        "rule": draw(st.one_of(st.lists(rule, max_size=3), any_value)),
    }
    drop = draw(st.sets(st.sampled_from(list(document))))
    document = {k: v for k, v in document.items() if k not in drop}
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.text(max_size=4))] = draw(any_value)
    return document


# --------------------------------------------------------------------------- small plans

SIMPLE_SCHEMES = [
    ("normal", {"std": 0.5}),
    ("uniform", {"a": -0.1, "b": 0.2}),
    ("zeros", {}),
    ("trunc_normal", {"std": 0.02}),
    ("ones", {}),
    ("constant", {"val": 0.3}),
]
FAN_SCHEMES = [
    ("xavier_uniform", {}),
    ("kaiming_normal", {"mode": "fan_out"}),
    ("orthogonal", {"gain": 2.0}),
    ("lecun_normal", {}),
    ("xavier_normal", {}),
]


@st.composite
def plans(draw) -> Plan:
    """A model-independent plan with moderate arguments (often inapplicable somewhere)."""
    rule_list = [Rule("**", "default")] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            scheme, args = draw(st.sampled_from(FAN_SCHEMES))
            params = "weight*"
            select = draw(
                st.sampled_from(["type:Linear", "type:Conv2d", "type:Conv1d", "**", "type:LSTM"])
            )
            if select == "**":
                select = "type:Bilinear"
        else:
            scheme, args = draw(st.sampled_from(SIMPLE_SCHEMES))
            params = draw(st.sampled_from(["*", "weight", "bias*"]))
            select = draw(st.sampled_from(["**", "m*", "type:LayerNorm", "type:Embedding", ""]))
        rule_list.append(
            Rule(select, scheme, params, args=args, scale=draw(st.sampled_from([None, 0.5])))
        )
    return Plan(rules=tuple(rule_list), seed=draw(st.integers(0, 2**31)))


__all__ = [
    "Box",
    "MyLinear",
    "Scaler",
    "Slot",
    "attach",
    "layers",
    "module_trees",
    "plan_documents",
    "plans",
    "plans_for",
    "rules_for",
    "scheme_args",
    "slots_of",
    "wild_plans",
    "wild_rules",
]
