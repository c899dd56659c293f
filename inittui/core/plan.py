"""Plans: ordered rules -> resolved per-parameter init steps (the IR); TOML I/O; lints.

A plan is a list of rules. Each rule selects modules (``type:Class``, a dotted-path glob or
an exact path), optionally filters their own parameters by a glob over the local name, and
names a scheme with its keyword arguments. For every parameter the last matching rule wins;
parameters no rule matches keep their values.

Extension keys (inittui's; they never change the meaning of the contract keys):

``per_gate = true``
    For RNN/LSTM/GRU (and their cells) ``weight_ih*``/``weight_hh*``: split the fused matrix
    along dim 0 into the module's gate blocks (LSTM: 4, i f g o; GRU: 3, r z n) and apply
    the scheme to each block, as ``for w in weight.chunk(4, 0): scheme_(w)``. Fans and
    expected std are then those of one block. On biases it is accepted and has no effect
    beyond the same chunking.
``forget_bias = 1.0``
    LSTM/LSTMCell biases only: after the scheme, the forget-gate block (rows H..2H) of
    ``bias_ih*`` is set to the value and that of ``bias_hh*`` to 0, so that the effective
    forget bias (the two vectors add) is exactly the value.
``scale = 0.5``
    Multiply the initialized values by a constant (GPT-2's 1/sqrt(2 * n_layer) residual
    scaling, LSUV's per-layer factors).

Embedding/EmbeddingBag rows at ``padding_idx`` are set back to zero after any scheme.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.prelude import _param_seed
from inittui.core.schemes import Expected, Scheme, SchemeError, dtype_problem, fans, get_scheme
from inittui.core.schemes import default_init as torch_default
from inittui.core.tree import ModelTree, ParamRecord

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PLAN_VERSION = 1
CONTRACT_KEYS = ("select", "params", "scheme")
EXTENSION_KEYS = ("per_gate", "forget_bias", "scale", "note")
RECURRENT_GATES = {"LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3, "RNN": 1, "RNNCell": 1}
FAN_BASED = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "lecun_normal"}


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]`` of a plan. ``args`` are the scheme's keyword arguments."""

    select: str
    scheme: str
    params: str = "*"
    args: Mapping[str, object] = field(default_factory=dict)
    per_gate: bool = False
    forget_bias: float | None = None
    scale: float | None = None
    note: str | None = None

    def to_toml_dict(self) -> dict[str, object]:
        table: dict[str, object] = {"select": self.select}
        if self.params != "*":
            table["params"] = self.params
        table["scheme"] = self.scheme
        table.update(self.args)
        if self.per_gate:
            table["per_gate"] = True
        if self.forget_bias is not None:
            table["forget_bias"] = self.forget_bias
        if self.scale is not None:
            table["scale"] = self.scale
        if self.note:
            table["note"] = self.note
        return table

    def describe(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        extra = []
        if self.per_gate:
            extra.append("per gate")
        if self.forget_bias is not None:
            extra.append(f"forget_bias={self.forget_bias}")
        if self.scale is not None:
            extra.append(f"scale={self.scale}")
        params = "" if self.params == "*" else f" [{self.params}]"
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"{self.select or '(root)'}{params} -> {self.scheme}({args}){tail}"


@dataclass(frozen=True)
class Plan:
    rules: tuple[Rule, ...] = ()
    seed: int = 0
    version: int = PLAN_VERSION

    def with_rule(self, rule: Rule) -> Plan:
        return replace(self, rules=(*self.rules, rule))

    def without_rule(self, index: int) -> Plan:
        return replace(self, rules=self.rules[:index] + self.rules[index + 1 :])

    def with_seed(self, seed: int) -> Plan:
        return replace(self, seed=seed)


def _rule_label(index: int, raw: Mapping[str, object] | Rule) -> str:
    select = raw.select if isinstance(raw, Rule) else raw.get("select", "?")
    return f"rule {index + 1} (select {select!r})"


def _check_extension(label: str, key: str, value: object) -> object:
    if key == "per_gate":
        if not isinstance(value, bool):
            raise InittuiError(f"{label}: per_gate must be true or false, got {value!r}")
        return value
    if key in ("forget_bias", "scale"):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InittuiError(f"{label}: {key} must be a finite number, got {value!r}")
        return float(value)
    if key == "note":
        return str(value)
    raise AssertionError(key)


def rule_from_dict(index: int, raw: Mapping[str, object]) -> Rule:
    """Validate one ``[[rule]]`` table: keys, scheme name, scheme arguments."""
    if not isinstance(raw, Mapping):
        raise InittuiError(f"rule {index + 1} is not a table; write [[rule]] with select/scheme")
    label = _rule_label(index, raw)
    for key in ("select", "scheme"):
        if key not in raw:
            raise InittuiError(f"{label}: missing key {key!r}; every rule needs select and scheme")
        if not isinstance(raw[key], str):
            raise InittuiError(f"{label}: {key} must be a string, got {raw[key]!r}")
    params = raw.get("params", "*")
    if not isinstance(params, str) or not params:
        raise InittuiError(f"{label}: params must be a non-empty glob string, got {params!r}")
    select = raw["select"]
    _compile_select(select, label)
    scheme_name = raw["scheme"]
    extensions = {k: _check_extension(label, k, v) for k, v in raw.items() if k in EXTENSION_KEYS}
    scheme_args = {
        k: v for k, v in raw.items() if k not in CONTRACT_KEYS and k not in EXTENSION_KEYS
    }
    if scheme_name == "default":
        if scheme_args:
            raise InittuiError(
                f"{label}: scheme 'default' takes no arguments, got "
                f"{', '.join(sorted(scheme_args))}"
            )
        args: dict[str, object] = {}
    else:
        try:
            scheme = get_scheme(scheme_name)
            args = scheme.validate(scheme_args)
        except SchemeError as exc:
            raise InittuiError(f"{label}: {exc}") from None
    return Rule(select=select, scheme=scheme_name, params=params, args=args, **extensions)


def plan_from_dict(document: Mapping[str, object], source: str = "plan") -> Plan:
    if not isinstance(document, Mapping):
        raise InittuiError(f"{source}: a plan is a TOML table with version, seed and [[rule]]s")
    known = {"version", "seed", "rule"}
    unknown = [k for k in document if k not in known]
    if unknown:
        raise InittuiError(
            f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
            "a plan has version, seed and [[rule]] tables"
        )
    version = document.get("version", PLAN_VERSION)
    if version != PLAN_VERSION:
        raise InittuiError(
            f"{source}: plan version {version!r} is not supported; this inittui reads version 1"
        )
    seed = document.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InittuiError(
            f"{source}: seed must be a non-negative integer, got {seed!r}; write e.g. seed = 0"
        )
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        raise InittuiError(f"{source}: 'rule' must be an array of tables; write [[rule]]")
    rules = tuple(rule_from_dict(i, raw) for i, raw in enumerate(raw_rules))
    return Plan(rules=rules, seed=seed)


def load_plan(path: str | Path) -> Plan:
    file = Path(path).expanduser()
    if not file.exists():
        raise InittuiError(f"plan file {str(path)!r} not found; check the path")
    if file.is_dir():
        raise InittuiError(f"plan {str(path)!r} is a folder; give a .toml file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InittuiError(
            f"cannot read plan {file.name}: it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}"
            f" at offset {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InittuiError(
            f"cannot read plan {file.name}: {exc.strerror or exc}; check the path and permissions"
        ) from None
    return parse_plan(text, file.name)


def parse_plan(text: str, source: str = "plan") -> Plan:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise InittuiError(f"{source} is not valid TOML: {detail}; fix the plan file") from None
    return plan_from_dict(document, source)


def plan_to_toml(plan: Plan) -> str:
    """The plan as TOML (version 1), readable and round-trippable."""
    import tomli_w

    document = {
        "version": plan.version,
        "seed": plan.seed,
        "rule": [rule.to_toml_dict() for rule in plan.rules],
    }
    return tomli_w.dumps(document)


# --------------------------------------------------------------------------- matching


@functools.lru_cache(maxsize=4096)
def _compile_select(select: str, label: str = "select") -> re.Pattern[str] | None:
    """Dotted-path glob -> regex. ``*`` matches within one component, ``**`` any number of
    components (``encoder.**`` is the encoder and its whole subtree), ``?`` one character,
    ``[...]`` a class. ``type:...`` selectors return None."""
    if select.startswith("type:"):
        if not select[5:].strip() or not select[5:].replace(".", "").replace("_", "").isalnum():
            raise InittuiError(f"{label}: {select!r} must name a class, e.g. type:Linear")
        return None
    out = []
    i = 0
    while i < len(select):
        c = select[i]
        if select.startswith(".**", i):
            out.append(r"(?:\..*)?")
            i += 3
        elif select.startswith("**", i):
            out.append(r".*")
            i += 2
        elif c == "*":
            out.append(r"[^.]*")
            i += 1
        elif c == "?":
            out.append(r"[^.]")
            i += 1
        elif c == "[":
            end = select.find("]", i)
            if end < 0:
                raise InittuiError(f"{label}: unclosed '[' in select {select!r}")
            out.append(select[i : end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _class_names(module: nn.Module) -> frozenset[str]:
    return _type_names(type(module))


@functools.lru_cache(maxsize=4096)
def _type_names(module_type: type) -> frozenset[str]:
    names = set()
    for cls in module_type.__mro__:
        names.add(cls.__name__)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return frozenset(names)


def module_matches(select: str, paths: Sequence[str], module: nn.Module) -> bool:
    if select.startswith("type:"):
        return select[5:].strip() in _class_names(module)
    pattern = _compile_select(select)
    assert pattern is not None
    return any(pattern.match(path) for path in paths)


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class InitStep:
    """One parameter's resolved init: the IR both apply and codegen consume."""

    param: str  # first name in named_parameters()
    aliases: tuple[str, ...]
    module: str
    module_type: str
    local_name: str
    shape: tuple[int, ...]
    dtype: str
    scheme: str  # a table scheme (``default`` already resolved)
    args: tuple[tuple[str, object], ...]
    rule_index: int  # 0-based index of the deciding rule
    seed: int  # per-parameter generator seed
    blocks: tuple[tuple[int, int], ...] | None = None  # per-gate row ranges along dim 0
    scale: float | None = None
    padding_idx: int | None = None
    forget_block: tuple[int, int, float] | None = None  # rows and value to fill
    fan_in: int | None = None
    fan_out: int | None = None
    expected: Expected | None = None
    from_default: bool = False

    @property
    def kwargs(self) -> dict[str, object]:
        return dict(self.args)

    @property
    def block_shape(self) -> tuple[int, ...]:
        if not self.blocks:
            return self.shape
        start, stop = self.blocks[0]
        return (stop - start, *self.shape[1:])


@dataclass(frozen=True)
class Lint:
    kind: str  # padding_row, trunc_normal_bounds, fused_recurrent, fan_layout,
    # tied_conflict, nonfinite, uncovered, no_default
    param: str | None
    message: str
    severity: str = "warning"  # "warning" or "info"


@dataclass
class ResolvedPlan:
    plan: Plan
    steps: list[InitStep]
    lints: list[Lint]
    decided_by: dict[str, int]  # param -> rule index (including keep)

    _by_name: dict[str, InitStep] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name = {name: step for step in self.steps for name in (step.param, *step.aliases)}

    def step_for(self, param: str) -> InitStep | None:
        """The step deciding ``param`` (under any of its names), or None."""
        return self._by_name.get(param)


def param_seed(plan_seed: int, name: str) -> int:
    """Stable per-parameter seed (see :func:`inittui.core.prelude._param_seed`)."""
    return _param_seed(plan_seed, name)


def gate_count(module: nn.Module, local_name: str) -> int | None:
    """Gate blocks stacked in a recurrent parameter (LSTM 4, GRU 3, RNN 1); None for any
    other parameter."""
    if not local_name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
        return None
    for cls in type(module).__mro__:
        if cls.__name__ in RECURRENT_GATES:
            return RECURRENT_GATES[cls.__name__]
    return None


def _is_lstm(module: nn.Module) -> bool:
    return isinstance(module, (nn.LSTM, nn.LSTMCell))


def resolve_plan(
    plan: Plan, model: nn.Module, tree: ModelTree, seed: int | None = None
) -> ResolvedPlan:
    """Turn rules into one :class:`InitStep` per decided parameter (the last rule wins)."""
    plan_seed = plan.seed if seed is None else seed
    module_paths: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        module_paths.setdefault(id(module), []).append(path)
    for index, rule in enumerate(plan.rules):  # a Rule built in code is not validated yet
        for key in ("forget_bias", "scale"):
            if getattr(rule, key) is not None:
                _check_extension(_rule_label(index, rule), key, getattr(rule, key))
    lints: list[Lint] = []
    steps: list[InitStep] = []
    decided: dict[str, int] = {}
    for record in tree.parameters:
        names = (record.name, *record.aliases)
        winner: tuple[int, Rule, str] | None = None
        deciders: dict[int, str] = {}
        for name in names:
            module_path, _, local = name.rpartition(".")
            module = model.get_submodule(module_path)
            paths = module_paths.get(id(module), [module_path])
            for index, rule in enumerate(plan.rules):
                if not fnmatch.fnmatchcase(local, rule.params):
                    continue
                if not module_matches(rule.select, paths, module):
                    continue
                deciders[index] = name
                if winner is None or index > winner[0]:
                    winner = (index, rule, name)
        if winner is None:
            continue
        index, rule, via = winner
        decided[record.name] = index
        if record.aliases:
            schemes = {  # repr: the args of a Rule built in code are not validated yet
                (plan.rules[i].scheme, repr(sorted(map(repr, plan.rules[i].args.items()))))
                for i in deciders
            }
            per_name = {deciders[i] for i in deciders}
            if len(per_name) > 1 and len(schemes) > 1:
                lints.append(
                    Lint(
                        "tied_conflict",
                        record.name,
                        f"{record.name} is tied to {', '.join(record.aliases)}; rules "
                        f"{', '.join(str(i + 1) for i in sorted(deciders))} disagree, "
                        f"rule {index + 1} wins (via {via})",
                    )
                )
        if rule.scheme == "keep":
            continue
        step = _make_step(record, rule, index, via, model, plan_seed, lints)
        if step is not None:
            steps.append(step)
    lints.extend(_plan_lints(steps, tree, model, decided, plan))
    return ResolvedPlan(plan=plan, steps=steps, lints=lints, decided_by=decided)


def _make_step(
    record: ParamRecord,
    rule: Rule,
    index: int,
    via: str,
    model: nn.Module,
    plan_seed: int,
    lints: list[Lint],
) -> InitStep | None:
    label = _rule_label(index, rule)
    module_path, _, local = via.rpartition(".")
    module = model.get_submodule(module_path)
    if record.shape is None:
        raise InittuiError(
            f"{label}: {record.name} is uninitialized (lazy module); run a forward pass "
            "first or give --input-shape so its shape is known"
        )
    scheme_name, args = rule.scheme, dict(rule.args)
    from_default = False
    if scheme_name == "default":
        resolved = torch_default(module, local)
        if resolved is None:
            lints.append(
                Lint(
                    "no_default",
                    record.name,
                    f"{label}: PyTorch has no known default for {type(module).__name__}."
                    f"{local}; left unchanged (pick a scheme for it)",
                )
            )
            return None
        scheme_name, args = resolved
        from_default = True
    scheme = get_scheme(scheme_name)
    try:
        args = scheme.validate(args)
    except SchemeError as exc:
        raise InittuiError(f"{label}: {exc}") from None

    gates = gate_count(module, local)
    blocks = None
    shape = record.shape
    if rule.per_gate:
        if gates is None:
            raise InittuiError(
                f"{label}: per_gate applies to RNN/LSTM/GRU weight_ih/weight_hh/bias "
                f"parameters, not {record.name} ({type(module).__name__})"
            )
        rows = shape[0]
        size = rows // gates
        blocks = tuple((g * size, (g + 1) * size) for g in range(gates))
        shape_for_scheme = (size, *shape[1:])
    else:
        shape_for_scheme = shape
    reason = scheme.applicability(shape_for_scheme, args, name=record.name)
    if reason:
        raise InittuiError(
            f"{label}: cannot apply to {record.name}: {reason}; narrow the rule's select/params "
            "or pick another scheme"
        )

    forget_block = None
    if rule.forget_bias is not None:
        if not _is_lstm(module) or not local.startswith(("bias_ih", "bias_hh")):
            raise InittuiError(
                f"{label}: forget_bias applies to LSTM/LSTMCell bias_ih/bias_hh parameters, "
                f"not {record.name} ({type(module).__name__}); GRU has no forget gate"
            )
        hidden = shape[0] // 4
        value = rule.forget_bias if local.startswith("bias_ih") else 0.0
        forget_block = (hidden, 2 * hidden, value)

    padding_idx = None
    for name in (via, record.name, *record.aliases):  # a tied tensor keeps its padding row
        owner_path, _, owner_local = name.rpartition(".")
        owner = model.get_submodule(owner_path)
        if isinstance(owner, (nn.Embedding, nn.EmbeddingBag)) and owner_local == "weight":
            padding_idx = getattr(owner, "padding_idx", None)
            if padding_idx is not None:
                break

    problem = dtype_problem(scheme.name, args, record.dtype, record.name)
    if problem is None:
        problem = _dtype_range_problem(
            scheme, args, shape_for_scheme, record.dtype, rule.forget_bias
        )
    if problem:
        raise InittuiError(f"{label}: cannot apply to {record.name}: {problem}")

    fan = fans(shape_for_scheme)
    return InitStep(
        param=record.name,
        aliases=tuple(record.aliases),
        module=record.module,
        module_type=record.module_type,
        local_name=record.local_name,
        shape=tuple(shape),
        dtype=record.dtype,
        scheme=scheme_name,
        args=tuple(args.items()),
        rule_index=index,
        seed=param_seed(plan_seed, record.name),
        blocks=blocks,
        scale=rule.scale,
        padding_idx=padding_idx,
        forget_block=forget_block,
        fan_in=None if fan is None else fan[0],
        fan_out=None if fan is None else fan[1],
        expected=_scaled(scheme.expected(shape_for_scheme, args), rule.scale),
        from_default=from_default,
    )


def _dtype_range_problem(
    scheme: Scheme,
    args: Mapping[str, object],
    shape: tuple[int, ...],
    dtype: str,
    forget_bias: float | None,
) -> str | None:
    """Why torch would refuse to fill a ``dtype`` tensor with these values, if it would:
    ``uniform_`` checks that a, b and b - a fit in the dtype, ``fill_`` that the value
    does (float16's range is only +-65504)."""
    try:
        info = torch.finfo(getattr(torch, dtype))
    except (AttributeError, TypeError):
        return None
    intervals: list[tuple[str, float, float]] = []
    if scheme.name in ("uniform", "trunc_normal"):
        intervals.append((f"[a, b] = [{args['a']!r}, {args['b']!r}]", args["a"], args["b"]))
    elif scheme.name == "constant":
        intervals.append((f"val={args['val']!r}", args["val"], args["val"]))
    elif scheme.name in ("xavier_uniform", "kaiming_uniform") and math.prod(shape) > 0:
        assert scheme.stats is not None
        bound = scheme.stats(shape, dict(args)).bound
        if bound is not None:
            intervals.append((f"the bound {bound!r}", -bound, bound))
    if forget_bias is not None:
        intervals.append((f"forget_bias={forget_bias!r}", forget_bias, forget_bias))
    if scheme.name == "trunc_normal":
        # Outside [a, b] with little mass in it, torch's trunc_normal_ accepts U(a, b)
        # proposals by a log-density ratio it computes in the tensor's dtype: z^2/2 minus
        # the same at the mode. Once eps * z^2/2 > 1 that difference is rounding noise and
        # can come out negative for every value: the loop never ends (found by fuzzing).
        mean, std, a, b = (float(args[k]) for k in ("mean", "std", "a", "b"))
        alpha, beta = (a - mean) / std, (b - mean) / std
        mass = 0.5 * (math.erf(beta / math.sqrt(2.0)) - math.erf(alpha / math.sqrt(2.0)))
        z_mode = (max(a, min(mean, b)) - mean) / std
        if mass <= 0.3 and 0.5 * z_mode * z_mode * info.eps > 1.0:
            return (
                f"trunc_normal [a, b] = [{a:g}, {b:g}] is {abs(z_mode):.3g} std from the mean: "
                f"torch's sampler computes densities in {dtype}, too coarse that far out "
                f"(it can loop forever); keep [a, b] within "
                f"{math.sqrt(2.0 / info.eps):.3g} std of the mean"
            )
    for what, low, high in intervals:  # type: ignore[assignment]
        low, high = float(low), float(high)
        if low < info.min or high > info.max or high - low > info.max:
            return (
                f"{scheme.name} {what} does not fit in {dtype} (largest value {info.max:g}); "
                "torch refuses to fill the tensor"
            )
    return None


def _scaled(expected: Expected, scale: float | None) -> Expected:
    """The expected statistics after multiplying the values by ``scale``."""
    if scale is None:
        return expected

    def times(value: float | None) -> float | None:
        return None if value is None else value * scale

    low, high = times(expected.low), times(expected.high)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return replace(
        expected,
        mean=times(expected.mean),
        std=None if expected.std is None else expected.std * abs(scale),
        bound=None if expected.bound is None else expected.bound * abs(scale),
        low=low,
        high=high,
        formula=f"{expected.formula}; then x {scale:g}",
    )


def _plan_lints(
    steps: list[InitStep], tree: ModelTree, model: nn.Module, decided: dict[str, int], plan: Plan
) -> list[Lint]:
    lints: list[Lint] = []
    for step in steps:
        args = step.kwargs
        rule = f"rule {step.rule_index + 1}"
        if step.padding_idx is not None:
            lints.append(
                Lint(
                    "padding_row",
                    step.param,
                    f"{step.param}: padding row {step.padding_idx} is set back to zero after "
                    f"{step.scheme}",
                    severity="info",
                )
            )
        if step.scheme == "trunc_normal":
            mean, std = float(args["mean"]), float(args["std"])
            a, b = float(args["a"]), float(args["b"])
            if std > 0 and (mean - a) / std >= 3 and (b - mean) / std >= 3:
                lints.append(
                    Lint(
                        "trunc_normal_bounds",
                        step.param,
                        f"{rule}: trunc_normal bounds a={a:g}, b={b:g} are absolute: with "
                        f"std={std:g} they sit at {(b - mean) / std:.3g} std and truncate "
                        f"(almost) nothing; for ±2 std use a={mean - 2 * std:g}, "
                        f"b={mean + 2 * std:g}",
                    )
                )
        fused = (
            not step.blocks
            and step.local_name.startswith(("weight_ih", "weight_hh"))
            and step.scheme in ("orthogonal", *FAN_BASED)
            and not step.from_default
            and (gate_count(model.get_submodule(step.module), step.local_name) or 1) > 1
        )
        if fused:
            lints.append(
                Lint(
                    "fused_recurrent",
                    step.param,
                    f"{rule}: {step.scheme} on {step.param} treats the {step.shape[0]}x"
                    f"{step.shape[1]} fused gate matrix as one; add per_gate = true to init "
                    "each gate block on its own",
                )
            )
        record = tree.param(step.param)
        if record.fan_note and step.scheme in FAN_BASED:
            lints.append(Lint("fan_layout", step.param, f"{rule}: {step.param}: {record.fan_note}"))
    uncovered = [p.name for p in tree.parameters if p.name not in decided]
    if uncovered and plan.rules:
        shown = ", ".join(uncovered[:6]) + (
            f" (+{len(uncovered) - 6} more)" if len(uncovered) > 6 else ""
        )
        lints.append(
            Lint(
                "uncovered",
                None,
                f"{len(uncovered)} parameter(s) match no rule and keep their values: {shown}",
                severity="info",
            )
        )
    return lints


def nonfinite_lints(stats: Mapping[str, object]) -> list[Lint]:
    """Lints for parameters holding NaN/Inf (from :func:`inittui.core.stats.compute_stats`)."""
    lints = []
    for name, item in stats.items():
        if item is not None and (getattr(item, "nan", 0) or getattr(item, "inf", 0)):
            lints.append(
                Lint("nonfinite", name, f"{name} holds {item.nan} NaN and {item.inf} Inf values")
            )
    return lints
