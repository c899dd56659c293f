"""Resolution: rules -> one :class:`InitStep` per decided parameter (the IR that apply and
codegen consume), in a frozen :class:`ResolvedPlan`.

:func:`make_step` is the one per-parameter step builder: :func:`resolve_plan` calls it for
every decided parameter, and :func:`inittui.core.plan.judge.judge_rule` (the assign
dialog's verdict) calls it on a node's own parameters, so both say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.limits import seed_too_large
from inittui.core.plan.draw import fan_expected, step_expected
from inittui.core.plan.draw import view_expression as view_expression  # re-exported
from inittui.core.plan.draw import with_padding_row as with_padding_row  # re-exported
from inittui.core.plan.expr_context import ExprSite, concrete_rule
from inittui.core.plan.lints import Lint, plan_lints
from inittui.core.plan.model import Plan, Rule, check_rule_numbers, rule_label
from inittui.core.plan.select import RuleIndex, module_matches, name_glob
from inittui.core.plan.split import BlockDraw, Split, block_draws, block_shape, pooled, split_of
from inittui.core.prelude import _param_seed
from inittui.core.schemes import Expected, Scheme, SchemeError, fans, get_scheme
from inittui.core.schemes.row import overflow_problem
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
    blocks: tuple[tuple[int, int], ...] | None = None  # split: ranges along block_dim
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
    # A split (``split``, or ``per_gate``: ``gates``): each block's fans, statistics and
    # draw (the step's fan_in/fan_out/torch fans are the first block's; expected pooled).
    block_dim: int = 0
    gates: bool = False
    block_draws: tuple[BlockDraw, ...] | None = None
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
        return tuple(stop - start if d == self.block_dim else n for d, n in enumerate(self.shape))


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
    (:func:`~inittui.core.plan.expr_context.constructor_arguments`); by default the tree's
    (:func:`~inittui.core.fans.traced_tree` keeps them)."""
    plan_seed = plan.seed if seed is None else seed
    if constructor_args is None:
        constructor_args = tree.constructor_args
    if isinstance(plan_seed, int) and seed_too_large(plan_seed) is not None:
        raise InittuiError(f"plan: seed {seed_too_large(plan_seed)}; write e.g. seed = 0")
    module_paths = module_paths_of(model)
    modules = modules_by_path(model)
    check_rule_numbers(plan)
    rule_index = RuleIndex(plan.rules)
    lints: list[Lint] = []
    steps: list[InitStep] = []
    decided: dict[str, int] = {}
    selecting: set[int] = set()  # rules that select some parameter (for rule_unused)
    for record in tree.parameters:
        sites = name_sites(record, model, module_paths, modules)
        selected = selecting_rules(sites, rule_index)  # rule index -> the names it selects
        if not selected:
            continue
        selecting.update(selected)
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
    lints.extend(plan_lints(steps, tree, model, decided, plan, selecting))
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
    split = _split(rule, module, local, record, shape, label)
    shapes = [shape] if split is None else [block_shape(shape, split, n) for n in split.sizes]
    for part in dict.fromkeys(shapes):  # each block's shape
        _check_applies(scheme, args, part, record, label)
    forget_block = _forget_block(rule, module, local, shape, record, label)
    padding_idx = _padding_idx(model, via, record)
    for part in dict.fromkeys(shapes):
        _check_dtype(scheme, args, part, record, rule, label)
    fan = fans(shapes[0])
    from_default = get_scheme(rule.scheme).per_module
    if split is None:
        used = _used_fans(record, fan, None, from_default)
        expected, view, fill = fan_expected(scheme, args, shape, fan, used[:2])
        draws = None
    else:
        used, expected, draws = _split_draws(scheme, args, record, split, from_default)
        view = fill = None
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
        blocks=None if split is None else split.ranges,
        block_dim=0 if split is None else split.dim,
        gates=split is not None and split.gates,
        block_draws=draws,
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


def _check_applies(
    scheme: Scheme,
    args: Mapping[str, object],
    shape: tuple[int, ...],
    record: ParamRecord,
    label: str,
) -> None:
    reason = scheme.applicability(shape, args, name=record.name)
    if reason:
        raise StepRefused(
            label,
            f"cannot apply to {record.name}: {reason}; narrow the rule's select/params "
            "or pick another scheme",
            reason,
        )


def _split_draws(
    scheme: Scheme,
    args: Mapping[str, object],
    record: ParamRecord,
    split: Split,
    from_default: bool,
) -> tuple[tuple, Expected, tuple[BlockDraw, ...]]:
    """A split step's fans (the first block's, and their source), the whole tensor's
    statistics pooled over the blocks, and each block's draw."""
    assert record.shape is not None
    draws = block_draws(scheme, args, record, tuple(record.shape), split, from_default)
    if draws[0].torch_fan_in is None:
        used: tuple = (None, None, None)
    else:
        torch_rule = split.gates or from_default or record.fan_in is None
        source = "torch" if torch_rule else record.fan_source
        used = (draws[0].fan_in, draws[0].fan_out, source)
    return used, pooled(draws, split), draws


def _split(
    rule: Rule,
    module: nn.Module,
    local: str,
    record: ParamRecord,
    shape: tuple[int, ...],
    label: str,
) -> Split | None:
    """``split`` / ``per_gate``: the blocks along the effective output dim."""
    found = split_of(rule, module, local, record.name, shape, (record.fan_in, record.fan_out))
    if isinstance(found, str):
        raise StepRefused(label, found, found)
    return found


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
