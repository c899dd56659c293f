"""One row of the scheme table: :class:`Scheme` and everything a row answers.

A row knows its arguments (:meth:`Scheme.validate`), the shapes and dtypes it can fill
(:meth:`Scheme.applicability`, :meth:`Scheme.dtype_problem`, :meth:`Scheme.fit_problem`),
whether it is fan-based, the values it produces (:meth:`Scheme.expected`), the lints its
arguments earn (:meth:`Scheme.rule_lints`) and the one statement that performs it
(:meth:`Scheme.code`; :meth:`Scheme.apply` executes exactly that statement). A row with a
``resolver`` (``default``) stands for another row per module: :meth:`Scheme.resolve` gives
the concrete row and arguments for one parameter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType

import torch
from torch import nn

from inittui.core.formatting import shape as shape_text
from inittui.core.runtime import RUNTIME_HELPERS
from inittui.core.schemes.args import (
    Arg,
    SchemeError,
    check_value,
    literal,
    unknown_key_message,
)
from inittui.core.schemes.stats import Expected

_IntervalFn = Callable[[tuple[int, ...], dict[str, object]], "tuple[str, float, float] | None"]
_DtypeCheckFn = Callable[[dict[str, object], torch.dtype, str, str], "str | None"]
_LintFn = Callable[[dict[str, object]], "list[tuple[str, str]]"]
_ResolverFn = Callable[[nn.Module, str], "tuple[Scheme, dict[str, object]] | None"]
_NoteFn = Callable[[Sequence[type]], "str | None"]
DTYPE_KINDS = ("any", "float", "real")

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
    # The statement passes the step's fans (fan_in=, fan_out=) to ``function`` itself, so
    # no permuted view or fallback draw is needed for computed fans (variance_scaling).
    fans_in_call: bool = False
    paper: str = ""
    dims_purpose: str = ""
    stats: _StatsFn | None = field(default=None, repr=False, compare=False)
    shape_check: _CheckFn | None = field(default=None, repr=False, compare=False)
    args_check: _ArgsCheckFn | None = field(default=None, repr=False, compare=False)
    # What it fills: "any" dtype, "float" (floating point and complex) or "real"
    # (floating point only): checked against torch in tests/test_schemes.py.
    dtypes: str = "float"
    fan_based: bool = False  # its values depend on fan_in/fan_out
    whole_matrix: bool = False  # fans or orthogonality: a fused gate matrix is not N gates
    # The values torch must be able to store in the dtype: (text, low, high).
    interval: _IntervalFn | None = field(default=None, repr=False, compare=False)
    # A further dtype check (constant's integer values, trunc_normal's sampler precision).
    dtype_check: _DtypeCheckFn | None = field(default=None, repr=False, compare=False)
    lints: _LintFn | None = field(default=None, repr=False, compare=False)
    # ``default``: the concrete row and arguments per (module, parameter name).
    resolver: _ResolverFn | None = field(default=None, repr=False, compare=False)
    # A sentence for the assign dialog about the module types a rule covers.
    scope_note: _NoteFn | None = field(default=None, repr=False, compare=False)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(arg.name for arg in self.args)

    def defaults(self) -> dict[str, object]:
        """The arguments that have a default, with it."""
        return {arg.name: arg.default for arg in self.args if not arg.required}

    def sample_args(self) -> dict[str, object]:
        """Valid arguments to try the row with before the user typed any: the defaults,
        and each required argument's example value."""
        return {arg.name: arg.sample() for arg in self.args}

    @property
    def per_module(self) -> bool:
        """Whether the row stands for another row per module (``default``)."""
        return self.resolver is not None

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
        if raw and self.per_module and not allowed:
            raise SchemeError(
                f"scheme '{self.name}' takes no arguments, got {', '.join(sorted(raw))}"
            )
        for key in raw:
            if key not in allowed:
                raise SchemeError(unknown_key_message(self.name, key, allowed), str(key))
        values: dict[str, object] = {}
        for arg in self.args:
            if arg.name in raw:
                values[arg.name] = check_value(self.name, arg, raw[arg.name])
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
        where = f"{name} has shape {shape_text(dims)}" if name else f"got shape {shape_text(dims)}"
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

    # -- dtypes -----------------------------------------------------------------------

    def dtype_problem(self, args: Mapping[str, object], dtype: str, name: str = "") -> str | None:
        """Why this row cannot fill a tensor of ``dtype`` (a torch dtype name such as
        ``int64``), else None: random schemes need floating point (complex for most);
        ``constant`` needs a value the integer or bool dtype holds exactly."""
        kind = getattr(torch, dtype, None)
        if not isinstance(kind, torch.dtype):
            return None
        what = f"{name} is {dtype}" if name else f"the tensor is {dtype}"
        if kind.is_complex:
            if self.dtypes == "real":
                return f"{self.name} does not support complex tensors; {what}"
            return None
        if kind.is_floating_point or self.per_module or self.function is None:
            return None
        if self.dtypes != "any":
            return f"{self.name} draws random values and needs a floating-point tensor; {what}"
        if self.dtype_check is not None:
            return self.dtype_check(dict(args), kind, dtype, what)
        return None

    def fit_problem(
        self,
        shape: Sequence[int],
        args: Mapping[str, object],
        dtype: str,
        extra: Sequence[tuple[str, float, float]] = (),
    ) -> str | None:
        """Why torch would refuse to fill a floating-point ``dtype`` tensor with this row's
        values (and the ``extra`` intervals, e.g. a forget bias), if it would:
        ``uniform_`` checks that a, b and b - a fit in the dtype, ``fill_`` that the value
        does (float16's range is only +-65504)."""
        try:
            info = torch.finfo(getattr(torch, dtype))
        except (AttributeError, TypeError):
            return None
        values = dict(args)
        dims = tuple(int(s) for s in shape)
        if self.dtype_check is not None:
            problem = self.dtype_check(values, getattr(torch, dtype), dtype, "")
            if problem:
                return problem
        intervals = list(extra)
        own = self.interval(dims, values) if self.interval is not None else None
        if own is not None:
            intervals.insert(0, own)
        for what, low, high in intervals:
            low, high = float(low), float(high)
            if low < info.min or high > info.max or high - low > info.max:
                return (
                    f"{self.name} {what} does not fit in {dtype} (largest value {info.max:g}); "
                    "torch refuses to fill the tensor"
                )
        return None

    # -- per module and lints -----------------------------------------------------------

    def resolve(
        self, module: nn.Module, local_name: str, args: Mapping[str, object] | None
    ) -> tuple[Scheme, dict[str, object]] | None:
        """The concrete row and validated arguments for ``module``'s parameter
        ``local_name``: this row itself, or for ``default`` torch's own choice (None when
        torch has no known default for it)."""
        if self.resolver is None:
            return self, self.validate(args)
        self.validate(args)
        return self.resolver(module, local_name)

    def rule_lints(self, args: Mapping[str, object]) -> list[tuple[str, str]]:
        """``(kind, message)`` for arguments that likely do not mean what they say."""
        return [] if self.lints is None else self.lints(dict(args))

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
                f"shape {shape_text(dims)} has no elements: nothing to initialize",
            )
        return self.stats(dims, values)

    # -- code -------------------------------------------------------------------------

    def code(
        self,
        target: str,
        args: Mapping[str, object],
        generator: str = "g",
        fans: tuple[int | float | None, int | float | None] | None = None,
    ) -> str:
        """One Python statement that initializes ``target`` in place.

        ``target`` is an expression naming a tensor (``"p"``, ``"p[0:128]"``), ``generator``
        the name of a ``torch.Generator`` (or of None). Every argument is spelled out with
        ``repr`` (floats round-trip exactly); the statement uses only ``torch`` and the
        helpers in :attr:`helpers`, e.g.
        ``torch.nn.init.kaiming_normal_(p, a=0.0, mode='fan_in', nonlinearity='relu',
        generator=g)``. A row with ``fans_in_call`` also prints ``fans`` (the step's
        effective fans) as ``fan_in=``, ``fan_out=`` when given.
        """
        values = self.validate(args)
        if self.per_module:
            raise SchemeError(f"{self.name} is resolved per module; resolve it first")
        if self.function is None:
            return "pass"
        parts = [target]
        parts += [f"{key}={literal(value)}" for key, value in self.fixed]
        parts += [f"{key}={literal(value)}" for key, value in values.items()]
        if self.fans_in_call and fans is not None and None not in fans:
            parts += [f"fan_in={fans[0]!r}", f"fan_out={fans[1]!r}"]
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


TAIL_SIGMAS = 9.0
"""How far from the mean a normal draw can land, in stds: torch's Box-Muller on doubles
stops near 8.6 (on floats near 5.8), so mean +- 9 std holds every value drawn."""


def largest_value(expected: Expected, args: Mapping[str, object]) -> float | None:
    """The largest magnitude a scheme with ``expected`` statistics can write: its interval
    when it has one, else mean +- bound or mean +- :data:`TAIL_SIGMAS` std; at least the
    ``gain`` it multiplies by (orthogonal, eye, dirac). None when nothing can be said."""
    found: list[float] = []
    if expected.low is not None and expected.high is not None:
        found += [abs(expected.low), abs(expected.high)]
    elif expected.mean is not None and expected.std is not None:
        spread = expected.bound if expected.bound is not None else TAIL_SIGMAS * expected.std
        found.append(abs(expected.mean) + abs(spread))
    gain = args.get("gain")
    if isinstance(gain, (int, float)) and not isinstance(gain, bool):
        found.append(abs(float(gain)))
    return max(found, default=None)


def overflow_problem(
    scheme: str,
    expected: Expected,
    args: Mapping[str, object],
    scale: float | None,
    dtype: str,
) -> str | None:
    """Why the values a scheme writes (``expected``, then times ``scale``) would not all be
    finite in the floating ``dtype``, else None (integer dtypes: see
    :meth:`Scheme.fit_problem`)."""
    try:
        largest = float(torch.finfo(getattr(torch, dtype)).max)
    except (AttributeError, TypeError):
        return None
    holds = f"do not fit in {dtype} (largest value {largest:g})"
    top = largest_value(expected, args)
    factor = abs(scale) if scale is not None else None
    if factor is not None and not factor <= largest:
        return f"scale={scale!r} does not fit in {dtype} (largest value {largest:g})"
    if top is not None and not top <= largest:
        return f"{scheme} gives values up to {top:.3g}, which {holds}"
    if top is not None and factor is not None and not top * factor <= largest:
        return f"scale={scale!r} makes values up to {top * factor:.3g}, which {holds}"
    return None
