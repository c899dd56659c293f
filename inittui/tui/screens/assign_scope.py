"""What the assign dialog starts from, without widgets: the scopes a node offers and the
selector each writes, the rule that decides the node now (its prefill), editing a rule in
place, and the text of the values a rule's expressions and splits take per parameter."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rich.text import Text

from inittui.core.plan import Plan, Rule, RuleVerdict
from inittui.tui.session import Session, rules_set_on, subtree_select

# this node, its subtree, every module of its type, its type inside its subtree, and the
# select of the rule the dialog was prefilled from (or edits) as written
SCOPES = ("node", "subtree", "type", "type-subtree", "rule")


def scope_select(scope: str, path: str, module_type: str, rule_select: str | None) -> str:
    """The selector a scope writes for the node at ``path`` of class ``module_type``."""
    if scope == "type":
        return f"type:{module_type}"
    if scope == "type-subtree":
        return f"type:{module_type}@{subtree_select(path)}"
    if scope == "subtree":
        return subtree_select(path)
    if scope == "rule" and rule_select is not None:
        return rule_select
    return path


def scope_of(select: str, path: str, module_type: str) -> str:
    """The scope whose selector is ``select`` on this node; ``"rule"`` when none is."""
    for scope in SCOPES[:4]:
        if scope_select(scope, path, module_type, None) == select:
            return scope
    return "rule"


@dataclass(frozen=True)
class Prefill:
    """What the dialog's fields start as."""

    scope: str
    scheme: str | None = None  # None: the first row
    args: dict[str, object] = field(default_factory=dict)
    params: str = "*"
    per_gate: bool = False
    split: int | tuple[int, ...] | None = None
    forget_bias: float | str | None = None
    scale: float | str | None = None
    rule_index: int | None = None  # the rule it comes from
    rule_select: str | None = None  # that rule's select (the "rule" scope)
    edit: bool = False  # confirming replaces rule ``rule_index``


def deciding_rule(session: Session, path: str) -> int | None:
    """The rule that decides the node now: the one deciding its first parameter (or the
    first tied tensor it holds), else the last rule set on the node itself."""
    index = session.index
    canonical = index.resolve_path(path)
    names = [p.name for p in index.own_params(canonical)]
    names += [p.name for _, p in index.tied_here(canonical)]
    decided_by = session.resolved.decided_by
    for name in names:
        if name in decided_by:
            return decided_by[name]
    existing = rules_set_on(session.plan, path)
    return existing[-1] if existing else None


def prefill_for(
    session: Session, path: str, module_type: str, has_params: bool, edit: tuple[int, Rule] | None
) -> Prefill:
    """The dialog's start on ``path``: the rule ``edit`` names (to replace it), else the
    rule deciding the node now (its scope where the node offers it), else empty."""
    if edit is not None:
        rule_index, rule = edit
        found = scope_of(rule.select, path, module_type)
        return _from_rule(rule, rule_index, found, edit=True)
    rule_index = deciding_rule(session, path)
    if rule_index is None:
        return Prefill("node" if has_params else "subtree")
    rule = session.plan.rules[rule_index]
    found = scope_of(rule.select, path, module_type)
    if found == "rule":  # an ancestor's or a glob's rule: offered, not the default
        found = "node" if has_params else "subtree"
    return _from_rule(rule, rule_index, found, edit=False)


def _from_rule(rule: Rule, rule_index: int, scope: str, edit: bool) -> Prefill:
    return Prefill(
        scope=scope,
        scheme=rule.scheme,
        args=dict(rule.args),
        params=rule.params,
        per_gate=rule.per_gate,
        split=rule.split,
        forget_bias=rule.forget_bias,
        scale=rule.scale,
        rule_index=rule_index,
        rule_select=rule.select,
        edit=edit,
    )


def replaced(plan: Plan, index: int, rule: Rule) -> Plan:
    """``plan`` with rule ``index`` replaced by ``rule`` (edited in place, order kept)."""
    rules = list(plan.rules)
    rules[index] = rule
    return replace(plan, rules=tuple(rules))


# -- split field ----------------------------------------------------------------------------


def split_text(split: int | tuple[int, ...] | None) -> str:
    if split is None:
        return ""
    return str(split) if isinstance(split, int) else ", ".join(map(str, split))


def parse_split(text: str) -> int | tuple[int, ...] | str | None:
    """``3`` -> 3, ``512, 128, 128`` (or ``[512, 128, 128]``) -> a tuple; anything else
    stays text (the core's ``check_split`` says what is wrong with it)."""
    text = text.strip().strip("[]").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        return text
    return numbers[0] if len(numbers) == 1 and "," not in text else tuple(numbers)


# -- values per parameter -----------------------------------------------------------------


def _members_text(members: list[str], limit: int = 2) -> str:
    shown = ", ".join(members[:limit])
    return shown + (f" +{len(members) - limit}" if len(members) > limit else "")


def values_text(verdict: RuleVerdict, limit: int = 3) -> Text:
    """The values the rule's expressions take and its splits, per parameter:
    ``std = 0.004082 on h.0.mlp.c_proj.weight +11`` (one line per distinct value)."""
    values: dict[tuple[str, str, float], list[str]] = {}
    splits: dict[int, list[str]] = {}
    for param_verdict in verdict.params:
        step = param_verdict.step
        if step is None:
            continue
        for key, _text, value in step.expressions:
            values.setdefault((key, _text, value), []).extend(param_verdict.members)
        if step.blocks:
            splits.setdefault(len(step.blocks), []).extend(param_verdict.members)
    out = Text()
    lines = [
        f"{key} = {value:.4g} on {_members_text(members)}"
        for (key, _text, value), members in values.items()
    ]
    lines += [f"{n} blocks on {_members_text(members)}" for n, members in splits.items()]
    for line in lines[:limit]:
        out.append("\n" + line, style="cyan")
    if len(lines) > limit:
        out.append(f" (+{len(lines) - limit} more)", style="cyan")
    return out
