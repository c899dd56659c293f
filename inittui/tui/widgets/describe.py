"""What the widgets print: tree labels, the detail of a node, the header line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import events
from textual.widgets import Static

from inittui.core.errors import InittuiError
from inittui.core.formatting import fit_middle
from inittui.core.formatting import shape as shape_text
from inittui.core.plan import InitStep, ParamVerdict, Rule
from inittui.core.provenance import call_text, last_call
from inittui.core.schemes import get_scheme
from inittui.core.tree import ModuleRecord, ParamRecord
from inittui.tui.session import Session, node_assignments, node_name, rule_origin
from inittui.tui.widgets.text import count, num, sparkline

FLAG_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "cyan"}
FLAG_MARK = {"error": "!", "warning": "!", "info": "i"}
LEVELS = ("error", "warning", "info")
ORIGIN_MARK = {"": "", "type": "·type", "tree": "·tree"}


class DetailView(Static):
    """The detail pane's text. Its histograms and lines are fitted to a width, so a change
    of width calls ``refit`` (the app's re-render) instead of letting them wrap."""

    def __init__(self, content: str = "", *, id: str | None = None) -> None:
        super().__init__(content, id=id)
        self.refit: Callable[[], None] | None = None
        self._width = 0

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            if self.refit is not None:
                self.refit()


def worst(levels: list[str]) -> str:
    for level in LEVELS:
        if level in levels:
            return level
    return "info"


def node_label(session: Session, path: str, expanded: bool) -> Text:
    """``0 Linear kaiming_normal·type``: name, class and the scheme that decides its
    parameters (``·type``/``·tree`` when it comes from a type rule or an ancestor's subtree
    rule, nothing when set on the node; ``+N`` more schemes). The tree draws the parameter
    count in a column of its own (``ModuleNode.label`` appends it)."""
    index = session.index
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(node_name(path, session.model_class), style="bold")
    canonical = index.resolve_path(path)
    record = index.modules.get(canonical)
    if record is None:
        return text
    if canonical != path:
        text.append(f" = {canonical or '(root)'} (shared)", style="dim")
        return text
    if path:
        text.append(f" {record.type}", style="cyan")
    assignments = node_assignments(index, session.resolved, path)
    if assignments:
        # The scheme deciding the most values; "+N" other schemes (see the detail).
        main = max(assignments, key=lambda a: (a.numel, -a.rule_index))
        text.append(" ")
        text.append(main.scheme, style="bold green" if main.origin == "" else "green")
        if len(assignments) > 1:
            text.append(f"+{len(assignments) - 1}", style="green")
        if main.origin:
            text.append(ORIGIN_MARK[main.origin], style="dim")
    return text


def node_marker(session: Session, path: str, expanded: bool) -> Text:
    """`` !`` (red: NaN/Inf, exploding; yellow: vanishing, lint warnings), `` i`` (info:
    padding row, notes) or `` •`` on a collapsed node with a flag below it."""
    flags = session.flags.get(session.index.resolve_path(path))
    if flags:
        level = worst([f.level for f in flags])
        return Text(f" {FLAG_MARK[level]}", style=FLAG_STYLE[level])
    if not expanded and path in session.flagged_below:
        return Text(" •", style="yellow")
    return Text()


def header_text(
    session: Session | None,
    target: str,
    plan_path: str | None,
    dirty: bool,
    device: str,
    width: int = 0,
) -> Text:
    """``target · Class · 33.9K params · cpu · plan: init_plan.toml [+] (2 rules)``; with a
    ``width``, the target is shortened from the left to keep the rest visible."""
    rest = Text(no_wrap=True)
    if session is not None:
        if not target.endswith(f":{session.model_class}"):
            rest.append(f" · {session.model_class}", style="cyan")
        rest.append(f" · {count(session.tree.total_params)} params")
    rest.append(f" · {device}", style="magenta")
    rules = 0 if session is None else len(session.plan.rules)
    rest.append(" · plan: ")
    rest.append(Path(plan_path).name if plan_path else "new", style="bold")
    if dirty:
        rest.append(" [+]", style="bold yellow")
    elif plan_path:
        rest.append(" saved", style="green")
    rest.append(f" ({rules} rule{'s' if rules != 1 else ''})", style="dim")
    shown = target
    room = width - rest.cell_len - 1
    if width and len(shown) > room:
        shown = "…" + shown[-max(room - 1, 8) :]
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f" {shown}", style="bold")
    text.append_text(rest)
    return text


def _stats_lines(label: str, stats: object, style: str, width: int = 40) -> Text:
    """`` now  std 0.0718  mean -0.0012`` then ``      [-0.125, 0.125] ▆█▇▇█▇``."""
    line = Text()
    line.append(f" {label:<5}", style=style)
    line.append(f"std {num(stats.std)}", style="bold")  # type: ignore[attr-defined]
    line.append(f"  mean {num(stats.mean)}")  # type: ignore[attr-defined]
    if stats.nan or stats.inf:  # type: ignore[attr-defined]
        line.append(f"  {stats.nan} NaN {stats.inf} Inf", style="bold red")  # type: ignore
    line.append("\n      ")
    bounds = f"[{num(stats.min)}, {num(stats.max)}] "  # type: ignore[attr-defined]
    line.append(bounds, style="dim")
    room = max(8, min(32, width - 6 - len(bounds)))
    line.append(sparkline(stats.hist_counts, room), style=style)  # type: ignore[attr-defined]
    line.append("\n")
    return line


def scheme_extras(rule: Rule, with_params: bool = False) -> str:
    """``nonlinearity=relu, per gate``: a rule's non-default arguments and options."""
    try:
        defaults = get_scheme(rule.scheme).defaults()
    except InittuiError:
        defaults = {}
    parts = [f"{k}={v}" for k, v in rule.args.items() if defaults.get(k, None) != v]
    if with_params and rule.params != "*":
        parts.append(f"params {rule.params}")
    return ", ".join([*parts, *rule.options()])


def detail_text(session: Session, path: str, width: int = 40) -> Text:
    """The selected node: its parameters with shape, fans, statistics and histogram, the
    expected std under the assigned scheme beside the measured one, and its lints."""
    index = session.index
    canonical = index.resolve_path(path)
    record = index.modules.get(canonical)
    out = Text()
    if record is None:
        return out
    out.append_text(_node_header(session, path, canonical, record, width))
    for param in index.own_params(canonical):
        out.append_text(_param_text(session, param, canonical, width))
    out.append_text(tied_text(session, canonical))
    out.append_text(_preview_text(session, canonical))
    for flag in session.flags.get(canonical, []):
        out.append(f"{FLAG_MARK[flag.level]} ", style=FLAG_STYLE[flag.level])
        out.append(f"{flag.text}\n")
    out.rstrip()
    return out


def _node_header(
    session: Session, path: str, canonical: str, record: ModuleRecord, width: int = 40
) -> Text:
    """The node's name, type and size (the name shortened in the middle to keep the line
    within ``width``); the rules set on it (or, at the root, the plan)."""
    index = session.index
    out = Text()
    size = f"  {record.num_params:,} params"
    room = max(8, width - len(record.type) - 2 - len(size))
    out.append(fit_middle(path or "(root)", room), style="bold")
    out.append(f"  {record.type}", style="cyan")
    out.append(f"{size}\n", style="dim")
    if canonical != path:
        out.append(f"shared module, first seen at {canonical or '(root)'}\n", style="dim")
    rules = session.plan.rules
    own = index.own_params(canonical)
    if not own:
        for assignment in node_assignments(index, session.resolved, canonical):
            out.append(f"rule {assignment.rule_index + 1} set here: ", style="green")
            out.append(f"{rules[assignment.rule_index].describe()}\n")
    if not canonical and rules:
        out.append(f"plan: {len(rules)} rule(s), seed {session.plan.seed}\n", style="bold")
        for i, rule in enumerate(rules):
            out.append(f" {i + 1}. {rule.describe()}\n")
    if not own and not index.tied_here(canonical):
        below = index.subtree_params(canonical) if record.num_params else []
        if below:
            out.append(f"no parameters of its own; {len(below)} tensors below\n", style="dim")
        else:
            out.append("no parameters\n", style="dim")
    return out


def tied_text(session: Session, canonical: str) -> Text:
    """The tensors the node holds under a second name (a head tied to an embedding):
    ``weight: tied to transformer.wte.weight (decided there: rule 2 normal)``."""
    out = Text()
    decided_by = session.resolved.decided_by
    for local, param in session.index.tied_here(canonical):
        out.append(f"{local}", style="bold")
        out.append(f": tied to {param.name} ")
        rule_index = decided_by.get(param.name)
        if rule_index is None:
            out.append("(decided there; no rule yet)\n", style="dim")
        else:
            rule = session.plan.rules[rule_index]
            out.append(f"(decided there: rule {rule_index + 1} {rule.scheme})\n", style="dim")
    return out


def _param_text(session: Session, param: ParamRecord, canonical: str, width: int) -> Text:
    """One parameter: shape, fans, ties, notes, its statistics now, the rule deciding it,
    the expected statistics and the planned ones."""
    out = Text()
    out.append(f"{param.local_name}", style="bold")
    out.append(f" {shape_text(param.shape)}")
    if param.fan_in is not None:
        out.append(f"  fan_in {param.fan_in} fan_out {param.fan_out}", style="dim")
    out.append("\n")
    if param.aliases:
        out.append(f" tied to {', '.join(param.aliases)}\n", style="dim")
    if param.fan_note:
        out.append(f" note: {param.fan_note}\n", style="dim italic")
    out.append_text(_built_by(param))
    now = (session.stats or {}).get(param.name)
    if now is not None:
        out.append_text(_stats_lines("now", now, "blue", width))
    elif session.stats is None:
        out.append(" now   computing…\n", style="dim")
    else:
        out.append(" now   no data (meta or lazy)\n", style="dim")
    step = session.resolved.step_for(param.name)
    rule_index = session.resolved.decided_by.get(param.name)
    if rule_index is not None:
        out.append_text(_rule_line(session.plan.rules[rule_index], rule_index, canonical, width))
    if step is not None and step.expressions:
        out.append_text(expressions_text(step, width))
    if step is not None and step.expected is not None:
        out.append_text(_expected_text(step, width))
        after = (session.planned_stats or {}).get(param.name)
        if after is not None:
            out.append_text(_stats_lines("plan", after, "magenta", width))
        elif session.planned_stats is None and session.stats is not None:
            out.append(" plan  computing…\n", style="dim")
    elif rule_index is not None:
        out.append(" plan  keep (values unchanged)\n", style="dim")
    return out


def _built_by(param: ParamRecord) -> Text:
    """What the model's construction did: the last call that wrote it, and its flags."""
    out = Text()
    if not param.init_calls:
        if param.init_flags:
            out.append(f" built {' '.join(param.init_flags)}: never written\n", style="yellow")
        return out
    last = last_call([call.to_dict() for call in param.init_calls])
    assert last is not None
    more = len(param.init_calls) - 1
    out.append(f" built by {call_text(last)}", style="dim")
    out.append(f" ({more + 1} calls)\n" if more else "\n", style="dim")
    if param.init_flags:
        out.append(f" built {' '.join(param.init_flags)}: ", style="yellow")
        out.append("; ".join(call.short() for call in param.init_calls) + "\n", style="dim")
    return out


def _rule_line(rule: Rule, rule_index: int, canonical: str, width: int) -> Text:
    """``rule 2 from type:Linear → kaiming_normal nonlinearity=relu``."""
    wide = width >= 70
    origin = rule_origin(rule, canonical)
    if not origin:
        where = " set here"
    elif wide:
        where = f" from {rule.select or '(root)'}"
    else:
        where = ORIGIN_MARK[origin]
    out = Text()
    out.append(" rule ", style="green")
    out.append(f"{rule_index + 1}", style="bold green")
    out.append(where, style="dim")
    out.append(f" → {rule.scheme}", style="green")
    extra = scheme_extras(rule)
    if extra:
        out.append("\n      " if not wide else " ")
        out.append(extra, style="green")
    out.append("\n")
    return out


def expressions_text(step: InitStep, width: int) -> Text:
    """``expr std 0.007071 = 0.02 / sqrt(2 * config.n_layer)``: each of the rule's
    expressions with its value for this parameter (the resolver's, from the step); the
    value comes first, so a narrow pane cuts the text, never the number."""
    out = Text()
    for key, text, value in step.expressions:
        head = f"{key} {num(value)}"
        room = max(width - len(head) - 10, 8)
        shown = text if len(text) <= room else text[: room - 1] + "…"
        out.append(" expr ", style="green")
        out.append(head, style="bold")
        out.append(f" = {shown}\n")
    return out


def _expected_text(step: InitStep, width: int) -> Text:
    """The expected std and bound of a step (the resolver's, scale and gates included),
    with the formula when there is room."""
    expected = step.expected
    assert expected is not None
    out = Text()
    out.append(" exp  ", style="green")
    if expected.std is not None:
        out.append(f"std {num(expected.std)}", style="bold")
    if expected.bound is not None:
        out.append(f"  bound {num(expected.bound)}")
    if expected.std is None and expected.bound is None:
        out.append("unchanged" if step.scheme == "keep" else "-")
    if step.blocks:
        kind = "per gate" if step.gates else f"split dim {step.block_dim}"
        out.append(f"  {kind} ×{len(step.blocks)}", style="green")
    if step.from_default:
        out.append(f"  {step.scheme}", style="green")
    out.append("\n")
    if width >= 70 and expected.formula:
        formula = expected.formula
        if len(formula) > width - 7:
            formula = formula[: width - 8] + "…"
        out.append(f"      {formula}\n", style="dim")
    return out


def _preview_text(session: Session, canonical: str) -> Text:
    """The node's output (and gradient) std in the last preview, now and planned."""
    out = Text()
    row = session.preview_row(canonical)
    if row is None:
        return out
    out.append("output std ", style="bold")
    out.append(f"now {num(row.now_std)}", style="blue")
    if session.preview is not None and session.preview.planned:
        out.append(f" → plan {num(row.plan_std)}", style="magenta")
        if row.ratio is not None:
            out.append(f" (×{num(row.ratio)})")
    if row.now_grad is not None or row.plan_grad is not None:
        out.append(f"\ngrad std now {num(row.now_grad)} → plan {num(row.plan_grad)}")
    out.append("\n")
    return out


def expected_piece(verdict: ParamVerdict) -> tuple[str, str]:
    """``(" (128, 64): std 0.088 bound 0.153", "weight")``: one parameter's expected
    statistics as the step gives them, and its local name."""
    param, step = verdict.param, verdict.step
    local = param.local_name
    if step is None:
        if verdict.lint is not None:
            return ": no PyTorch default (left unchanged)", local
        return f" {shape_text(param.shape or ())}: unchanged", local
    expected = step.expected
    std = None if expected is None else expected.std
    if step.from_default:
        piece = f" {shape_text(step.shape)}: {step.scheme}"
        return piece + (f" std {num(std)}" if std is not None else ""), local
    blocks = f"{len(step.blocks)}×" if step.blocks else ""
    piece = f" {blocks}{shape_text(step.block_shape)}:"
    bound = None if expected is None else expected.bound
    if std is not None:
        piece += f" std {num(std)}"
    if bound is not None:
        piece += f" bound {num(bound)}"
    if std is None and bound is None:
        piece += " unchanged"
    return piece, local
