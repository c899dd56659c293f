"""The scheme table: the one place in inittui that knows an init scheme.

A scheme is named as its ``torch.nn.init`` function without the trailing underscore
(``kaiming_normal``), and its arguments are torch's keyword names and defaults (``gain``,
``a``, ``mode``, ``nonlinearity``, ``mean``, ``std``, ``val``, ...). For each scheme the table
knows:

- its arguments, their types, ranges and defaults (:meth:`Scheme.validate`),
- which tensor shapes it can initialize (:meth:`Scheme.applicability`),
- the mean, std and bounds of the values it produces, with the formula
  (:meth:`Scheme.expected`),
- the one Python statement that performs it (:meth:`Scheme.code`).

:meth:`Scheme.apply` executes exactly the statement that :meth:`Scheme.code` prints, so the
in-app result and an exported script can never disagree. The statement calls
``torch.nn.init`` or a helper from :mod:`inittui.core.runtime` (whose source an exported
script copies), never a re-implemented distribution.

Besides torch's functions there are two inittui schemes: ``lecun_normal`` (std =
1/sqrt(fan_in), LeCun et al. 1998) and ``keep`` (leave the tensor as it is).
:func:`default_init` says what PyTorch's own ``reset_parameters`` does for a parameter,
as a ``(scheme, args)`` pair from this table.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.formatting import shape as _shape_text
from inittui.core.runtime import RUNTIME_HELPERS

__all__ = [
    "NONLINEARITIES",
    "REQUIRED",
    "SCHEMES",
    "Arg",
    "Expected",
    "Scheme",
    "SchemeError",
    "default_init",
    "fans",
    "get_scheme",
    "truncated_normal_moments",
]


class SchemeError(InittuiError, ValueError):
    """A bad scheme name, argument or target shape; the message names the key and the
    allowed values. ``key`` is the offending argument name, when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: object = _Required()
"""Sentinel default of an argument that has no default (``constant``'s ``val``)."""


@dataclass(frozen=True)
class Arg:
    """One keyword argument of a scheme, named exactly as torch names it."""

    name: str
    kind: type  # float, int or str
    default: object  # a value, or REQUIRED
    choices: tuple | None = None
    minimum: float | None = None  # inclusive unless exclusive_minimum
    exclusive_minimum: bool = False
    maximum: float | None = None  # inclusive unless exclusive_maximum
    exclusive_maximum: bool = False
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe_range(self) -> str | None:
        """The allowed range as text (``">= 0"``, ``"in [0, 1)"``), or None if unbounded."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_num(lo)}"
        if hi is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_num(hi)}"
        return None


@dataclass(frozen=True)
class Expected:
    """What the values of a tensor look like after a scheme ran on it.

    ``std`` is the standard deviation of the distribution the values come from (for the
    deterministic schemes, the population std of the values themselves); ``bound`` is the
    half-width of a uniform scheme's interval around ``mean``. ``low``/``high`` are the
    closed interval that holds every value when there is one (uniform schemes, the
    truncated normal's absolute ``[a, b]``, constants). ``mean`` and ``std`` are None when
    nothing can be said (``keep``, an empty tensor).
    """

    mean: float | None
    std: float | None
    bound: float | None
    formula: str
    low: float | None = None
    high: float | None = None


_StatsFn = Callable[[tuple[int, ...], dict[str, object]], Expected]
_CheckFn = Callable[[tuple[int, ...], dict[str, object]], "str | None"]
_ArgsCheckFn = Callable[[dict[str, object]], "str | None"]


@dataclass(frozen=True)
class Scheme:
    """One init scheme: its arguments, the shapes it accepts, its statistics, its code.

    ``function`` is the callable the printed statement calls (``torch.nn.init.<name>_`` or
    a runtime helper such as ``_orthogonal_``); ``fixed`` are keyword arguments always
    printed before the user's (``lecun_normal`` calls ``kaiming_normal_`` with
    ``mode='fan_in', nonlinearity='linear'``); ``helpers`` are the runtime helpers the
    statement needs (an exported script copies their source).
    """

    name: str
    summary: str
    args: tuple[Arg, ...]
    uses_generator: bool
    min_dims: int = 0
    max_dims: int | None = None
    function: str | None = None  # None: the statement is ``pass`` (keep)
    fixed: tuple[tuple[str, object], ...] = ()
    helpers: tuple[str, ...] = ()
    paper: str = ""
    dims_purpose: str = ""
    stats: _StatsFn | None = field(default=None, repr=False, compare=False)
    shape_check: _CheckFn | None = field(default=None, repr=False, compare=False)
    args_check: _ArgsCheckFn | None = field(default=None, repr=False, compare=False)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(arg.name for arg in self.args)

    def defaults(self) -> dict[str, object]:
        """The arguments that have a default, with it."""
        return {arg.name: arg.default for arg in self.args if not arg.required}

    # -- arguments --------------------------------------------------------------------

    def validate(self, raw: Mapping[str, object] | None) -> dict[str, object]:
        """Check keys and values, fill defaults; return the normalized arguments.

        The result holds every argument of the scheme, in the table's order; an int given
        for a float argument becomes a float. Raises :class:`SchemeError` for an unknown
        key (with the closest allowed key, via difflib), a value of the wrong type, a
        value out of range, a choice not allowed (listing the allowed ones), a missing
        required argument, or inconsistent arguments (``uniform`` with a > b).
        """
        raw = dict(raw or {})
        allowed = self.arg_names
        for key in raw:
            if key not in allowed:
                raise SchemeError(_unknown_key_message(self.name, key, allowed), str(key))
        values: dict[str, object] = {}
        for arg in self.args:
            if arg.name in raw:
                values[arg.name] = _check_value(self.name, arg, raw[arg.name])
            elif arg.required:
                raise SchemeError(
                    f'scheme {self.name} needs key "{arg.name}" ({arg.kind.__name__}: '
                    f"{arg.doc or 'no default'})",
                    arg.name,
                )
            else:
                values[arg.name] = arg.default
        if self.args_check is not None:
            problem = self.args_check(values)
            if problem is not None:
                raise SchemeError(f"scheme {self.name}: {problem}", None)
        return values

    # -- shapes -----------------------------------------------------------------------

    def applicability(
        self,
        shape: Sequence[int],
        args: Mapping[str, object] | None = None,
        *,
        name: str | None = None,
    ) -> str | None:
        """None if the scheme can initialize a tensor of this shape, else the reason.

        ``args`` matter only where the shape rule depends on them (``dirac``'s ``groups``;
        defaults are used when omitted); ``name`` names the tensor in the reason (e.g.
        ``'kaiming_normal needs a tensor with at least 2 dims to compute fan_in/fan_out;
        bias has shape (64,)'``). Tensors with zero-sized dims are accepted wherever
        torch's function handles them (mostly a no-op).
        """
        dims = tuple(int(s) for s in shape)
        where = (
            f"{name} has shape {_shape_text(dims)}" if name else f"got shape {_shape_text(dims)}"
        )
        ndim = len(dims)
        too_few = ndim < self.min_dims
        too_many = self.max_dims is not None and ndim > self.max_dims
        if too_few or too_many:
            if self.max_dims is None:
                need = f"at least {self.min_dims} dims"
            elif self.max_dims == self.min_dims:
                need = f"exactly {self.min_dims} dims"
            else:
                need = f"{self.min_dims} to {self.max_dims} dims"
            return f"{self.name} needs a tensor with {need}{self.dims_purpose}; {where}"
        if self.shape_check is not None:
            values = self.validate(args) if args is not None else self.defaults()
            problem = self.shape_check(dims, values)
            if problem is not None:
                return f"{self.name} {problem}; {where}"
        return None

    # -- statistics -------------------------------------------------------------------

    def expected(self, shape: Sequence[int], args: Mapping[str, object]) -> Expected:
        """Mean, std and bounds of the values this scheme gives a tensor of ``shape``.

        Raises :class:`SchemeError` when the arguments are bad or the scheme cannot
        initialize that shape.
        """
        values = self.validate(args)
        dims = tuple(int(s) for s in shape)
        reason = self.applicability(dims, values)
        if reason is not None:
            raise SchemeError(reason)
        if self.stats is None:
            return Expected(
                None, None, None, f"{self.name}: the current values are left as they are"
            )
        if math.prod(dims) == 0:
            return Expected(
                None,
                None,
                None,
                f"shape {_shape_text(dims)} has no elements: nothing to initialize",
            )
        return self.stats(dims, values)

    # -- code -------------------------------------------------------------------------

    def code(self, target: str, args: Mapping[str, object], generator: str = "g") -> str:
        """One Python statement that initializes ``target`` in place.

        ``target`` is an expression naming a tensor (``"p"``, ``"p[0:128]"``), ``generator``
        the name of a ``torch.Generator`` (or of None). Every argument is spelled out with
        ``repr`` (floats round-trip exactly); the statement uses only ``torch`` and the
        helpers in :attr:`helpers`, e.g.
        ``torch.nn.init.kaiming_normal_(p, a=0.0, mode='fan_in', nonlinearity='relu',
        generator=g)``.
        """
        values = self.validate(args)
        if self.function is None:
            return "pass"
        parts = [target]
        parts += [f"{key}={_literal(value)}" for key, value in self.fixed]
        parts += [f"{key}={_literal(value)}" for key, value in values.items()]
        if self.uses_generator:
            parts.append(f"generator={generator}")
        return f"{self.function}({', '.join(parts)})"

    def apply(
        self,
        tensor: torch.Tensor,
        args: Mapping[str, object],
        generator: torch.Generator | None,
    ) -> None:
        """Initialize ``tensor`` in place by executing exactly the statement :meth:`code`
        prints (compiled once per distinct statement), under ``torch.no_grad()``, in a
        namespace holding only ``torch``, the runtime helpers, ``p`` and ``g``."""
        reason = self.applicability(tuple(tensor.shape), args)
        if reason is not None:
            raise SchemeError(reason)
        statement = self.code("p", args, "g")
        namespace = {"torch": torch, **RUNTIME_HELPERS, "p": tensor, "g": generator}
        with torch.no_grad():
            exec(_compiled(statement), namespace)


@functools.lru_cache(maxsize=4096)
def _compiled(statement: str) -> CodeType:
    return compile(statement, "<inittui scheme>", "exec")


# -- formatting and checking helpers --------------------------------------------------


def _num(x: float) -> str:
    """A number for formula text: 4 significant digits, ints without a decimal point."""
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}"


def _literal(value: object) -> str:
    """Python source for a validated argument value (finite float, int or str)."""
    return repr(value)  # validated floats are finite, and repr round-trips them exactly


def _unknown_key_message(scheme: str, key: object, allowed: Sequence[str]) -> str:
    message = f'unknown key "{key}" for scheme {scheme}'
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    if close:
        message += f'; did you mean "{close[0]}"?'
    else:
        message += ";"
    allowed_text = ", ".join(sorted(allowed)) if allowed else "(none: it takes no arguments)"
    return f"{message} allowed: {allowed_text}"


def _type_name(kind: type) -> str:
    return {float: "a number", int: "an integer", str: "a string"}[kind]


def _check_value(scheme: str, arg: Arg, value: object) -> object:
    where = f'key "{arg.name}" of scheme {scheme}'
    got = f"got {type(value).__name__} {value!r}"
    if arg.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemeError(f"{where} must be {_type_name(float)}, {got}", arg.name)
        value = float(value)
        if not math.isfinite(value):
            raise SchemeError(f"{where} must be a finite number, {got}", arg.name)
    elif arg.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemeError(f"{where} must be {_type_name(int)}, {got}", arg.name)
    elif arg.kind is str:
        if not isinstance(value, str):
            raise SchemeError(f"{where} must be {_type_name(str)}, {got}", arg.name)
    if arg.choices is not None and value not in arg.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in arg.choices], n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        raise SchemeError(
            f'bad value "{value}" for {where}{hint}; allowed: '
            + ", ".join(str(c) for c in arg.choices),
            arg.name,
        )
    if arg.minimum is not None or arg.maximum is not None:
        number = float(value)  # type: ignore[arg-type]
        low_bad = arg.minimum is not None and (
            number <= arg.minimum if arg.exclusive_minimum else number < arg.minimum
        )
        high_bad = arg.maximum is not None and (
            number >= arg.maximum if arg.exclusive_maximum else number > arg.maximum
        )
        if low_bad or high_bad:
            raise SchemeError(f"{where} must be {arg.describe_range()}, got {value!r}", arg.name)
    return value


# -- the arguments -------------------------------------------------------------------

NONLINEARITIES: tuple[str, ...] = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)
"""Every nonlinearity ``torch.nn.init.calculate_gain`` accepts."""

_GAIN = Arg("gain", float, 1.0, minimum=0.0, doc="scaling factor applied to the std")
_KAIMING_ARGS = (
    Arg(
        "a",
        float,
        0.0,
        doc="negative slope of the leaky_relu after this layer (used only with leaky_relu)",
    ),
    Arg(
        "mode",
        str,
        "fan_in",
        choices=("fan_in", "fan_out"),
        doc="fan_in preserves the forward variance, fan_out the backward variance",
    ),
    Arg(
        "nonlinearity",
        str,
        "leaky_relu",
        choices=NONLINEARITIES,
        doc="the nonlinearity after this layer, for torch.nn.init.calculate_gain",
    ),
)


# -- statistics of each scheme --------------------------------------------------------


def _constant_expected(value: float, what: str) -> Expected:
    return Expected(value, 0.0, None, f"{what}: every value = {_num(value)}", value, value)


def _indicator_expected(ones: int, total: int, what: str) -> Expected:
    """Statistics of a tensor with ``ones`` ones among ``total`` values, the rest zeros."""
    mean = ones / total
    std = math.sqrt(mean * (1.0 - mean))
    formula = (
        f"{what}: {ones} ones among {total} values, the rest 0: mean = {ones}/{total} = "
        f"{_num(mean)}, std = sqrt(mean * (1 - mean)) = {_num(std)}"
    )
    return Expected(mean, std, None, formula, 0.0, 1.0 if ones else 0.0)


def _uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    a, b = v["a"], v["b"]
    std = (b - a) / math.sqrt(12.0)
    formula = (
        f"U(a, b) = U({_num(a)}, {_num(b)}): mean = (a + b)/2 = {_num((a + b) / 2)}, "
        f"std = (b - a)/sqrt(12) = {_num(std)}"
    )
    return Expected((a + b) / 2, std, (b - a) / 2, formula, a, b)


def _normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    mean, std = v["mean"], v["std"]
    return Expected(mean, std, None, f"N(mean, std^2): mean = {_num(mean)}, std = {_num(std)}")


def _phi(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _normal_mass(alpha: float, beta: float) -> float:
    """Phi(beta) - Phi(alpha) for the standard normal CDF Phi, accurate in the tails."""
    root2 = math.sqrt(2.0)
    if alpha >= 0.0:
        return 0.5 * (math.erfc(alpha / root2) - math.erfc(beta / root2))
    if beta <= 0.0:
        return 0.5 * (math.erfc(-beta / root2) - math.erfc(-alpha / root2))
    return 0.5 * (math.erf(beta / root2) - math.erf(alpha / root2))


def truncated_normal_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    """Mean and std of N(mean, std^2) truncated to the absolute interval [a, b].

    With alpha = (a - mean)/std, beta = (b - mean)/std, Z = Phi(beta) - Phi(alpha) and phi,
    Phi the standard normal density and CDF (Phi via math.erf)::

        mean' = mean + std * (phi(alpha) - phi(beta)) / Z
        std'  = std * sqrt(1 + (alpha*phi(alpha) - beta*phi(beta)) / Z
                              - ((phi(alpha) - phi(beta)) / Z)^2)

    Raises ``ZeroDivisionError`` when Z underflows (the interval lies ~38 std or more
    away from the mean).
    """
    alpha, beta = (a - mean) / std, (b - mean) / std
    mass = _normal_mass(alpha, beta)
    if mass <= 0.0:
        raise ZeroDivisionError("the normal's mass in [a, b] underflows")
    shift = (_phi(alpha) - _phi(beta)) / mass
    variance_factor = 1.0 + (alpha * _phi(alpha) - beta * _phi(beta)) / mass - shift * shift
    return mean + std * shift, std * math.sqrt(max(variance_factor, 0.0))


def _trunc_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    mean, std, a, b = v["mean"], v["std"], v["a"], v["b"]
    alpha, beta = (a - mean) / std, (b - mean) / std
    head = (
        f"N(mean, std^2) = N({_num(mean)}, {_num(std)}^2) truncated to [a, b] = "
        f"[{_num(a)}, {_num(b)}] (a and b are absolute values, not multiples of std): "
        f"alpha = (a - mean)/std = {_num(alpha)}, beta = (b - mean)/std = {_num(beta)}"
    )
    try:
        t_mean, t_std = truncated_normal_moments(mean, std, a, b)
    except ZeroDivisionError:
        return Expected(
            None, None, None, head + "; [a, b] is too far in the tail to compute the std", a, b
        )
    formula = (
        f"{head}, Z = Phi(beta) - Phi(alpha) = {_num(_normal_mass(alpha, beta))}; "
        f"std' = std * sqrt(1 + (alpha*phi(alpha) - beta*phi(beta))/Z - "
        f"((phi(alpha) - phi(beta))/Z)^2) = {_num(t_std)}, mean' = {_num(t_mean)}"
    )
    return Expected(t_mean, t_std, None, formula, a, b)


def _eye_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows, cols = dims
    return _indicator_expected(min(rows, cols), rows * cols, "identity matrix")


def _dirac_ones(dims: tuple[int, ...], groups: int) -> int:
    return groups * min(dims[0] // groups, dims[1])


def _dirac_stats(dims: tuple[int, ...], v: dict) -> Expected:
    groups = int(v["groups"])
    return _indicator_expected(
        _dirac_ones(dims, groups), math.prod(dims), f"Dirac delta (groups={groups})"
    )


def _dirac_shape_check(dims: tuple[int, ...], v: dict) -> str | None:
    groups = int(v["groups"])
    if dims[0] % groups != 0:
        return f"with groups={groups} needs out_channels (dim 0 = {dims[0]}) divisible by groups"
    if _dirac_ones(dims, groups) > 0 and 0 in dims[2:]:
        return "needs non-empty kernel dims to place the center tap"
    return None


def _fans_of(dims: tuple[int, ...]) -> tuple[int, int]:
    fan = fans(dims)
    assert fan is not None  # applicability guarantees 2+ dims
    return fan


def _xavier_shape_check(dims: tuple[int, ...], v: dict) -> str | None:
    fan_in, fan_out = _fans_of(dims)
    if fan_in + fan_out == 0:
        return "cannot compute its std: fan_in + fan_out = 0"
    return None


def _xavier_std(dims: tuple[int, ...], gain: float) -> tuple[float, str]:
    fan_in, fan_out = _fans_of(dims)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))  # as torch computes it
    text = (
        f"std = gain * sqrt(2 / (fan_in + fan_out)) = {_num(gain)} * "
        f"sqrt(2/({fan_in}+{fan_out})) = {_num(std)}"
    )
    return std, text


def _xavier_uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _xavier_std(dims, v["gain"])
    bound = math.sqrt(3.0) * std
    formula = f"{text}; U(-bound, bound) with bound = sqrt(3) * std = {_num(bound)}"
    return Expected(0.0, std, bound, formula, -bound, bound)


def _xavier_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _xavier_std(dims, v["gain"])
    return Expected(0.0, std, None, f"N(0, std^2) with {text}")


_GAIN_TEXT = {
    "sigmoid": "1",
    "tanh": "5/3",
    "relu": "sqrt(2)",
    "leaky_relu": "sqrt(2 / (1 + a^2))",
    "selu": "3/4",
}


def _kaiming_std(dims: tuple[int, ...], v: dict) -> tuple[float, str]:
    fan_in, fan_out = _fans_of(dims)
    mode, nonlinearity, a = v["mode"], v["nonlinearity"], v["a"]
    fan = fan_in if mode == "fan_in" else fan_out
    gain = nn.init.calculate_gain(nonlinearity, a)  # type: ignore[arg-type]
    std = gain / math.sqrt(fan)  # as torch computes it
    gain_text = _GAIN_TEXT.get(nonlinearity, "1")
    slope = f", a={_num(a)}" if nonlinearity == "leaky_relu" else ""
    text = (
        f"gain = calculate_gain('{nonlinearity}'{slope}) = {gain_text} = {_num(gain)}; "
        f"std = gain / sqrt({mode}) = {_num(gain)}/sqrt({fan}) = {_num(std)}"
    )
    return std, text


def _kaiming_uniform_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _kaiming_std(dims, v)
    bound = math.sqrt(3.0) * std
    formula = f"{text}; U(-bound, bound) with bound = sqrt(3) * std = {_num(bound)}"
    if v["nonlinearity"] == "leaky_relu" and math.isclose(v["a"], math.sqrt(5.0), rel_tol=1e-12):
        formula += (
            f" (a = sqrt(5), PyTorch's default for Linear/Conv weights: gain = sqrt(1/3), "
            f"so bound = 1/sqrt({v['mode']}))"
        )
    return Expected(0.0, std, bound, formula, -bound, bound)


def _kaiming_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    std, text = _kaiming_std(dims, v)
    return Expected(0.0, std, None, f"N(0, std^2) with {text}")


def _lecun_normal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    fan_in, _ = _fans_of(dims)
    std = 1.0 / math.sqrt(fan_in)
    return Expected(
        0.0, std, None, f"N(0, std^2) with std = 1 / sqrt(fan_in) = 1/sqrt({fan_in}) = {_num(std)}"
    )


def _orthogonal_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows = dims[0]
    cols = math.prod(dims) // rows
    gain = v["gain"]
    rms = gain * math.sqrt(min(rows, cols) / (rows * cols))
    formula = (
        f"gain times a semi-orthogonal ({rows} x {cols}) matrix: the entries' RMS is "
        f"gain * sqrt(min(rows, cols) / (rows * cols)) = {_num(gain)} * "
        f"sqrt({min(rows, cols)}/({rows}*{cols})) = {_num(rms)}"
    )
    return Expected(0.0, rms, None, formula)


def _sparse_stats(dims: tuple[int, ...], v: dict) -> Expected:
    rows, _ = dims
    sparsity, std = v["sparsity"], v["std"]
    zeros = math.ceil(sparsity * rows)
    overall = std * math.sqrt((rows - zeros) / rows)
    formula = (
        f"N(0, std^2) with ceil(sparsity * rows) = {zeros} of {rows} entries zeroed in each "
        f"column: std = std * sqrt((rows - zeros) / rows) = {_num(std)} * "
        f"sqrt({rows - zeros}/{rows}) = {_num(overall)}"
    )
    return Expected(0.0, overall, None, formula)


def _uniform_args_check(v: dict) -> str | None:
    if v["a"] > v["b"]:
        return f"needs a <= b, got a={v['a']!r}, b={v['b']!r}"
    return None


_TRUNC_NORMAL_MAX_PROPOSALS = 1e3


def _trunc_normal_args_check(v: dict) -> str | None:
    mean, std, a, b = v["mean"], v["std"], v["a"], v["b"]
    if a >= b:
        return f"needs a < b (absolute bounds), got a={a!r}, b={b!r}"
    # torch.nn.init.trunc_normal_ (torch 2.13) draws N(mean, std^2) and redraws values
    # outside [a, b] when the normal's mass in [a, b] is over 0.3; otherwise it proposes
    # U(a, b) and accepts with the density ratio to the mode. Far from the mean, or with
    # [a, b] very wide in units of std, that loop overflows (a float ** 2) or never ends.
    alpha, beta = (a - mean) / std, (b - mean) / std
    cdf_mass = 0.5 * (math.erf(beta / math.sqrt(2.0)) - math.erf(alpha / math.sqrt(2.0)))
    z_mode = (max(a, min(mean, b)) - mean) / std
    if cdf_mass > 0.3 or z_mode == 0.0:  # mean inside [a, b]: acceptance > exp(-0.32)
        return None
    far = f"[a, b] = [{_num(a)}, {_num(b)}] is {_num(abs(z_mode))} std from the mean"
    if not abs(z_mode) < 1e150:
        return f"{far}: torch's sampler overflows; move [a, b] toward the mean or raise std"
    width = b - a
    mass = _normal_mass(alpha, beta)
    if mass > 0.0 and math.isfinite(width):  # mean acceptance of one U(a, b) proposal
        log_rate = (
            math.log(std)
            + 0.5 * math.log(2.0 * math.pi)
            + math.log(mass)
            + 0.5 * z_mode * z_mode
            - math.log(width)
        )
    else:  # far tail: the density decays like exp(-|z| x / std) over the interval
        decay = abs(z_mode) * (width / std)
        if math.isinf(decay):
            log_rate = -math.inf
        else:
            log_rate = math.log(-math.expm1(-decay) / decay) if decay > 1e-12 else 0.0
    if log_rate < -math.log(_TRUNC_NORMAL_MAX_PROPOSALS):
        proposals = "more than 1e300" if log_rate < -690 else f"about {math.exp(-log_rate):.2g}"
        return (
            f"{far} and [a, b] is too wide for it: torch samples it by rejection from "
            f"U(a, b) and would need {proposals} proposals per value (far too slow); "
            "narrow [a, b] or move it toward the mean"
        )
    return None


def _kaiming_args_check(v: dict) -> str | None:
    if v["nonlinearity"] == "leaky_relu":
        try:
            nn.init.calculate_gain("leaky_relu", v["a"])
        except OverflowError:
            return f"a={v['a']!r} is too large: calculate_gain('leaky_relu', a) overflows on a**2"
    return None


# -- the table -----------------------------------------------------------------------

_FAN_PURPOSE = " to compute fan_in/fan_out"

_ALL: tuple[Scheme, ...] = (
    Scheme(
        name="uniform",
        summary="U(a, b)",
        args=(
            Arg("a", float, 0.0, doc="lower bound of the uniform distribution"),
            Arg("b", float, 1.0, doc="upper bound of the uniform distribution"),
        ),
        uses_generator=True,
        function="torch.nn.init.uniform_",
        stats=_uniform_stats,
        args_check=_uniform_args_check,
    ),
    Scheme(
        name="normal",
        summary="N(mean, std^2)",
        args=(
            Arg("mean", float, 0.0, doc="mean of the normal distribution"),
            Arg("std", float, 1.0, minimum=0.0, doc="standard deviation of the normal"),
        ),
        uses_generator=True,
        function="torch.nn.init.normal_",
        stats=_normal_stats,
    ),
    Scheme(
        name="trunc_normal",
        summary="N(mean, std^2) redrawn until inside the absolute bounds [a, b]",
        args=(
            Arg("mean", float, 0.0, doc="mean of the normal before truncation"),
            Arg(
                "std",
                float,
                1.0,
                minimum=0.0,
                exclusive_minimum=True,
                doc="std of the normal before truncation",
            ),
            Arg("a", float, -2.0, doc="absolute lower cutoff (a value, not a multiple of std)"),
            Arg("b", float, 2.0, doc="absolute upper cutoff (a value, not a multiple of std)"),
        ),
        uses_generator=True,
        function="torch.nn.init.trunc_normal_",
        stats=_trunc_normal_stats,
        args_check=_trunc_normal_args_check,
    ),
    Scheme(
        name="constant",
        summary="every value = val",
        args=(Arg("val", float, REQUIRED, doc="the value to fill the tensor with"),),
        uses_generator=False,
        function="torch.nn.init.constant_",
        stats=lambda dims, v: _constant_expected(v["val"], "constant"),
    ),
    Scheme(
        name="ones",
        summary="every value = 1",
        args=(),
        uses_generator=False,
        function="torch.nn.init.ones_",
        stats=lambda dims, v: _constant_expected(1.0, "ones"),
    ),
    Scheme(
        name="zeros",
        summary="every value = 0",
        args=(),
        uses_generator=False,
        function="torch.nn.init.zeros_",
        stats=lambda dims, v: _constant_expected(0.0, "zeros"),
    ),
    Scheme(
        name="eye",
        summary="identity matrix (keeps as many inputs as possible through a Linear)",
        args=(),
        uses_generator=False,
        min_dims=2,
        max_dims=2,
        function="torch.nn.init.eye_",
        dims_purpose=" (a matrix)",
        stats=_eye_stats,
    ),
    Scheme(
        name="dirac",
        summary="Dirac delta (identity conv: keeps as many input channels as possible)",
        args=(Arg("groups", int, 1, minimum=1, doc="number of groups in the conv layer"),),
        uses_generator=False,
        min_dims=3,
        max_dims=5,
        function="torch.nn.init.dirac_",
        dims_purpose=" (a conv weight: out, in, kernel...)",
        stats=_dirac_stats,
        shape_check=_dirac_shape_check,
    ),
    Scheme(
        name="xavier_uniform",
        summary="Glorot uniform: bound = gain * sqrt(6 / (fan_in + fan_out))",
        args=(_GAIN,),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.xavier_uniform_",
        paper="Glorot & Bengio 2010, Understanding the difficulty of training deep "
        "feedforward neural networks",
        dims_purpose=_FAN_PURPOSE,
        stats=_xavier_uniform_stats,
        shape_check=_xavier_shape_check,
    ),
    Scheme(
        name="xavier_normal",
        summary="Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out))",
        args=(_GAIN,),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.xavier_normal_",
        paper="Glorot & Bengio 2010, Understanding the difficulty of training deep "
        "feedforward neural networks",
        dims_purpose=_FAN_PURPOSE,
        stats=_xavier_normal_stats,
        shape_check=_xavier_shape_check,
    ),
    Scheme(
        name="kaiming_uniform",
        summary="He uniform: bound = gain * sqrt(3 / fan_mode)",
        args=_KAIMING_ARGS,
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_uniform_",
        paper="He et al. 2015, Delving deep into rectifiers",
        dims_purpose=_FAN_PURPOSE,
        stats=_kaiming_uniform_stats,
        args_check=_kaiming_args_check,
    ),
    Scheme(
        name="kaiming_normal",
        summary="He normal: std = gain / sqrt(fan_mode)",
        args=_KAIMING_ARGS,
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_normal_",
        paper="He et al. 2015, Delving deep into rectifiers",
        dims_purpose=_FAN_PURPOSE,
        stats=_kaiming_normal_stats,
        args_check=_kaiming_args_check,
    ),
    Scheme(
        name="orthogonal",
        summary="gain times a (semi) orthogonal matrix; trailing dims flattened",
        args=(_GAIN,),
        uses_generator=True,
        min_dims=2,
        function="_orthogonal_",
        helpers=("_orthogonal_",),
        paper="Saxe et al. 2013, Exact solutions to the nonlinear dynamics of learning in "
        "deep linear neural networks",
        dims_purpose=" (rows x flattened columns)",
        stats=_orthogonal_stats,
    ),
    Scheme(
        name="sparse",
        summary="N(0, std^2) with a fraction sparsity of each column zeroed",
        args=(
            Arg(
                "sparsity",
                float,
                REQUIRED,
                minimum=0.0,
                maximum=1.0,
                exclusive_maximum=True,
                doc="fraction of the entries of each column set to zero",
            ),
            Arg("std", float, 0.01, minimum=0.0, doc="std of the non-zero values"),
        ),
        uses_generator=True,
        min_dims=2,
        max_dims=2,
        function="_sparse_",
        helpers=("_sparse_",),
        paper="Martens 2010, Deep learning via Hessian-free optimization",
        dims_purpose=" (rows x columns)",
        stats=_sparse_stats,
    ),
    Scheme(
        name="lecun_normal",
        summary="LeCun normal: std = 1 / sqrt(fan_in)",
        args=(),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_normal_",
        fixed=(("mode", "fan_in"), ("nonlinearity", "linear")),
        paper="LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017, "
        "Self-Normalizing Neural Networks",
        dims_purpose=_FAN_PURPOSE,
        stats=_lecun_normal_stats,
    ),
    Scheme(
        name="keep",
        summary="leave the tensor as it is",
        args=(),
        uses_generator=False,
        function=None,
        stats=None,
    ),
)

SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in _ALL}
"""Every scheme by plan name, in table order."""


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; :class:`SchemeError` with a close match and the list."""
    scheme = SCHEMES.get(name)
    if scheme is not None:
        return scheme
    message = f'unknown scheme "{name}"'
    close = difflib.get_close_matches(str(name), list(SCHEMES), n=1, cutoff=0.6)
    if close:
        message += f'; did you mean "{close[0]}"?'
    else:
        message += ";"
    raise SchemeError(f"{message} schemes: {', '.join(SCHEMES)}", "scheme")


# What torch's functions can fill besides floating-point tensors (checked against torch:
# tests/test_schemes.py tries every scheme on every dtype).
_FILLS_ANY_DTYPE = frozenset({"keep", "zeros", "ones", "constant", "eye", "dirac"})
_NOT_FOR_COMPLEX = frozenset({"trunc_normal", "orthogonal"})


def dtype_problem(
    scheme: str, args: Mapping[str, object], dtype: str, name: str = ""
) -> str | None:
    """Why ``scheme`` cannot fill a tensor of ``dtype`` (a torch dtype name such as
    ``int64``), else None: random schemes need floating point (complex for most);
    ``constant`` needs a value the integer or bool dtype holds exactly."""
    kind = getattr(torch, dtype, None)
    if not isinstance(kind, torch.dtype):
        return None
    what = f"{name} is {dtype}" if name else f"the tensor is {dtype}"
    if kind.is_complex:
        if scheme in _NOT_FOR_COMPLEX:
            return f"{scheme} does not support complex tensors; {what}"
        return None
    if kind.is_floating_point or scheme in ("keep", "default"):
        return None
    if scheme not in _FILLS_ANY_DTYPE:
        return f"{scheme} draws random values and needs a floating-point tensor; {what}"
    if scheme == "constant":
        value = args.get("val")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if kind == torch.bool and value not in (0, 1):
                return f"constant val={value!r} is not 0 or 1; {what}"
            if kind != torch.bool and (not math.isfinite(value) or value != int(value)):
                return f"constant val={value!r} is not a whole number; {what}"
            if kind != torch.bool and not (
                torch.iinfo(kind).min <= int(value) <= torch.iinfo(kind).max
            ):
                return f"constant val={value!r} does not fit in {dtype}; {what}"
    return None


def fans(shape: Sequence[int]) -> tuple[int, int] | None:
    """``(fan_in, fan_out)`` exactly as ``torch.nn.init._calculate_fan_in_and_fan_out``.

    For a tensor of shape (out, in, *kernel): fan_in = in * prod(kernel) and
    fan_out = out * prod(kernel). None for fewer than 2 dims.
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) < 2:
        return None
    receptive_field = 1
    for size in dims[2:]:
        receptive_field *= size
    return dims[1] * receptive_field, dims[0] * receptive_field


# -- PyTorch's own defaults ------------------------------------------------------------


def _rule(name: str, args: Mapping[str, object] | None = None) -> tuple[str, dict]:
    return name, SCHEMES[name].validate(args or {})


def _symmetric_uniform(bound: float) -> tuple[str, dict]:
    if bound == 0:
        return _rule("uniform", {"a": 0.0, "b": 0.0})
    return _rule("uniform", {"a": -bound, "b": bound})


def _torch_owned(module: nn.Module, method: str) -> bool:
    """Whether ``module``'s class runs torch's own ``method`` (not a user override)."""
    function = getattr(type(module), method, None)
    return function is not None and getattr(function, "__module__", "").startswith("torch.")


_NORM_TYPES: tuple[type, ...] = tuple(
    t
    for t in (
        getattr(nn.modules.batchnorm, "_NormBase", None),  # BatchNorm*, InstanceNorm*, Sync
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t is not None
)
_CONV_BASE: type = nn.modules.conv._ConvNd
_NON_DYNAMICALLY_QUANTIZABLE = nn.modules.linear.NonDynamicallyQuantizableLinear


def default_init(module: nn.Module, param_name: str) -> tuple[str, dict] | None:
    """What PyTorch's own ``reset_parameters`` does to ``module``'s parameter ``param_name``.

    Returns ``(scheme, args)`` from the table (args normalized, every key present), or
    None when the module type is unknown, overrides torch's reset, or the parameter is
    not materialized yet (lazy modules). ``param_name`` is relative to ``module`` and may
    be dotted: a module that re-initializes its children's parameters gets its say first
    (``nn.Transformer`` sets every parameter with 2+ dims to xavier_uniform;
    ``nn.MultiheadAttention`` zeros ``out_proj.bias``), then the child that owns the
    parameter is asked.

    - Linear, Conv*d, ConvTranspose*d: weight kaiming_uniform(a=sqrt(5)), i.e.
      U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias uniform(-bound, bound) with
      bound = 1/sqrt(fan_in of the weight) (0 when fan_in is 0).
    - Bilinear: weight and bias uniform(+-1/sqrt(in1_features)).
    - Embedding, EmbeddingBag: normal(0, 1) (the padding row is left to the caller).
    - BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm, RMSNorm: weight ones, bias zeros.
    - RNN, LSTM, GRU and their cells: every parameter uniform(+-1/sqrt(hidden_size)).
    - MultiheadAttention: in_proj_weight and q/k/v_proj_weight xavier_uniform,
      in_proj_bias and out_proj.bias zeros, bias_k/bias_v xavier_normal; out_proj.weight
      is Linear's. Asked directly, the ``NonDynamicallyQuantizableLinear`` out_proj
      answers zeros for its bias, since torch creates that class only inside
      MultiheadAttention, which always zeros it.
    - PReLU: constant(module.init), 0.25 by default.
    """
    head, dot, rest = param_name.partition(".")
    if dot:
        composite = _composite_default(module, param_name)
        if composite is not None:
            return composite
        child = module._modules.get(head)
        if child is None:
            raise ValueError(f"{type(module).__name__} has no submodule {head!r} ({param_name})")
        return default_init(child, rest)

    param = module._parameters.get(param_name)
    if param is None:
        raise ValueError(f"{type(module).__name__} has no parameter {param_name!r}")
    if isinstance(param, nn.parameter.UninitializedParameter):
        return None
    return _own_default(module, param_name)


def _composite_default(module: nn.Module, param_name: str) -> tuple[str, dict] | None:
    """Rules by which a module re-initializes its descendants' parameters."""
    if isinstance(module, nn.Transformer) and _torch_owned(module, "_reset_parameters"):
        param = module.get_parameter(param_name)
        if param.dim() > 1 and not isinstance(param, nn.parameter.UninitializedParameter):
            return _rule("xavier_uniform")
    if (
        isinstance(module, nn.MultiheadAttention)
        and _torch_owned(module, "_reset_parameters")
        and param_name == "out_proj.bias"
    ):
        return _rule("zeros")
    return None


def _own_default(module: nn.Module, name: str) -> tuple[str, dict] | None:
    """Rules for a parameter the module registered itself."""
    if isinstance(module, nn.MultiheadAttention):
        if not _torch_owned(module, "_reset_parameters"):
            return None
        if name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return _rule("xavier_uniform")
        if name == "in_proj_bias":
            return _rule("zeros")
        if name in ("bias_k", "bias_v"):
            return _rule("xavier_normal")
        return None

    if isinstance(module, (nn.Linear, _CONV_BASE)):
        if not _torch_owned(module, "reset_parameters"):
            return None
        if name == "weight":
            return _rule("kaiming_uniform", {"a": math.sqrt(5)})
        if name == "bias":
            if isinstance(module, _NON_DYNAMICALLY_QUANTIZABLE):
                return _rule("zeros")
            fan = fans(module.weight.shape)
            fan_in = fan[0] if fan is not None else 0
            return _symmetric_uniform(1 / math.sqrt(fan_in) if fan_in > 0 else 0.0)
        return None

    if isinstance(module, nn.Bilinear):
        if not _torch_owned(module, "reset_parameters"):
            return None
        return _symmetric_uniform(1 / math.sqrt(module.weight.size(1)))

    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        if not _torch_owned(module, "reset_parameters") or name != "weight":
            return None
        return _rule("normal", {"mean": 0.0, "std": 1.0})

    if isinstance(module, _NORM_TYPES):
        if not _torch_owned(module, "reset_parameters"):
            return None
        return {"weight": _rule("ones"), "bias": _rule("zeros")}.get(name)

    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        if not _torch_owned(module, "reset_parameters"):
            return None
        hidden = module.hidden_size
        return _symmetric_uniform(1.0 / math.sqrt(hidden) if hidden > 0 else 0.0)

    if isinstance(module, nn.PReLU):
        if not _torch_owned(module, "reset_parameters") or name != "weight":
            return None
        return _rule("constant", {"val": float(getattr(module, "init", 0.25))})

    return None
