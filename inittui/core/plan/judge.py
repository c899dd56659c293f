"""The assign dialog's verdict, headless: :func:`judge_rule` runs the resolver's own step
builder (:func:`~inittui.core.plan.resolve.make_step`) on the parameters a rule reaches,
so what the dialog accepts export accepts, and the std it shows is the std the script's
values have (scale, bounds, per-gate blocks and the forget bias included).

A big subtree holds thousands of parameters that differ only in name: one representative
per distinct (shape, dtype, module type, parameter kind, and for ``default`` the concrete
row) is judged and stands for the others (:attr:`ParamVerdict.members`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.plan.expr import parse_expression
from inittui.core.plan.expr_context import block_position, expression_items
from inittui.core.plan.lints import Lint
from inittui.core.plan.model import Rule, check_extension, check_split_rule, rule_label
from inittui.core.plan.resolve import (
    InitStep,
    StepRefused,
    make_step,
    matching_names,
    module_paths_of,
    modules_by_path,
    name_sites,
)
from inittui.core.schemes import SchemeError, get_scheme
from inittui.core.tree import ModelTree, ParamRecord

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class ParamVerdict:
    """What the rule does to one representative parameter and the ones like it."""

    param: ParamRecord
    members: tuple[str, ...]  # the first names of the parameters it stands for
    step: InitStep | None  # None: ``keep``, or no PyTorch default (see ``lint``)
    lint: Lint | None = None


@dataclass(frozen=True)
class RuleVerdict:
    """Whether resolving the rule succeeds on these parameters, and if so what each gets."""

    ok: bool
    reason: str | None  # word for word what resolve_plan raises
    params: tuple[ParamVerdict, ...] = ()
    why: str | None = None  # the scheme's own reason, without the rule's label

    def step_for(self, name: str) -> InitStep | None:
        """The representative step of parameter ``name`` (its own expected statistics)."""
        for verdict in self.params:
            if name in verdict.members:
                return verdict.step
        return None


Group = tuple[ParamRecord, str, list[str]]  # representative, the name it is reached by, members


def judge_rule(
    rule: Rule,
    model: nn.Module,
    tree: ModelTree,
    params: Sequence[ParamRecord] | None = None,
    *,
    index: int = 0,
    seed: int = 0,
    groups: Sequence[Group] | None = None,
    constructor_args: Mapping[str, object] | None = None,
) -> RuleVerdict:
    """Resolve ``rule`` alone (as the plan's rule ``index``) on ``params`` (default: every
    parameter it selects in ``tree``) with the resolver's step builder; the first refusal
    is the verdict's reason, word for word what :func:`resolve_plan` raises. ``groups``
    (from :func:`group_params` for the same select, params and scheme row) skips the
    grouping: a dialog judges every scheme on one scope."""
    try:
        for key in ("forget_bias", "scale", "split"):
            if getattr(rule, key) is not None:
                check_extension(rule_label(index, rule), key, getattr(rule, key))
        check_split_rule(rule_label(index, rule), {"per_gate": rule.per_gate, "split": rule.split})
    except InittuiError as exc:
        return RuleVerdict(False, str(exc), why=str(exc))
    if groups is None:
        groups = group_params(rule, model, tree, params)
    if constructor_args is None:
        constructor_args = tree.constructor_args
    verdicts = []
    for record, via, members in groups:
        if rule.scheme == "keep":
            verdicts.append(ParamVerdict(record, tuple(members), None))
            continue
        try:
            made = make_step(
                record, rule, index, via, model, seed, constructor_args=constructor_args
            )
        except StepRefused as exc:
            return RuleVerdict(False, str(exc), why=exc.why)
        if isinstance(made, Lint):
            verdicts.append(ParamVerdict(record, tuple(members), None, made))
        else:
            verdicts.append(ParamVerdict(record, tuple(members), made))
    return RuleVerdict(True, None, tuple(verdicts))


def group_params(
    rule: Rule, model: nn.Module, tree: ModelTree, params: Sequence[ParamRecord] | None = None
) -> list[Group]:
    """The parameters ``rule`` reaches (or ``params``), grouped into those it treats alike
    (:func:`representatives`). Depends on the rule's select and params and on whether its
    scheme resolves per module (``default``), not on the scheme's arguments."""
    modules = modules_by_path(model)
    module_paths = module_paths_of(model) if params is None else None
    chosen = _selected(rule, model, tree, params, module_paths, modules)
    return representatives(rule, model, chosen, modules)


def grouping_key(rule: Rule) -> tuple:
    """Rules with equal keys get the same :func:`group_params` on the same parameters."""
    try:
        per_module = get_scheme(rule.scheme).per_module
    except SchemeError:
        per_module = False
    extra = (rule.scheme, tuple(sorted((k, repr(v)) for k, v in rule.args.items())))
    return (rule.select, rule.params, extra if per_module else None, _uses_block_names(rule))


def _selected(
    rule: Rule,
    model: nn.Module,
    tree: ModelTree,
    params: Sequence[ParamRecord] | None,
    module_paths: Mapping[int, list[str]] | None,
    modules: Mapping[str, nn.Module],
) -> list[tuple[ParamRecord, str]]:
    """``(record, via)``: each parameter and the name through which the rule reaches it."""
    out = []
    for record in tree.parameters if params is None else params:
        sites = name_sites(record, model, module_paths or {}, modules)
        names = matching_names(sites, rule)
        if names:
            out.append((record, names[0]))
        elif params is not None:  # the caller's coverage matched a path alias
            out.append((record, record.name))
    return out


def representatives(
    rule: Rule,
    model: nn.Module,
    chosen: Sequence[tuple[ParamRecord, str]],
    modules: Mapping[str, nn.Module] | None = None,
) -> list[Group]:
    """Group parameters the rule treats alike: ``(record, via, member names)`` per group,
    the first parameter of each group representing it."""
    try:
        per_module = get_scheme(rule.scheme).per_module
    except SchemeError:
        per_module = False
    groups: dict[tuple, Group] = {}
    resolved: dict[tuple, object] = {}
    by_block = _uses_block_names(rule)  # an expression with layer/depth: judge each block
    for record, via in chosen:
        module_path, _, local = via.rpartition(".")
        module = modules.get(module_path) if modules is not None else None
        if module is None:
            module = model.get_submodule(module_path)
        key: tuple = (
            None if record.shape is None else tuple(record.shape),
            record.dtype,
            type(module),
            _DIGITS.sub("#", local),
            getattr(module, "padding_idx", None) is not None,
            len(record.aliases),
        )
        if by_block:
            key += (block_position(model, module_path),)
        if per_module:
            # What ``default`` resolves to depends on the module's type and its own
            # parameters' shapes (a Linear bias's bound is 1/sqrt(fan_in)): resolved once
            # per such signature, not per parameter (a big model has thousands alike).
            signature = (
                type(module),
                local,
                tuple((n, p.shape) for n, p in module._parameters.items() if p is not None),
                getattr(module, "padding_idx", None),
            )
            if signature not in resolved:
                resolved[signature] = _default_key(rule, module, local)
            key += (resolved[signature],)
        group = groups.setdefault(key, (record, via, []))
        group[2].append(record.name)
    return list(groups.values())


def _uses_block_names(rule: Rule) -> bool:
    """Whether an expression of ``rule`` reads ``layer`` or ``depth`` (values that differ
    between parameters grouped alike otherwise)."""
    try:
        return any(
            {"layer", "depth"} & set(parse_expression(text).names)
            for _, text in expression_items(rule)
        )
    except InittuiError:
        return False  # a bad expression: judge_rule's own checks say why


def _default_key(rule: Rule, module: nn.Module, local: str) -> object:
    """What ``default`` resolves to for this parameter (its bound depends on the module)."""
    try:
        found = get_scheme(rule.scheme).resolve(module, local, rule.args)
    except (SchemeError, ValueError):
        return "error"
    return None if found is None else (found[0].name, tuple(found[1].items()))
