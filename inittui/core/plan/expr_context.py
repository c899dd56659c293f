"""Expressions in rules: which values may be one, their check when a plan is read, and
their value for one parameter (:func:`concrete_rule`, the one hook of the step builder).

Every float argument of a scheme (``std``, ``mean``, ``gain``, ``a``, ``b``, ``val``,
``sparsity``, ...) and the rule options ``scale`` and ``forget_bias`` may be a string
expression (:mod:`.expr`). A :class:`~inittui.core.plan.model.Rule` keeps the text, so a
plan writes back as it was read; resolution evaluates it per parameter and the step holds
numbers (and ``expressions``: key, text, value).

What the names are worth for a parameter:

``fan_in``, ``fan_out``
    The parameter's effective fans, those of its :class:`~inittui.core.tree.ParamRecord`
    (the whole tensor's, as ``inspect`` shows them; under 2 dims there are none).
``width``
    ``fan_in``.
``depth``, ``layer``
    The nearest repeated container above the parameter (an ``nn.ModuleList`` or
    ``nn.Sequential`` of 2 or more modules all of one type): its number of blocks, and the
    0-based position of the block the parameter sits in.
``config.NAME``
    ``model.config.NAME`` (transformers' ``PretrainedConfig``, or a dict, dataclass or
    namespace named ``config`` on the model): a real number.
``arg.NAME``
    The constructor argument ``NAME`` (``--arg``/``--kwargs``), else the default in the
    target's signature.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace

from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.plan.expr import (
    CONSTANTS,
    ExpressionError,
    checked_expression,
    parse_expression,
    quoted,
)
from inittui.core.plan.model import Rule
from inittui.core.schemes import Scheme, SchemeError, get_scheme
from inittui.core.tree import ParamRecord

OPTION_KEYS = ("scale", "forget_bias")  # the rule options that may be expressions


def validate_args(scheme: Scheme, raw: Mapping[str, object], label: str) -> dict[str, object]:
    """:meth:`Scheme.validate` where float arguments may be expressions: those are parsed
    (an expression without names is evaluated and checked as its number); the result holds
    their text. Raises :class:`SchemeError` or :class:`InittuiError` (with ``label``)."""
    floats = {arg.name: arg for arg in scheme.args if arg.kind is float}
    texts = {k: v for k, v in raw.items() if k in floats and isinstance(v, str)}
    if not texts:
        return scheme.validate(raw)
    trial = {k: v for k, v in raw.items() if k not in texts}
    for key, text in texts.items():
        expression = checked_expression(label, key, text)
        if expression.constant:
            trial[key] = expression.evaluate()
        elif floats[key].required:
            trial[key] = floats[key].sample()
    try:
        values = scheme.validate(trial)
    except SchemeError as exc:
        if exc.key in texts:
            raise InittuiError(
                f"{label}: {exc.key} = {quoted(texts[exc.key])} gives "
                f"{trial[exc.key]!r}; {_must(scheme, exc)}"
            ) from None
        if exc.key is not None or all(parse_expression(t).constant for t in texts.values()):
            raise
        values = {arg.name: trial.get(arg.name, arg.default) for arg in scheme.args}
    return {**values, **texts}


def expression_items(rule: Rule) -> list[tuple[str, str]]:
    """``(key, text)`` of every expression in ``rule``: float arguments, then options."""
    items: list[tuple[str, str]] = []
    if any(isinstance(value, str) for value in rule.args.values()):
        try:
            floats = {arg.name for arg in get_scheme(rule.scheme).args if arg.kind is float}
        except SchemeError:
            floats = set()
        items += [(k, v) for k, v in rule.args.items() if k in floats and isinstance(v, str)]
    items += [(k, getattr(rule, k)) for k in OPTION_KEYS if isinstance(getattr(rule, k), str)]
    return items


@dataclass(frozen=True)
class ExprSite:
    """The parameter an expression is evaluated for: its record, the name the rule
    reached it by, the model and the constructor arguments."""

    record: ParamRecord
    via: str
    model: nn.Module
    constructor_args: Mapping[str, object] | None = None


def concrete_rule(
    rule: Rule, site: ExprSite, label: str
) -> tuple[Rule, tuple[tuple[str, str, float], ...]]:
    """``rule`` with every expression replaced by its value for ``site``, and the
    ``(key, text, value)`` of each; ``rule`` itself when it has none. Raises the step
    builder's ``StepRefused`` naming the rule, the key, the text and the parameter."""
    items = expression_items(rule)
    if not items:
        return rule, ()
    evaluated = []
    for key, text in items:
        where = f"{key} = {quoted(text)}"
        try:
            expression = parse_expression(text)
            values = {n: name_value(n, site) for n in expression.names if n not in CONSTANTS}
            value = expression.evaluate(values)
        except ExpressionError as exc:
            raise _refused(label, f"{where} {exc} for {site.record.name}") from None
        evaluated.append((key, text, value))
    values = {key: value for key, _, value in evaluated}
    args = {k: values.get(k, v) for k, v in rule.args.items()}
    concrete = replace(
        rule,
        args=args,
        **{k: values[k] for k in OPTION_KEYS if k in values},  # type: ignore[arg-type]
    )
    if args != dict(rule.args):
        _check_values(concrete, {k: text for k, text, _ in evaluated}, site, label)
    return concrete, tuple(evaluated)


def _check_values(rule: Rule, evaluated: Mapping[str, str], site: ExprSite, label: str) -> None:
    """The evaluated arguments pass the scheme's own checks (a std below 0, a > b)."""
    scheme = get_scheme(rule.scheme)
    try:
        scheme.validate(rule.args)
    except SchemeError as exc:
        shown = [k for k in ((exc.key,) if exc.key else evaluated) if k in evaluated]
        if not shown:
            raise _refused(label, str(exc)) from None
        gives = " and ".join(f"{k} = {quoted(evaluated[k])} gives {rule.args[k]!r}" for k in shown)
        raise _refused(label, f"{gives} for {site.record.name}; {_must(scheme, exc)}") from None


def _must(scheme: Scheme, exc: SchemeError) -> str:
    """``std must be >= 0`` for a range, else the scheme's own message."""
    for arg in scheme.args:
        if arg.name == exc.key and arg.describe_range() and "must be" in str(exc):
            return f"{arg.name} must be {arg.describe_range()}"
    return str(exc)


def _refused(label: str, detail: str) -> InittuiError:
    from inittui.core.plan.resolve import StepRefused  # resolve imports this module

    return StepRefused(label, detail, detail)


# -- what each name is worth -------------------------------------------------------------


def name_value(name: str, site: ExprSite) -> float:
    """The value of ``name`` for the parameter of ``site``; :class:`ExpressionError`
    when it has none."""
    record = site.record
    if name in ("fan_in", "fan_out", "width"):
        fan = record.fan_out if name == "fan_out" else record.fan_in
        if fan is None:
            raise ExpressionError(f"uses {name}, which a tensor under 2 dims does not have")
        return float(fan)
    if name in ("depth", "layer"):
        position = block_position(site.model, site.via.rpartition(".")[0])
        if position is None:
            raise ExpressionError(
                f"uses {name}, but no repeated container (a ModuleList or Sequential of "
                "same-type modules) is above it"
            )
        return float(position[0] if name == "layer" else position[1])
    prefix, _, attr = name.partition(".")
    if prefix == "config":
        return _real(config_value(site.model, attr), name)
    if prefix == "arg":
        args = site.constructor_args or {}
        if attr not in args:
            raise ExpressionError(
                f"uses {name}, but the model was built without a constructor argument "
                f"{attr!r}; pass --arg {attr}=VALUE"
            )
        return _real(args[attr], name)
    raise ExpressionError(f"uses unknown name {name!r}")  # parse_expression refuses it first


def block_position(model: nn.Module, module_path: str) -> tuple[int, int] | None:
    """``(layer, depth)`` for a module at ``module_path``: the nearest container above it
    (itself excluded) that is a ModuleList or Sequential of 2 or more modules all of one
    type, the 0-based index of the child the path goes through, and its number of
    children. None when no such container is above it."""
    parts = module_path.split(".") if module_path else []
    for cut in range(len(parts) - 1, -1, -1):
        try:
            container = model.get_submodule(".".join(parts[:cut]))
        except AttributeError:
            return None
        if not isinstance(container, (nn.ModuleList, nn.Sequential)):
            continue
        children = list(container._modules.items())
        kinds = {type(child) for _, child in children}
        if len(children) >= 2 and None not in kinds and len(kinds) == 1:
            names = [child_name for child_name, _ in children]
            return names.index(parts[cut]), len(children)
    return None


def config_value(model: nn.Module, attr: str) -> object:
    """``model.config.<attr>`` (a mapping's key, else an attribute)."""
    config = getattr(model, "config", None)
    if config is None:
        raise ExpressionError(
            f"uses config.{attr}, but {type(model).__name__} has no config attribute "
            "(transformers models have one); use a number or arg.NAME"
        )
    if isinstance(config, Mapping):
        if attr not in config:
            raise ExpressionError(f"uses config.{attr}, but the model's config has no {attr!r}")
        return config[attr]
    if not hasattr(config, attr):
        raise ExpressionError(f"uses config.{attr}, but the model's config has no {attr!r}")
    return getattr(config, attr)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExpressionError(
            f"uses {name}, which is {type(value).__name__} {value!r:.40}, not a number"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ExpressionError(f"uses {name}, which is {number}, not a finite number")
    return number


def constructor_arguments(loaded: object) -> dict[str, object]:
    """The arguments the model was built with (``--arg``/``--kwargs``, a
    :class:`~inittui.core.loading.LoadedModel`'s ``kwargs``), completed with the defaults
    in the target's signature (for ``arg.NAME``)."""
    args = dict(getattr(loaded, "kwargs", None) or {})
    target: object = getattr(loaded, "source_module", None)
    for part in str(getattr(loaded, "name", "")).split("."):
        target = getattr(target, part, None)
    if target is None or isinstance(target, nn.Module) or not callable(target):
        return args
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return args
    for parameter in signature.parameters.values():
        if parameter.default is not parameter.empty:
            args.setdefault(parameter.name, parameter.default)
    return args
