"""Plans: ordered rules -> resolved per-parameter init steps (the IR); TOML I/O; lints.

Modules: :mod:`.model` (:class:`Rule`, :class:`Plan`), :mod:`.toml` (plan files),
:mod:`.select` (selectors, matching, what a rule covers), :mod:`.resolve`
(:class:`InitStep`, :class:`ResolvedPlan`, :func:`resolve_plan` and its step builder),
:mod:`.judge` (:func:`judge_rule`, the assign dialog's verdict), :mod:`.lints`.
"""

from __future__ import annotations

from inittui.core.plan.judge import (
    Group,
    ParamVerdict,
    RuleVerdict,
    group_params,
    grouping_key,
    judge_rule,
)
from inittui.core.plan.lints import Lint, nonfinite_lints
from inittui.core.plan.model import CONTRACT_KEYS, EXTENSION_KEYS, PLAN_VERSION, Plan, Rule
from inittui.core.plan.resolve import InitStep, ResolvedPlan, make_step, param_seed, resolve_plan
from inittui.core.plan.select import (
    RECURRENT_GATES,
    covered_params,
    gate_count,
    gates_of,
    module_matches,
    scheme_shape,
    unique_shapes,
)
from inittui.core.plan.toml import (
    load_plan,
    parse_plan,
    plan_from_dict,
    plan_to_toml,
    rule_from_dict,
)

__all__ = [
    "CONTRACT_KEYS",
    "EXTENSION_KEYS",
    "PLAN_VERSION",
    "RECURRENT_GATES",
    "InitStep",
    "Lint",
    "ParamVerdict",
    "Plan",
    "ResolvedPlan",
    "Rule",
    "RuleVerdict",
    "covered_params",
    "gate_count",
    "gates_of",
    "judge_rule",
    "group_params",
    "grouping_key",
    "Group",
    "load_plan",
    "make_step",
    "module_matches",
    "nonfinite_lints",
    "param_seed",
    "parse_plan",
    "plan_from_dict",
    "plan_to_toml",
    "resolve_plan",
    "rule_from_dict",
    "scheme_shape",
    "unique_shapes",
]
