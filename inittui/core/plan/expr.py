"""Plan expressions: ``std = "0.02 / sqrt(2 * config.n_layer)"``, parsed into a tree and
evaluated per parameter. Never ``eval``'d: the text goes through :func:`ast.parse` (a parse
only, nothing runs) and the syntax tree is copied node by node against a whitelist into
this module's own tuples; anything else is refused in one line.

Grammar: numbers; the names ``fan_in``, ``fan_out``, ``depth``, ``layer``, ``width``,
``pi``, ``e``; ``config.NAME`` and ``arg.NAME`` (one level); the calls ``sqrt(x)``,
``log(x)``, ``exp(x)``, ``abs(x)``, ``min(x, y, ...)``, ``max(x, y, ...)``; unary ``-`` and
``+``; binary ``+ - * / **``; parentheses. Every value is a float; every intermediate
result must be a finite real number (``10 ** 1000``, ``1 / 0``, ``log(0)`` and
``sqrt(-1)`` are errors, never inf or nan).

The context of a parameter (what each name is worth) lives in :mod:`.expr_context`.
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from inittui.core.errors import InittuiError

MAX_LENGTH = 200
MAX_NODES = 100  # nodes of the tree (numbers, names, operators, calls)
NAMES = ("fan_in", "fan_out", "depth", "layer", "width", "pi", "e")
CONSTANTS = {"pi": math.pi, "e": math.e}
PREFIXES = ("config", "arg")  # config.NAME, arg.NAME
FUNCTIONS = ("sqrt", "log", "exp", "min", "max", "abs")
KNOWN = ", ".join((*NAMES, "config.NAME", "arg.NAME"))

# The tree: ("num", value) | ("name", name) | ("neg", node) | ("bin", op, left, right)
# | ("call", function, (node, ...)). ``name`` is "fan_in", ..., or "config.X" / "arg.X".
Node = tuple

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class ExpressionError(InittuiError):
    """An expression that cannot be parsed or evaluated; the message says why (the caller
    adds the rule, the key and the parameter)."""


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, its tree and the names it uses."""

    text: str
    tree: Node
    names: frozenset[str]

    @property
    def constant(self) -> bool:
        """Uses no name that depends on the parameter or the model (``pi`` and ``e``
        are constants)."""
        return self.names <= set(CONSTANTS)

    def evaluate(self, values: Mapping[str, float] | None = None) -> float:
        """The value with ``values`` for the names (``pi`` and ``e`` are built in).
        Raises :class:`ExpressionError` (division by zero, log of <= 0, overflow, ...)."""
        return _evaluate(self.tree, {**CONSTANTS, **(values or {})})


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expression:
    """Parse ``text`` (cached: a plan's expressions are parsed once). Raises
    :class:`ExpressionError` naming what is not allowed."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"is {len(text)} characters long; expressions are at most {MAX_LENGTH}"
        )
    if not text.strip():
        raise ExpressionError('is empty; write a number or e.g. "1 / sqrt(fan_in)"')
    try:
        parsed = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"is not a valid expression ({exc.msg})") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # null bytes, deep nesting
        raise ExpressionError(f"is not a valid expression ({type(exc).__name__})") from None
    names: set[str] = set()
    count = [0]
    try:
        tree = _convert(parsed.body, names, count)
    except RecursionError:
        raise ExpressionError("is nested too deeply") from None
    expression = Expression(text, tree, frozenset(names))
    if expression.constant:
        expression.evaluate()  # 10 ** 1000, 1 / 0: refused when the plan is read
    return expression


def _convert(node: ast.AST, names: set[str], count: list[int]) -> Node:
    """The whitelisted copy of one syntax node; anything else raises."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise ExpressionError(f"has more than {MAX_NODES} terms; write a shorter expression")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"{_what(node)} is not allowed; only numbers")
        try:
            number = float(value)
        except OverflowError:
            raise ExpressionError("has a number too large for a float") from None
        if not math.isfinite(number):
            raise ExpressionError("has a number too large for a float")
        return ("num", number)
    if isinstance(node, ast.Name):
        return ("name", _known_name(node.id, names))
    if isinstance(node, ast.Attribute):
        return ("name", _dotted_name(node, names))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _convert(node.operand, names, count)
        return ("neg", operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _convert(node.left, names, count)
        right = _convert(node.right, names, count)
        return ("bin", _BINARY[type(node.op)], left, right)
    if isinstance(node, ast.Call):
        return _call(node, names, count)
    raise ExpressionError(
        f"{_what(node)} is not allowed; use numbers, {KNOWN}, "
        f"{', '.join(FUNCTIONS)} and + - * / ** with parentheses"
    )


def _call(node: ast.Call, names: set[str], count: list[int]) -> Node:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        called = node.func.id if isinstance(node.func, ast.Name) else _what(node.func)
        raise ExpressionError(f"calls {called}; the functions are {', '.join(FUNCTIONS)}")
    function = node.func.id
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise ExpressionError(f"{function}() takes plain arguments, no keywords or *")
    wanted = "2 or more" if function in ("min", "max") else "1"
    if (len(node.args) < 2) if function in ("min", "max") else (len(node.args) != 1):
        raise ExpressionError(f"{function}() takes {wanted} argument(s), got {len(node.args)}")
    return ("call", function, tuple(_convert(arg, names, count) for arg in node.args))


def _known_name(name: str, names: set[str]) -> str:
    if name in NAMES:
        names.add(name)
        return name
    if name in PREFIXES:
        raise ExpressionError(f"uses {name} alone; write {name}.NAME")
    if name in FUNCTIONS:
        raise ExpressionError(f"uses the function {name} without calling it; write {name}(x)")
    close = difflib.get_close_matches(name, NAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ExpressionError(f"uses unknown name {name!r}{hint}; known: {KNOWN}")


def _dotted_name(node: ast.Attribute, names: set[str]) -> str:
    if not isinstance(node.value, ast.Name) or node.value.id not in PREFIXES:
        raise ExpressionError(
            f"{_what(node)} is not allowed; attributes only as config.NAME or arg.NAME (one level)"
        )
    if node.attr.startswith("_"):
        raise ExpressionError(f"{node.value.id}.{node.attr}: names starting with _ are refused")
    name = f"{node.value.id}.{node.attr}"
    names.add(name)
    return name


def _what(node: ast.AST) -> str:
    """How to name a refused construct in a message."""
    if isinstance(node, ast.Constant):
        return f"the {type(node.value).__name__} constant {node.value!r}"[:60]
    if isinstance(node, ast.Attribute):
        return f"the attribute .{node.attr}"
    if isinstance(node, ast.Call):
        return "this call"
    return {
        ast.Subscript: "a subscript [...]",
        ast.Compare: "a comparison",
        ast.Lambda: "lambda",
        ast.JoinedStr: "an f-string",
        ast.BoolOp: "and/or",
        ast.IfExp: "if/else",
        ast.NamedExpr: ":=",
    }.get(type(node), type(node).__name__)


def quoted(text: str) -> str:
    """The expression as a one-line string in double quotes (newlines escaped)."""
    return json.dumps(text)


def checked_expression(label: str, key: str, text: str, lead: str = "") -> Expression:
    """``text`` parsed, or an :class:`InittuiError` naming the rule and the key (after
    ``lead``, e.g. ``"scale must be a finite number or an expression; "``)."""
    try:
        return parse_expression(text)
    except ExpressionError as exc:
        raise InittuiError(f"{label}: {lead}{key} = {quoted(text)} {exc}") from None


# -- evaluation -------------------------------------------------------------------------


def _evaluate(node: Node, values: Mapping[str, float]) -> float:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "name":
        if node[1] not in values:
            raise ExpressionError(f"has no value for {node[1]}")
        return float(values[node[1]])
    if kind == "neg":
        return -_evaluate(node[1], values)
    if kind == "bin":
        return _binary(node[1], _evaluate(node[2], values), _evaluate(node[3], values))
    return _function(node[1], [_evaluate(arg, values) for arg in node[2]])


def _binary(op: str, left: float, right: float) -> float:
    if op == "/" and right == 0:
        raise ExpressionError(f"divides by zero ({_num(left)} / 0)")
    try:
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif op == "/":
            result = left / right
        else:
            result = left**right
    except OverflowError:
        raise ExpressionError(f"overflows ({_num(left)} {op} {_num(right)})") from None
    except ZeroDivisionError:
        raise ExpressionError(f"divides by zero ({_num(left)} ** {_num(right)})") from None
    if isinstance(result, complex):
        raise ExpressionError(f"is not a real number ({_num(left)} ** {_num(right)})")
    return _finite(result, f"{_num(left)} {op} {_num(right)}")


def _function(name: str, args: list[float]) -> float:
    x = args[0]
    if name == "sqrt":
        if x < 0:
            raise ExpressionError(f"takes sqrt of a negative number ({_num(x)})")
        return math.sqrt(x)
    if name == "log":
        if x <= 0:
            raise ExpressionError(f"takes log of {_num(x)} (log needs a positive number)")
        return math.log(x)
    if name == "exp":
        try:
            return math.exp(x)
        except OverflowError:
            raise ExpressionError(f"overflows (exp({_num(x)}))") from None
    if name == "abs":
        return abs(x)
    return min(args) if name == "min" else max(args)


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ExpressionError(f"overflows ({what})")
    return value


def _num(value: float) -> str:
    return f"{value:.6g}"
