"""Which modules and parameters a rule reaches: selectors (``type:Class``, dotted-path
globs, exact paths), :func:`module_matches`, gate blocks of recurrent parameters, and the
coverage helpers the assign dialog asks on every open (fast on a 10,000-module model)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Protocol

from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.plan.globs import Glob, compile_name_glob, compile_select_glob
from inittui.core.tree import ModelTree, ModuleRecord, ParamRecord

RECURRENT_GATES = {"LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3, "RNN": 1, "RNNCell": 1}


def split_type(select: str) -> tuple[str, str | None]:
    """``type:Conv2d@encoder.**`` -> ``("Conv2d", "encoder.**")``; ``type:Linear`` ->
    ``("Linear", None)`` (the class, and the path selector it must also match)."""
    name, at, where = select[5:].partition("@")
    return name.strip(), (where.strip() if at else None)


def compile_select(select: str, label: str = "select") -> Glob | None:
    """Dotted-path glob -> :class:`~inittui.core.plan.globs.Glob` (``.match(path)``, linear
    time). ``*`` matches within one component, ``**`` any number of components
    (``encoder.**`` is the encoder and its whole subtree), ``?`` one character, ``[...]`` a
    class. ``type:...`` selectors (``type:Conv2d@encoder.**``: a class inside a path
    selector) return None."""
    if select.startswith("type:"):
        name, where = split_type(select)
        if not name or not name.replace(".", "").replace("_", "").isalnum():
            raise InittuiError(
                f"{label}: {select!r} must name a class, e.g. type:Linear or type:Linear@encoder.**"
            )
        if where is not None:
            if not where or where.startswith("type:"):
                raise InittuiError(
                    f"{label}: {select!r} must name a path after @, e.g. type:Linear@encoder.**"
                )
            compile_select(where, label)
        return None
    try:
        return compile_select_glob(select)
    except ValueError as exc:
        raise InittuiError(f"{label}: {exc}") from None


@functools.lru_cache(maxsize=256)
def _select_glob(select: str) -> Glob | None:
    """A few recent selects, for one-rule questions (the assign dialog, coverage); a plan's
    resolution compiles its own (:class:`RuleIndex`), so no cache size limits it."""
    return compile_select(select)


@functools.lru_cache(maxsize=256)
def name_glob(pattern: str) -> Glob:
    """The params glob (fnmatch's language) compiled, for one-rule questions."""
    return compile_name_glob(pattern)


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
        name, where = split_type(select)
        if name not in _class_names(module):
            return False
        if where is None:
            return True
        select = where
    pattern = _select_glob(select)
    assert pattern is not None
    return any(pattern.match(path) for path in paths)


def gate_count(module: nn.Module, local_name: str) -> int | None:
    """Gate blocks stacked in a recurrent parameter (LSTM 4, GRU 3, RNN 1); None for any
    other parameter."""
    if not local_name.startswith(("weight_ih", "weight_hh", "bias_ih", "bias_hh")):
        return None
    for cls in type(module).__mro__:
        if cls.__name__ in RECURRENT_GATES:
            return RECURRENT_GATES[cls.__name__]
    return None


# -- a plan's rules, indexed ---------------------------------------------------------------


class SelectsRule(Protocol):
    select: str
    params: str


class RuleIndex:
    """Which of a plan's rules select a module and a parameter, without trying every rule
    on every parameter: exact paths through a dict (path -> rule indexes), ``type:`` rules
    through a dict over class names (the module's MRO), and only the glob rules tried one
    by one, each compiled once for this plan. Answers are memoised per module and per
    (params glob, local name), so resolution is linear in parameters plus rules."""

    def __init__(self, rules: Sequence[SelectsRule]) -> None:
        self.exact: dict[str, list[int]] = {}
        self.by_type: dict[str, list[int]] = {}
        self.globs: list[tuple[int, Glob]] = []
        self.type_where: dict[int, str] = {}  # type:CLASS@WHERE rules: the path selector
        self.params: list[str] = []
        self._name_globs: dict[str, Glob] = {}
        self._modules: dict[tuple[int, tuple[str, ...]], tuple[int, ...]] = {}
        self._names: dict[tuple[str, str], bool] = {}
        for index, rule in enumerate(rules):
            select = rule.select
            if select.startswith("type:"):
                name, where = split_type(select)
                self.by_type.setdefault(name, []).append(index)
                if where is not None:
                    self.type_where[index] = where
            elif any(c in select for c in "*?["):
                glob = compile_select(select, f"rule {index + 1} (select {select!r})")
                assert glob is not None
                self.globs.append((index, glob))
            else:
                self.exact.setdefault(select, []).append(index)
            self.params.append(rule.params)
            if rule.params not in self._name_globs:
                self._name_globs[rule.params] = compile_name_glob(rule.params)

    def module_rules(self, module: nn.Module, paths: Sequence[str]) -> tuple[int, ...]:
        """The indexes (ascending) of the rules whose select matches ``module`` under any
        of its ``paths``."""
        key = (id(module), tuple(paths))
        found = self._modules.get(key)
        if found is None:
            hits: set[int] = set()
            for path in paths:
                hits.update(self.exact.get(path, ()))
            if self.by_type:
                for name in _class_names(module):
                    hits.update(self.by_type.get(name, ()))
                for index, where in self.type_where.items():
                    if index in hits and not module_matches(where, paths, module):
                        hits.discard(index)
            for index, glob in self.globs:
                if index not in hits and any(glob.match(path) for path in paths):
                    hits.add(index)
            found = self._modules[key] = tuple(sorted(hits))
        return found

    def params_match(self, index: int, local: str) -> bool:
        """Rule ``index``'s params glob matches the local name ``local``."""
        key = (self.params[index], local)
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = self._name_globs[key[0]].match(local)
        return found

    def site_rules(self, local: str, module: nn.Module, paths: Sequence[str]) -> list[int]:
        """The rules (ascending) that select the parameter ``local`` of ``module``."""
        return [i for i in self.module_rules(module, paths) if self.params_match(i, local)]


# -- coverage: what a rule reaches in a model's tree ---------------------------------------


class TreeIndex(Protocol):
    """Look-ups over a :class:`ModelTree` (the TUI's ``ModelIndex`` is one)."""

    tree: ModelTree
    modules: dict[str, ModuleRecord]
    params: dict[str, ParamRecord]

    def resolve_path(self, path: str) -> str: ...


def _candidates(index: TreeIndex, select: str) -> Iterable[ModuleRecord]:
    """Modules that can match ``select``: for an exact path or a ``path.**`` subtree only
    that part of the tree (so a 10,000-module model answers at once), else every module."""
    if select.startswith("type:") and split_type(select)[1]:
        return _candidates(index, split_type(select)[1] or "")
    if select.startswith("type:") or any(c in select for c in "*?["):
        base = select[:-3] if select.endswith(".**") else None
        if base is not None and not any(c in base for c in "*?["):
            prefix = base + "."
            return [
                m
                for m in index.tree.modules
                if m.path == base
                or m.path.startswith(prefix)
                or any(a == base or a.startswith(prefix) for a in m.aliases)
            ]
        return index.tree.modules
    record = index.modules.get(index.resolve_path(select))
    return [] if record is None else [record]


def tied_names(tree: ModelTree) -> dict[str, list[tuple[str, ParamRecord]]]:
    """Module path -> ``(local name, record)`` of each tied tensor that module holds under
    a second name (GPT-2's ``lm_head`` -> ``("weight", transformer.wte.weight)``): the
    names the resolver's :func:`~inittui.core.plan.resolve.name_sites` also tries.
    Built once per tree (and again if ``parameters`` changes length)."""
    cached = tree.__dict__.get("_tied_names")
    if cached is None or cached[0] != len(tree.parameters):
        found: dict[str, list[tuple[str, ParamRecord]]] = {}
        for record in tree.parameters:
            for alias in record.aliases:
                module_path, _, local = alias.rpartition(".")
                found.setdefault(module_path, []).append((local, record))
        cached = (len(tree.parameters), found)
        tree.__dict__["_tied_names"] = cached
    return cached[1]


def covered_params(index: TreeIndex, select: str, params_glob: str) -> list[ParamRecord]:
    """The parameters a rule ``select``/``params`` would reach (the resolver's matching):
    a module's own parameters and the tied tensors it holds under a second name, each
    once."""
    out: list[ParamRecord] = []
    seen: set[str] = set()
    params = name_glob(params_glob or "*")
    tied = tied_names(index.tree)
    for record in _candidates(index, select):
        module = index.tree.module_objects.get(record.path)
        if module is None or not module_matches(select, [record.path, *record.aliases], module):
            continue
        for name in record.param_names:
            param = index.params.get(name)
            if param is not None and name not in seen and params.match(param.local_name):
                seen.add(name)
                out.append(param)
        for path in (record.path, *record.aliases) if tied else ():
            for local, param in tied.get(path, ()):
                if param.name not in seen and params.match(local):
                    seen.add(param.name)
                    out.append(param)
    return out


def gates_of(index: TreeIndex, param: ParamRecord) -> int | None:
    """Gate blocks of a recurrent weight/bias (LSTM 4, GRU 3, RNN 1), else None."""
    module = index.tree.module_objects.get(param.module)
    return None if module is None else gate_count(module, param.local_name)


def scheme_shape(index: TreeIndex, param: ParamRecord, per_gate: bool) -> tuple[int, ...] | None:
    """The shape the scheme sees: one gate block's with ``per_gate``, else the tensor's."""
    if param.shape is None:
        return None
    gates = gates_of(index, param) if per_gate else None
    if gates and param.shape:
        return (param.shape[0] // gates, *param.shape[1:])
    return tuple(param.shape)


def unique_shapes(
    index: TreeIndex, params: Sequence[ParamRecord], per_gate: bool = False
) -> list[tuple[ParamRecord, tuple[int, ...]]]:
    """One representative parameter per distinct shape (and dtype) the scheme would see."""
    seen: dict[tuple[tuple[int, ...], str], ParamRecord] = {}
    for param in params:
        shape = scheme_shape(index, param, per_gate)
        if shape is not None and (shape, param.dtype) not in seen:
            seen[shape, param.dtype] = param
    return [(param, shape) for (shape, _dtype), param in seen.items()]
