"""Scheme arguments: :class:`Arg`, their validation and the shared argument rows.

Every argument is named as torch names it; :func:`check_value` checks one value against
its :class:`Arg` (type, finiteness, choices, range) with messages that name the key and
the allowed values.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from inittui.core.errors import InittuiError


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
    example: object = None  # a REQUIRED argument: a valid value to try the scheme with

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe_range(self) -> str | None:
        """The allowed range as text (``">= 0"``, ``"in [0, 1)"``), or None if unbounded."""
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"in {left}{fmt_num(lo)}, {fmt_num(hi)}{right}"
        if lo is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {fmt_num(lo)}"
        if hi is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {fmt_num(hi)}"
        return None

    def sample(self) -> object:
        """The default, or for a required argument its :attr:`example`."""
        return self.example if self.required else self.default


# -- formatting and checking helpers --------------------------------------------------


def fmt_num(x: float) -> str:
    """A number for formula text: 4 significant digits, ints without a decimal point."""
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}"


def literal(value: object) -> str:
    """Python source for a validated argument value (finite float, int or str)."""
    return repr(value)  # validated floats are finite, and repr round-trips them exactly


def unknown_key_message(scheme: str, key: object, allowed: Sequence[str]) -> str:
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


def check_value(scheme: str, arg: Arg, value: object) -> object:
    where = f'key "{arg.name}" of scheme {scheme}'
    got = f"got {type(value).__name__} {value!r}"
    if arg.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemeError(f"{where} must be {_type_name(float)}, {got}", arg.name)
        try:
            value = float(value)  # an integer beyond float64 (10**400) overflows
        except OverflowError:
            value = math.inf
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
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an integer argument beyond float64
            number = math.inf if value > 0 else -math.inf  # type: ignore[operator]
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

GAIN_ARG = Arg("gain", float, 1.0, minimum=0.0, doc="scaling factor applied to the std")
KAIMING_ARGS = (
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
