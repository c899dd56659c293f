"""Plan lints: what a resolved plan probably does not mean (absolute trunc_normal bounds,
fused gate matrices, misleading fans, tied conflicts, uncovered parameters, NaN/Inf).
The scheme-specific ones come from the scheme's row (:meth:`Scheme.rule_lints`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from inittui.core.plan.model import Plan, rule_label
from inittui.core.plan.select import gate_count
from inittui.core.schemes import get_scheme
from inittui.core.tree import ModelTree

if TYPE_CHECKING:
    from inittui.core.plan.resolve import InitStep


@dataclass(frozen=True)
class Lint:
    kind: str  # padding_row, trunc_normal_bounds, fused_recurrent, fan_layout,
    # tied_conflict, nonfinite, uncovered, no_default, fused_no_split, rule_unused
    param: str | None
    message: str
    severity: str = "warning"  # "warning" or "info"


def plan_lints(
    steps: Sequence[InitStep],
    tree: ModelTree,
    model: nn.Module,
    decided: dict[str, int],
    plan: Plan,
    selecting: set[int] | None = None,
) -> list[Lint]:
    """The plan's lints; ``selecting`` holds the rules that select some parameter (the
    others are reported as selecting none, the rest of the unused ones as overridden)."""
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
        for kind, message in get_scheme(step.scheme).rule_lints(args):
            lints.append(Lint(kind, step.param, f"{rule}: {message}"))
        fused = (
            not step.blocks
            and step.local_name.startswith(("weight_ih", "weight_hh"))
            and get_scheme(step.scheme).whole_matrix
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
        fused_split = fused_no_split(step, model, rule)
        if fused_split is not None:
            lints.append(fused_split)
        fan_lint = _fan_lint(step, tree, rule)
        if fan_lint is not None:
            lints.append(fan_lint)
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
    lints.extend(unused_rule_lints(plan, decided, selecting, tree))
    return lints


def rule_counts(decided: Mapping[str, int], rules: int) -> list[int]:
    """How many parameters each of ``rules`` rules decides (``keep`` included)."""
    counts = [0] * rules
    for index in decided.values():
        if 0 <= index < rules:
            counts[index] += 1
    return counts


def exact_select(select: str) -> bool:
    """A selector naming one module path (no ``type:``, no glob characters)."""
    return not select.startswith("type:") and not any(c in select for c in "*?[")


def unused_rule_lints(
    plan: Plan,
    decided: Mapping[str, int],
    selecting: set[int] | None = None,
    tree: ModelTree | None = None,
) -> list[Lint]:
    """``rule_unused``: a rule that decides no parameter. A warning when its exact path
    names no module of the model (a typo, or a plan written for another model); a note
    otherwise: a type, glob or params glob that found nothing here (a preset written for
    a family of models: no ``bias``, no ``reg_token``) or a rule later rules override."""
    paths: set[str] = set()
    for module in tree.modules if tree is not None else ():
        paths.update((module.path, *module.aliases))
    lints = []
    for index, count in enumerate(rule_counts(decided, len(plan.rules))):
        if count:
            continue
        rule = plan.rules[index]
        severity = "info"
        if selecting is not None and index in selecting:
            why = "later rules decide every parameter it selects"
        elif exact_select(rule.select) and tree is not None and rule.select not in paths:
            why, severity = f"no module has the path {rule.select!r}", "warning"
        else:
            why = "it selects none" + (f" (params {rule.params!r})" if rule.params != "*" else "")
        message = f"{rule_label(index, rule)} decides no parameter of this model: {why}"
        lints.append(Lint("rule_unused", None, message, severity=severity))
    return lints


FUSED_NAMES = ("qkv", "w13", "gate_up", "w12")  # fused projections by name


def fused_blocks(step: InitStep, model: nn.Module) -> int | None:
    """How many matrices a known fused tensor holds (MultiheadAttention's in_proj_weight,
    GPT-2's c_attn: 3; a fused SwiGLU w13/gate_up: 2), 0 for a fused name of unknown
    count, None for any other tensor."""
    if len(step.shape) < 2:
        return None
    module = model.get_submodule(step.module)
    if isinstance(module, nn.MultiheadAttention) and step.local_name == "in_proj_weight":
        return 3
    if step.module.rpartition(".")[2] == "c_attn" and type(module).__name__ == "Conv1D":
        return 3
    names = f"{step.module.rpartition('.')[2]}.{step.local_name}".lower()
    for fused in FUSED_NAMES:
        if fused in names:
            return 3 if fused == "qkv" else 2
    return None


def fused_no_split(step: InitStep, model: nn.Module, rule: str) -> Lint | None:
    """``fused_no_split``: a fan-based or orthogonal scheme on a fused tensor as one."""
    row = get_scheme(step.scheme)
    if step.blocks or step.from_default or not (row.fan_based or row.whole_matrix):
        return None
    count = fused_blocks(step, model)
    if count is None:
        return None
    return Lint(
        "fused_no_split",
        step.param,
        f"{rule}: {step.scheme} on {step.param} treats the fused {step.shape[0]}x"
        f"{step.shape[1]} tensor ({count} matrices stacked) as one; add split = {count} "
        "(or split = [sizes]) to init each block on its own",
    )


def _fan_lint(step: InitStep, tree: ModelTree, rule: str) -> Lint | None:
    """``fan_layout``: a fan-based step that draws with torch's layout fans where the
    computation's differ (``default`` reproduces PyTorch's ``reset_parameters``), or whose
    fans no forward verified. Following the advice removes the lint: every other fan-based
    scheme draws with the computed fans."""
    record = tree.param(step.param)
    if not get_scheme(step.scheme).fan_based or not record.fan_note or step.blocks:
        return None
    if record.fan_note.startswith("unverified"):
        return Lint("fan_layout", step.param, f"{rule}: {step.param}: {record.fan_note}", "info")
    if step.fan_source != "torch" or record.fan_in == step.fan_in:
        return None
    expected = step.expected
    if expected is None or expected.std is None or record.fan_in is None:
        return None
    ratio = expected.std * float(record.fan_in) ** 0.5
    return Lint(
        "fan_layout",
        step.param,
        f"{rule}: {step.param}: {step.scheme} (PyTorch's default) uses torch's layout fans "
        f"(fan_in {step.torch_fan_in}, fan_out {step.torch_fan_out}), but {record.fan_note}; "
        f"with {record.fan_in} inputs per output its output std is {ratio:.3g} x the input's. "
        f"For He's forward variance (output std sqrt(2) x the input's) use scheme = "
        f'"kaiming_normal" with nonlinearity = "relu": it draws with the computed fans',
    )


def nonfinite_lints(stats: Mapping[str, object]) -> list[Lint]:
    """Lints for parameters holding NaN/Inf (from :func:`inittui.core.stats.compute_stats`)."""
    lints = []
    for name, item in stats.items():
        if item is not None and (getattr(item, "nan", 0) or getattr(item, "inf", 0)):
            lints.append(
                Lint("nonfinite", name, f"{name} holds {item.nan} NaN and {item.inf} Inf values")
            )
    return lints
