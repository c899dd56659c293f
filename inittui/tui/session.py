"""The app's model of a session, without widgets: indexes over the model tree, the plan
history, what each tree node shows (assigned scheme, flags) and the preview adapter.

Everything here calls :mod:`inittui.core`; nothing here touches a widget, so the workers
can run it in threads and the tests can call it directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from torch import nn

from inittui.core.loading import LoadedModel
from inittui.core.plan import (
    Group,
    Plan,
    ResolvedPlan,
    Rule,
    RuleVerdict,
    covered_params,
    gates_of,
    group_params,
    grouping_key,
    judge_rule,
    unique_shapes,
)
from inittui.core.plan.select import tied_names
from inittui.core.probe import Preview, PreviewRow, preview_rows
from inittui.core.probe import run_preview as core_run_preview
from inittui.core.tree import ModelTree, ModuleRecord, ParamRecord

# --------------------------------------------------------------------------- the tree


class ModelIndex:
    """Look-ups over a :class:`ModelTree` that the UI needs in O(1)."""

    def __init__(self, tree: ModelTree) -> None:
        self.tree = tree
        self.modules: dict[str, ModuleRecord] = {m.path: m for m in tree.modules}
        self.params: dict[str, ParamRecord] = {}
        for record in tree.parameters:
            self.params[record.name] = record
        for record in tree.parameters:
            for alias in record.aliases:
                self.params.setdefault(alias, record)
        # A module reachable under several paths appears once, under its first path.
        self.canonical: dict[str, str] = {}
        for module in tree.modules:
            for alias in module.aliases:
                self.canonical.setdefault(alias, module.path)
        # Answers that depend on the model's structure alone, kept for the session (the
        # assign dialog asks the same questions every time it opens on a big subtree).
        self.memo: dict[tuple, object] = {}
        self.order: dict[str, int] = {m.path: i for i, m in enumerate(tree.modules)}
        # What the filter searches, lower-cased once (typing searches on every key).
        self._haystack = [(m.path, m.path.lower(), m.type.lower()) for m in tree.modules if m.path]

    def covered(self, select: str, params_glob: str) -> Coverage:
        """What a rule ``select``/``params`` reaches (:func:`covered_params`), remembered."""
        key = ("covered", select, params_glob)
        if key not in self.memo:
            self.memo[key] = Coverage(
                self, tuple(covered_params(self, select, params_glob)), params_glob
            )
        return self.memo[key]  # type: ignore[return-value]

    def tied_here(self, path: str) -> list[tuple[str, ParamRecord]]:
        """``(local name, record)`` of the tied tensors the module at ``path`` holds under
        a second name (:func:`tied_names`: what a rule selecting it decides)."""
        return tied_names(self.tree).get(path, [])

    def child_paths(self, path: str) -> list[str]:
        record = self.modules.get(path)
        if record is None:
            return []
        return [f"{path}.{name}" if path else name for name in record.children]

    def resolve_path(self, path: str) -> str:
        """The first path of the module at ``path`` (shared modules have several)."""
        return path if path in self.modules else self.canonical.get(path, path)

    def own_params(self, path: str) -> list[ParamRecord]:
        record = self.modules.get(path)
        if record is None:
            return []
        return [self.params[name] for name in record.param_names if name in self.params]

    def subtree_params(self, path: str) -> list[ParamRecord]:
        prefix = f"{path}." if path else ""
        return [
            p
            for p in self.tree.parameters
            if not path or p.module == path or p.module.startswith(prefix)
        ]

    def module_of_param(self, name: str) -> str | None:
        record = self.params.get(name)
        return None if record is None else record.module

    def ancestors(self, path: str) -> list[str]:
        """``"a.b.c"`` -> ``["", "a", "a.b"]``."""
        if not path:
            return []
        parts = path.split(".")
        return [""] + [".".join(parts[:i]) for i in range(1, len(parts))]

    def search(self, query: str, limit: int = 1000) -> tuple[list[str], int]:
        """Module paths whose name, path or type contains ``query`` (case-insensitive);
        returns (the first ``limit`` matches, the number of matches)."""
        needle = query.strip().lower()
        found = [path for path, low, kind in self._haystack if needle in low or needle in kind]
        return found[:limit], len(found)


def node_name(path: str, model_class: str) -> str:
    return path.rsplit(".", 1)[-1] if path else model_class


# --------------------------------------------------------------------------- assignments


def subtree_select(path: str) -> str:
    return f"{path}.**" if path else "**"


def rule_origin(rule: Rule, path: str) -> str:
    """How a rule reaches the node at ``path``: ``""`` set on the node itself (an exact
    path or its subtree), ``"type"`` through a type rule, ``"tree"`` through an ancestor's
    subtree or a path glob."""
    if rule.select in (path, subtree_select(path)):
        return ""
    if rule.select.startswith("type:"):
        return "type"
    return "tree"


@dataclass(frozen=True)
class Assignment:
    scheme: str
    origin: str  # "", "type" or "tree"
    rule_index: int
    params: tuple[str, ...] = ()
    numel: int = 0


def node_assignments(index: ModelIndex, resolved: ResolvedPlan, path: str) -> list[Assignment]:
    """The schemes that decide the node's own parameters (or, for a container, the rule set
    on the node itself), one per deciding rule, in parameter order."""
    rules = resolved.plan.rules
    own = index.own_params(path)
    if own:
        by_rule: dict[int, list[ParamRecord]] = {}
        for record in own:
            rule_index = resolved.decided_by.get(record.name)
            if rule_index is not None:
                by_rule.setdefault(rule_index, []).append(record)
        return [
            Assignment(
                rules[i].scheme,
                rule_origin(rules[i], path),
                i,
                tuple(r.local_name for r in records),
                sum(r.numel for r in records),
            )
            for i, records in by_rule.items()
        ]
    for i in range(len(rules) - 1, -1, -1):
        if rules[i].select in (path, subtree_select(path)):
            return [Assignment(rules[i].scheme, "", i)]
    return []


def rules_set_on(plan: Plan, path: str) -> list[int]:
    """Indexes of the rules that select exactly this node (its path or its subtree)."""
    return [i for i, rule in enumerate(plan.rules) if rule.select in (path, subtree_select(path))]


def without_rules(plan: Plan, indexes: Iterable[int]) -> Plan:
    for i in sorted(set(indexes), reverse=True):
        plan = plan.without_rule(i)
    return plan


def with_assignment(plan: Plan, rule: Rule) -> Plan:
    """Append ``rule``; earlier rules with the same select and params glob are dropped
    (the new rule overrides every parameter they decide, so the result is the same)."""
    same = [
        i for i, r in enumerate(plan.rules) if r.select == rule.select and r.params == rule.params
    ]
    return without_rules(plan, same).with_rule(rule)


# --------------------------------------------------------------------------- flags


@dataclass(frozen=True)
class NodeFlag:
    level: str  # "error", "warning" or "info"
    text: str


def compute_flags(
    index: ModelIndex,
    resolved: ResolvedPlan | None,
    stats: dict | None,
    planned: dict | None,
    preview: Preview | None,
) -> dict[str, list[NodeFlag]]:
    """Per module path: NaN/Inf in the current or planned values, the last preview's
    flags, Embedding padding rows, and the plan's lints."""
    flags: dict[str, list[NodeFlag]] = {}

    def add(path: str | None, flag: NodeFlag) -> None:
        if path is not None:
            flags.setdefault(path, []).append(flag)

    for label, table in (("now", stats), ("planned", planned)):
        for name, item in (table or {}).items():
            if item is not None and (item.nan or item.inf):
                add(
                    index.module_of_param(name),
                    NodeFlag("error", f"{name}: {item.nan} NaN, {item.inf} Inf ({label})"),
                )
    if preview is not None:
        for flag in preview.flags:
            add(
                index.resolve_path(flag.path),
                NodeFlag(
                    "error" if flag.kind in ("nan", "exploding", "exploding_grad") else "warning",
                    f"{flag.which}: {flag.kind} {flag.detail}".strip(),
                ),
            )
    for path, module in index.tree.module_objects.items():
        padding = getattr(module, "padding_idx", None)
        if padding is not None and hasattr(module, "num_embeddings"):
            add(path, NodeFlag("info", f"padding row {padding} is kept at zero"))
    if resolved is not None:
        for lint in resolved.lints:
            if lint.param is None or lint.kind == "padding_row":
                continue
            add(
                index.module_of_param(lint.param),
                NodeFlag("warning" if lint.severity == "warning" else "info", lint.message),
            )
    return flags


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class FileState:
    """Which file the plan belongs to: its path (None: not saved yet), the plan as last
    written or read there, and whether ``s`` may write there without asking."""

    path: str | None
    saved_plan: Plan | None
    confirmed: bool


@dataclass
class PlanState:
    """One version of the plan, resolved; planned statistics filled in once computed.
    ``files`` is set on a change that switched files (open): (before, after), so that undo
    and redo restore the file with the plan."""

    plan: Plan
    resolved: ResolvedPlan
    label: str
    planned_stats: dict | None = None
    files: tuple[FileState, FileState] | None = None


class History:
    """Undo/redo over immutable plans."""

    def __init__(self, initial: PlanState) -> None:
        self._states = [initial]
        self._index = 0

    @property
    def current(self) -> PlanState:
        return self._states[self._index]

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._states) - 1

    def push(self, state: PlanState) -> None:
        del self._states[self._index + 1 :]
        self._states.append(state)
        self._index += 1

    def undo(self) -> PlanState | None:
        if not self.can_undo:
            return None
        undone = self._states[self._index]
        self._index -= 1
        return undone

    def redo(self) -> PlanState | None:
        if not self.can_redo:
            return None
        self._index += 1
        return self._states[self._index]


# --------------------------------------------------------------------------- assign scope


def rule_key(rule: Rule) -> tuple:
    """A hashable key of everything in ``rule`` (its args are a dict)."""
    args = tuple(sorted((k, repr(v)) for k, v in rule.args.items()))
    return (
        rule.select,
        rule.params,
        rule.scheme,
        args,
        rule.per_gate,
        rule.forget_bias,
        rule.scale,
        rule.split,
    )


class Coverage(Sequence):
    """The parameters a rule reaches, with the facts the assign dialog shows about them,
    each computed once (a subtree of a big model covers tens of thousands)."""

    def __init__(self, index: ModelIndex, params: tuple[ParamRecord, ...], glob: str = "*") -> None:
        self.index = index
        self.params = params
        self.glob = glob  # the rule's params glob that reaches them
        self._shapes: dict[bool, list[tuple[ParamRecord, tuple[int, ...]]]] = {}
        self._verdicts: dict[tuple, RuleVerdict] = {}
        self._grouped: dict[tuple, list[Group]] = {}

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, item):  # type: ignore[override]
        return self.params[item]

    def __iter__(self):
        return iter(self.params)

    def shapes(self, per_gate: bool = False) -> list[tuple[ParamRecord, tuple[int, ...]]]:
        """:func:`unique_shapes` of these parameters."""
        if per_gate not in self._shapes:
            self._shapes[per_gate] = unique_shapes(self.index, self.params, per_gate)
        return self._shapes[per_gate]

    def judge(self, rule: Rule, model: nn.Module, index: int = 0) -> RuleVerdict:
        """:func:`judge_rule` of ``rule`` on these parameters, remembered per rule."""
        key = (rule_key(rule), index)
        if key not in self._verdicts:
            self._verdicts[key] = judge_rule(
                rule,
                model,
                self.index.tree,
                self.params,
                index=index,
                groups=self._groups(rule, model),
            )
        return self._verdicts[key]

    def _groups(self, rule: Rule, model: nn.Module) -> list[Group]:
        """:func:`group_params` of these parameters, shared by every scheme that groups
        them alike (a dialog judges all of them on one scope of a big model)."""
        key = grouping_key(rule)
        if key not in self._grouped:
            self._grouped[key] = group_params(rule, model, self.index.tree, self.params)
        return self._grouped[key]

    @functools.cached_property
    def modules(self) -> list[nn.Module]:
        """The distinct module objects the parameters belong to."""
        objects = self.index.tree.module_objects
        paths = dict.fromkeys(p.module for p in self.params)
        return [objects[path] for path in paths if path in objects]

    @functools.cached_property
    def module_types(self) -> tuple[type, ...]:
        """The distinct classes of :attr:`modules`."""
        return tuple(dict.fromkeys(type(m) for m in self.modules))

    @functools.cached_property
    def padded_embedding(self) -> bool:
        """Whether an Embedding with a padding row is among :attr:`modules`."""
        return any(
            isinstance(m, (nn.Embedding, nn.EmbeddingBag))
            and getattr(m, "padding_idx", None) is not None
            for m in self.modules
        )

    @functools.cached_property
    def module_count(self) -> int:
        return len({p.module for p in self.params})

    @functools.cached_property
    def type_count(self) -> int:
        return len({p.module_type for p in self.params})

    @functools.cached_property
    def recurrent(self) -> tuple[ParamRecord, ...]:
        """The parameters with gate blocks (LSTM, GRU, RNN weights and biases)."""
        return tuple(p for p in self.params if gates_of(self.index, p))

    @functools.cached_property
    def lstm_bias(self) -> tuple[ParamRecord, ...]:
        """The LSTM biases among :attr:`recurrent` (what ``forget_bias`` sets)."""
        objects = self.index.tree.module_objects
        return tuple(
            p
            for p in self.recurrent
            if p.local_name.startswith(("bias_ih", "bias_hh"))
            and isinstance(objects.get(p.module), (nn.LSTM, nn.LSTMCell))
        )


# --------------------------------------------------------------------------- preview


def run_preview(
    loaded: LoadedModel,
    resolved: ResolvedPlan,
    input_shapes: Sequence[str] | None,
    input_dtype: str | None,
    seed: int,
    backward: bool,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
    inputs_file: str | None = None,
) -> Preview:
    """The preview's rows: :func:`inittui.core.probe.run_preview` with the plan compared
    when it decides anything. The user's model is never modified (a model too large to
    copy gets an error, not an in-place apply). Normalization layers use batch statistics,
    dropout is off (the preview's default mode)."""
    run = core_run_preview(
        loaded,
        resolved if resolved.steps else None,
        input_shapes=input_shapes,
        input_dtype=input_dtype,
        inputs_file=inputs_file,
        seed=seed,
        backward=backward,
        train_mode=True,
        progress=progress,
        cancel=cancel,
        allow_in_place=False,
    )
    return preview_rows(run)


# --------------------------------------------------------------------------- session


@dataclass
class Session:
    """Everything the app knows about the open model and its plan."""

    loaded: LoadedModel
    tree: ModelTree
    index: ModelIndex
    history: History
    stats: dict | None = None
    preview: Preview | None = None
    preview_stale: bool = False
    flags: dict[str, list[NodeFlag]] = field(default_factory=dict)
    flagged_below: set[str] = field(default_factory=set)

    @property
    def plan(self) -> Plan:
        return self.history.current.plan

    @property
    def resolved(self) -> ResolvedPlan:
        return self.history.current.resolved

    @property
    def planned_stats(self) -> dict | None:
        return self.history.current.planned_stats

    @property
    def model_class(self) -> str:
        return self.loaded.model_class

    def refresh_flags(self) -> None:
        self.flags = compute_flags(
            self.index, self.resolved, self.stats, self.planned_stats, self.preview
        )
        below: set[str] = set()
        for path in self.flags:
            below.update(self.index.ancestors(path))
        self.flagged_below = below

    def preview_row(self, path: str) -> PreviewRow | None:
        if self.preview is None:
            return None
        for row in self.preview.rows:
            if row.path == path:
                return row
        return None
