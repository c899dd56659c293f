"""Resolution: rules -> one :class:`InitStep` per decided parameter (the IR that apply and
codegen consume), in a frozen :class:`ResolvedPlan`.

:func:`make_step` is the one per-parameter step builder: :func:`resolve_plan` calls it for
every decided parameter, and :func:`inittui.core.plan.judge.judge_rule` (the assign
dialog's verdict) calls it on a node's own parameters, so both say the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.fans import permutation_for
from inittui.core.limits import seed_too_large
from inittui.core.plan.expr_context import ExprSite, concrete_rule
from inittui.core.plan.lints import Lint, plan_lints
from inittui.core.plan.model import Plan, Rule, check_rule_numbers, rule_label
from inittui.core.plan.select import RuleIndex, gate_count, module_matches, name_glob
from inittui.core.prelude import _param_seed
from inittui.core.schemes import Expected, Scheme, SchemeError, fans, get_scheme
from inittui.core.schemes.args import fmt_num
from inittui.core.schemes.row import overflow_problem
from inittui.core.schemes.stats import scaled, with_rows_filled
from inittui.core.tree import ModelTree, ParamRecord


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
    fan_in: int | float | None = None  # the fans the scheme uses (inittui.core.fans)
    fan_out: int | float | None = None
    expected: Expected | None = None
    from_default: bool = False
    torch_fan_in: int | None = None  # torch's layout rule, for the same tensor (or block)
    torch_fan_out: int | None = None
    fan_source: str | None = None  # "trace", "known layout", "torch"; None under 2 dims
    # How a fan-based scheme draws with fans other than torch's: on the view
    # p.permute(*fan_view), or (no view has them) with fan_fill = ("normal", std) or
    # ("uniform", bound) through torch.nn.init.normal_/uniform_.
    fan_view: tuple[int, ...] | None = None
    fan_fill: tuple[str, float] | None = None
    # The rule's expressions and their values here: (key, text, value); args and scale
    # hold the values (inittui.core.plan.expr_context).
    expressions: tuple[tuple[str, str, float], ...] = ()

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
class ResolvedPlan:
    """A plan resolved against one model: its steps, lints and which rule decided each
    parameter (``keep`` included). Frozen: :meth:`with_lints` returns a new one."""

    plan: Plan
    steps: tuple[InitStep, ...]
    lints: tuple[Lint, ...]
    decided_by: Mapping[str, int]  # param -> rule index (including keep)

    _by_name: dict[str, InitStep] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "lints", tuple(self.lints))
        by_name = {name: step for step in self.steps for name in (step.param, *step.aliases)}
        object.__setattr__(self, "_by_name", by_name)

    def step_for(self, param: str) -> InitStep | None:
        """The step deciding ``param`` (under any of its names), or None."""
        return self._by_name.get(param)

    def with_lints(self, lints: Sequence[Lint]) -> ResolvedPlan:
        """This resolution with ``lints`` added after its own."""
        return replace(self, lints=(*self.lints, *lints))


def param_seed(plan_seed: int, name: str) -> int:
    """Stable per-parameter seed (see :func:`inittui.core.prelude._param_seed`)."""
    return _param_seed(plan_seed, name)


def module_paths_of(model: nn.Module) -> dict[int, list[str]]:
    """Every path of every module object (a shared module has several)."""
    paths: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(path)
    return paths


def modules_by_path(model: nn.Module) -> dict[str, nn.Module]:
    """Every path of every module (a shared module under each of its paths)."""
    return dict(model.named_modules(remove_duplicate=False))


Site = tuple[str, str, nn.Module, list[str]]  # name, local name, module, module's paths


def name_sites(
    record: ParamRecord,
    model: nn.Module,
    module_paths: Mapping[int, list[str]],
    modules: Mapping[str, nn.Module] | None = None,
) -> list[Site]:
    """Every name of ``record`` (first name, then aliases) with its module and paths;
    ``modules`` (every path -> module, see :func:`modules_by_path`) saves a
    ``get_submodule`` walk per name."""
    sites = []
    for name in (record.name, *record.aliases):
        module_path, _, local = name.rpartition(".")
        module = modules.get(module_path) if modules is not None else None
        if module is None:
            module = model.get_submodule(module_path)
        sites.append((name, local, module, module_paths.get(id(module), [module_path])))
    return sites


def matching_names(sites: Sequence[Site], rule: Rule) -> list[str]:
    """The names among ``sites`` that ``rule`` selects, in order."""
    params = name_glob(rule.params)
    return [
        name
        for name, local, module, paths in sites
        if params.match(local) and module_matches(rule.select, paths, module)
    ]


def selecting_rules(sites: Sequence[Site], index: RuleIndex) -> dict[int, list[str]]:
    """Rule index -> the names among ``sites`` it selects (in order), for every rule of
    the plan ``index`` was built from that selects one."""
    selected: dict[int, list[str]] = {}
    for name, local, module, paths in sites:
        for rule_index in index.site_rules(local, module, paths):
            selected.setdefault(rule_index, []).append(name)
    return selected


def resolve_plan(
    plan: Plan,
    model: nn.Module,
    tree: ModelTree,
    seed: int | None = None,
    *,
    constructor_args: Mapping[str, object] | None = None,
) -> ResolvedPlan:
    """Turn rules into one :class:`InitStep` per decided parameter (the last rule wins).
    ``constructor_args`` are what expressions' ``arg.NAME`` read
    (:func:`~inittui.core.plan.expr_context.constructor_arguments`)."""
    plan_seed = plan.seed if seed is None else seed
    if isinstance(plan_seed, int) and seed_too_large(plan_seed) is not None:
        raise InittuiError(f"plan: seed {seed_too_large(plan_seed)}; write e.g. seed = 0")
    module_paths = module_paths_of(model)
    modules = modules_by_path(model)
    check_rule_numbers(plan)
    rule_index = RuleIndex(plan.rules)
    lints: list[Lint] = []
    steps: list[InitStep] = []
    decided: dict[str, int] = {}
    for record in tree.parameters:
        sites = name_sites(record, model, module_paths, modules)
        selected = selecting_rules(sites, rule_index)  # rule index -> the names it selects
        if not selected:
            continue
        index = max(selected)
        rule, via = plan.rules[index], selected[index][0]
        deciders = {i: names[-1] for i, names in selected.items()}
        decided[record.name] = index
        conflict = _tied_conflict(record, plan, deciders, index, via)
        if conflict is not None:
            lints.append(conflict)
        if rule.scheme == "keep":
            continue
        made = make_step(
            record, rule, index, via, model, plan_seed, constructor_args=constructor_args
        )
        if isinstance(made, Lint):
            lints.append(made)
        else:
            steps.append(made)
    lints.extend(plan_lints(steps, tree, model, decided, plan))
    return ResolvedPlan(plan=plan, steps=tuple(steps), lints=tuple(lints), decided_by=decided)


def _tied_conflict(
    record: ParamRecord, plan: Plan, deciders: dict[int, str], index: int, via: str
) -> Lint | None:
    """A tied tensor whose names are decided by rules that disagree."""
    if not record.aliases:
        return None
    schemes = {  # repr: the args of a Rule built in code are not validated yet
        (plan.rules[i].scheme, repr(sorted(map(repr, plan.rules[i].args.items()))))
        for i in deciders
    }
    per_name = set(deciders.values())
    if len(per_name) > 1 and len(schemes) > 1:
        return Lint(
            "tied_conflict",
            record.name,
            f"{record.name} is tied to {', '.join(record.aliases)}; rules "
            f"{', '.join(str(i + 1) for i in sorted(deciders))} disagree, "
            f"rule {index + 1} wins (via {via})",
        )
    return None


# -- the step builder ----------------------------------------------------------------------


class StepRefused(InittuiError):
    """A rule that cannot apply to a parameter: ``"<rule label>: <detail>"``; ``why`` is
    the scheme's own reason (the assign dialog shows it beside the scheme)."""

    def __init__(self, label: str, detail: str, why: str) -> None:
        super().__init__(f"{label}: {detail}")
        self.detail = detail
        self.why = why


def make_step(
    record: ParamRecord,
    rule: Rule,
    index: int,
    via: str,
    model: nn.Module,
    plan_seed: int,
    *,
    constructor_args: Mapping[str, object] | None = None,
) -> InitStep | Lint:
    """The step of ``rule`` (the plan's rule ``index``) for ``record``, reached as ``via``;
    a ``no_default`` :class:`Lint` when ``default`` knows no default for it.

    Raises :class:`InittuiError` (the rule's label, then why) when the rule cannot apply.
    """
    label = rule_label(index, rule)
    # Expressions -> their values for this parameter: from here on the rule holds numbers.
    rule, expressions = concrete_rule(rule, ExprSite(record, via, model, constructor_args), label)
    module_path, _, local = via.rpartition(".")
    module = model.get_submodule(module_path)
    shape = _materialized_shape(record, label)
    row = _concrete_row(rule, module, local, label)
    if row is None:
        return Lint(
            "no_default",
            record.name,
            f"{label}: PyTorch has no known default for {type(module).__name__}."
            f"{local}; left unchanged (pick a scheme for it)",
        )
    scheme, args = row
    blocks = _gate_blocks(rule, module, local, record, label)
    block_shape = shape if blocks is None else (blocks[0][1] - blocks[0][0], *shape[1:])
    reason = scheme.applicability(block_shape, args, name=record.name)
    if reason:
        raise StepRefused(
            label,
            f"cannot apply to {record.name}: {reason}; narrow the rule's select/params "
            "or pick another scheme",
            reason,
        )
    forget_block = _forget_block(rule, module, local, shape, record, label)
    padding_idx = _padding_idx(model, via, record)
    _check_dtype(scheme, args, block_shape, record, rule, label)
    fan = fans(block_shape)
    from_default = get_scheme(rule.scheme).per_module
    used = _used_fans(record, fan, blocks, from_default)
    expected, view, fill = fan_expected(scheme, args, block_shape, fan, used[:2])
    _check_finite(scheme, args, expected, rule, record, label)
    expected = step_expected(expected, shape, rule.scale, forget_block, padding_idx)
    return InitStep(
        param=record.name,
        aliases=tuple(record.aliases),
        module=record.module,
        module_type=record.module_type,
        local_name=record.local_name,
        shape=tuple(shape),
        dtype=record.dtype,
        scheme=scheme.name,
        args=tuple(args.items()),
        rule_index=index,
        seed=param_seed(plan_seed, record.name),
        blocks=blocks,
        scale=rule.scale,
        padding_idx=padding_idx,
        forget_block=forget_block,
        fan_in=used[0],
        fan_out=used[1],
        expected=expected,
        from_default=from_default,
        torch_fan_in=None if fan is None else fan[0],
        torch_fan_out=None if fan is None else fan[1],
        fan_source=used[2],
        fan_view=view,
        fan_fill=fill,
        expressions=expressions,
    )


def _materialized_shape(record: ParamRecord, label: str) -> tuple[int, ...]:
    if record.shape is None:
        detail = (
            f"{record.name} is uninitialized (lazy module); run a forward pass "
            "first or give --input-shape so its shape is known"
        )
        raise StepRefused(label, detail, detail)
    return tuple(record.shape)


def _concrete_row(
    rule: Rule, module: nn.Module, local: str, label: str
) -> tuple[Scheme, dict[str, object]] | None:
    """The rule's row and validated arguments for this parameter (``default`` resolved),
    or None when ``default`` knows no default for it."""
    try:
        return get_scheme(rule.scheme).resolve(module, local, rule.args)
    except SchemeError as exc:
        raise StepRefused(label, str(exc), str(exc)) from None


def _gate_blocks(
    rule: Rule, module: nn.Module, local: str, record: ParamRecord, label: str
) -> tuple[tuple[int, int], ...] | None:
    """``per_gate``: the row ranges of the gate blocks along dim 0."""
    if not rule.per_gate:
        return None
    gates = gate_count(module, local)
    if gates is None:
        detail = (
            f"per_gate applies to RNN/LSTM/GRU weight_ih/weight_hh/bias "
            f"parameters, not {record.name} ({type(module).__name__})"
        )
        raise StepRefused(label, detail, detail)
    assert record.shape is not None
    size = record.shape[0] // gates
    return tuple((g * size, (g + 1) * size) for g in range(gates))


def _forget_block(
    rule: Rule,
    module: nn.Module,
    local: str,
    shape: tuple[int, ...],
    record: ParamRecord,
    label: str,
) -> tuple[int, int, float] | None:
    """``forget_bias``: the forget gate's rows (H..2H) and the value they get."""
    if rule.forget_bias is None:
        return None
    if not isinstance(module, (nn.LSTM, nn.LSTMCell)) or not local.startswith(
        ("bias_ih", "bias_hh")
    ):
        detail = (
            f"forget_bias applies to LSTM/LSTMCell bias_ih/bias_hh parameters, "
            f"not {record.name} ({type(module).__name__}); GRU has no forget gate"
        )
        raise StepRefused(label, detail, detail)
    hidden = shape[0] // 4
    value = rule.forget_bias if local.startswith("bias_ih") else 0.0
    return (hidden, 2 * hidden, value)


def _padding_idx(model: nn.Module, via: str, record: ParamRecord) -> int | None:
    """The Embedding padding row to zero again (a tied tensor keeps its padding row)."""
    for name in (via, record.name, *record.aliases):
        owner_path, _, owner_local = name.rpartition(".")
        owner = model.get_submodule(owner_path)
        if isinstance(owner, (nn.Embedding, nn.EmbeddingBag)) and owner_local == "weight":
            padding_idx = getattr(owner, "padding_idx", None)
            if padding_idx is not None:
                return padding_idx
    return None


def _check_dtype(
    scheme: Scheme,
    args: Mapping[str, object],
    block_shape: tuple[int, ...],
    record: ParamRecord,
    rule: Rule,
    label: str,
) -> None:
    """The tensor's dtype can hold what the row (and the forget bias) puts in it."""
    problem = scheme.dtype_problem(args, record.dtype, record.name)
    if problem is None:
        extra = []
        if rule.forget_bias is not None:
            extra.append((f"forget_bias={rule.forget_bias!r}", rule.forget_bias, rule.forget_bias))
        problem = scheme.fit_problem(block_shape, args, record.dtype, extra)
    if problem:
        raise StepRefused(label, f"cannot apply to {record.name}: {problem}", problem)


def _check_finite(
    scheme: Scheme, args: Mapping[str, object], expected: Expected, rule: Rule,
    record: ParamRecord, label: str,
) -> None:  # fmt: skip
    """Every value the step writes (the scheme's, then times ``scale``) is finite in the
    tensor's floating dtype: ``std = 1e300`` or ``scale = 1e300`` would fill it with inf."""
    problem = overflow_problem(scheme.name, expected, args, rule.scale, record.dtype)
    if problem is not None:
        detail = f"cannot apply to {record.name}: {problem}; use smaller values"
        raise StepRefused(label, detail, problem)


def _used_fans(
    record: ParamRecord,
    fan: tuple[int, int] | None,
    blocks: tuple[tuple[int, int], ...] | None,
    from_default: bool,
) -> tuple[int | float | None, int | float | None, str | None]:
    """The fans a step's scheme uses, and their source: the record's (computed) fans;
    torch's for a gate block, and for ``default``, which reproduces PyTorch's
    ``reset_parameters`` (it computes torch's layout fans)."""
    if fan is None:
        return None, None, None
    if blocks or from_default or record.fan_in is None:
        return fan[0], fan[1], "torch"
    return record.fan_in, record.fan_out, record.fan_source


def fan_expected(
    scheme: Scheme,
    args: Mapping[str, object],
    block_shape: tuple[int, ...],
    fan: tuple[int, int] | None,
    used: tuple[int | float | None, int | float | None],
) -> tuple[Expected, tuple[int, ...] | None, tuple[str, float] | None]:
    """The scheme's statistics with the fans it uses, and how the code draws them.

    Where the fans differ from torch's layout rule (and change the scheme's values), the
    draw goes through torch's own function on a permuted view of the tensor whose layout
    gives torch those fans (``p.t()`` for a weight stored (in, out)); when no view does (a
    transposed conv with stride, a grouped conv's fan_out), through
    ``torch.nn.init.normal_``/``uniform_`` with the computed std or bound."""
    plain = scheme.expected(block_shape, args)
    if not scheme.fan_based or fan is None or used == fan or math.prod(block_shape) == 0:
        return plain, None, None
    values = {**scheme.validate(args), "_fans": used}
    expected = scheme.stats(block_shape, values)  # type: ignore[misc]
    if (expected.std, expected.bound) == (plain.std, plain.bound):
        return plain, None, None
    fan_in, fan_out = used
    both = (
        f"fans from the computation: fan_in {fan_in}, fan_out {fan_out} "
        f"(torch's layout rule: {fan[0]}, {fan[1]})"
    )
    if scheme.fans_in_call:  # the statement passes the fans itself
        return replace(expected, formula=f"{expected.formula}; {both}"), None, None
    order = permutation_for(block_shape, fan_in, fan_out)  # type: ignore[arg-type]
    if order is not None:
        text = f"{expected.formula}; {both}: drawn on the view {view_expression(order)}"
        return replace(expected, formula=text), order, None
    if expected.bound is not None:
        fill = ("uniform", float(expected.bound))
        how = f"torch.nn.init.uniform_(-bound, bound) with bound = {fmt_num(fill[1])}"
    else:
        fill = ("normal", float(expected.std or 0.0))
        how = f"torch.nn.init.normal_(0, std) with std = {fmt_num(fill[1])}"
    text = (
        f"{expected.formula}; {both}: no view of the tensor gives torch's {scheme.function} "
        f"these fans, so the values are drawn with {how}"
    )
    return replace(expected, formula=text), None, fill


def view_expression(order: Sequence[int]) -> str:
    """``p.t()`` for a swapped matrix, else ``p.permute(1, 0, 2)``."""
    if tuple(order) == (1, 0):
        return "p.t()"
    return f"p.permute({', '.join(map(str, order))})"


def step_expected(
    expected: Expected,
    shape: tuple[int, ...],
    scale: float | None,
    forget_block: tuple[int, int, float] | None,
    padding_idx: int | None = None,
) -> Expected:
    """The statistics of the whole tensor once the step ran: the scheme's for one block
    (every gate block alike), times ``scale``, then with the forget rows set and the
    Embedding's padding row zeroed (the std is over the whole tensor, zero row included)."""
    expected = scaled(expected, scale)
    if forget_block is not None:
        start, stop, value = forget_block
        expected = with_rows_filled(expected, shape[0], start, stop, value)
    if padding_idx is not None and shape and shape[0] > 0:
        expected = with_padding_row(expected, shape[0], padding_idx % shape[0])
    return expected


def with_padding_row(expected: Expected, rows: int, index: int) -> Expected:
    """The whole tensor's statistics once row ``index`` of ``rows`` is set back to 0."""
    filled = with_rows_filled(expected, rows, index, index + 1, 0.0)
    text = f"{expected.formula}; padding row {index} set back to 0"
    if expected.mean is not None and expected.std is not None:
        text += (
            f": over the whole tensor (zero row included, f = 1/{rows}) mean = (1 - f) * "
            f"{fmt_num(expected.mean)} = {fmt_num(filled.mean)}, std = sqrt((1 - f) * "
            f"(std^2 + mean^2) - mean'^2) = {fmt_num(filled.std)}"
        )
    return replace(filled, formula=text)
