"""Globs matched in linear time: the select glob over dotted paths and the params glob
over local names, each compiled once to a small automaton and run by simulating every
state at once (a Thompson NFA), so no pattern can backtrack: matching costs at most
(pattern length) x (text length) steps, ``*a*a*a*a*a*a*a*a*b`` included.

The select glob means what the earlier regex translation meant: ``*`` any run of
characters without a dot, ``**`` any run (dots included), ``.**`` nothing or a dot and any
run (``encoder.**`` is the encoder and its whole subtree), ``?`` one character but a dot,
``[...]`` / ``[!...]`` one character of (not of) a class, anything else itself. The params
glob is :func:`fnmatch.fnmatchcase`'s language (``*`` and ``?`` cross dots there).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

# Token kinds. ``STAR``-like tokens loop on themselves and may be skipped.
_CHAR = 0  # one character equal to data
_ONE = 1  # one character for which data(ch) is true
_STAR = 2  # zero or more characters for which data(ch) is true
_OPT_DOT = 3  # ``.**``: skip it and the next token, or take a "." into the next token

Token = tuple[int, object]


def _not_dot(ch: str) -> bool:
    return ch != "."


def _not_newline(ch: str) -> bool:  # the old regex's ``.``
    return ch != "\n"


def _anything(ch: str) -> bool:
    return True


def _class_test(text: str, flags: int = 0) -> Callable[[str], bool]:
    """One character against a bracket class, through ``re`` on that one character
    (a class cannot backtrack)."""
    compiled = re.compile(text, flags)
    return lambda ch: compiled.fullmatch(ch) is not None


class Glob:
    """A compiled glob; :meth:`match` says whether the whole text matches."""

    __slots__ = ("pattern", "tokens", "_literal")

    def __init__(self, pattern: str, tokens: list[Token]) -> None:
        self.pattern = pattern
        self.tokens = tuple(tokens)
        chars = [data for kind, data in tokens if kind == _CHAR]
        self._literal = "".join(chars) if len(chars) == len(tokens) else None  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    def _closure(self, states: set[int]) -> set[int]:
        tokens, todo = self.tokens, list(states)
        while todo:
            state = todo.pop()
            if state >= len(tokens):
                continue
            kind = tokens[state][0]
            skip = state + 1 if kind == _STAR else state + 2 if kind == _OPT_DOT else None
            if skip is not None and skip not in states:
                states.add(skip)
                todo.append(skip)
        return states

    def match(self, text: str) -> bool:
        """True when ``text`` as a whole matches (what ``re.fullmatch`` would say)."""
        if self._literal is not None:
            return text == self._literal
        tokens, end = self.tokens, len(self.tokens)
        states = self._closure({0})
        for ch in text:
            following: set[int] = set()
            for state in states:
                if state == end:
                    continue
                kind, data = tokens[state]
                if kind == _CHAR:
                    if ch == data:
                        following.add(state + 1)
                elif kind == _ONE:
                    if data(ch):  # type: ignore[operator]
                        following.add(state + 1)
                elif kind == _STAR:
                    if data(ch):  # type: ignore[operator]
                        following.add(state)
                elif ch == ".":  # _OPT_DOT
                    following.add(state + 1)
            if not following:
                return False
            states = self._closure(following)
        return end in states


def compile_select_glob(select: str) -> Glob:
    """The select glob ``select`` (not ``type:``) as a :class:`Glob`.

    Raises ValueError for an unclosed ``[`` or a class ``re`` cannot read."""
    tokens: list[Token] = []
    i = 0
    while i < len(select):
        c = select[i]
        if select.startswith(".**", i):
            tokens += [(_OPT_DOT, None), (_STAR, _not_newline)]
            i += 3
        elif select.startswith("**", i):
            tokens.append((_STAR, _not_newline))
            i += 2
        elif c == "*":
            tokens.append((_STAR, _not_dot))
            i += 1
        elif c == "?":
            tokens.append((_ONE, _not_dot))
            i += 1
        elif c == "[":
            end = select.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed '[' in select {select!r}")
            text = select[i : end + 1].replace("[!", "[^")
            try:
                tokens.append((_ONE, _class_test(text)))
            except re.error as exc:
                raise ValueError(f"bad class {text!r} in select {select!r}: {exc}") from None
            i = end + 1
        else:
            tokens.append((_CHAR, c))
            i += 1
    return Glob(select, tokens)


def compile_name_glob(pattern: str) -> Glob:
    """An :func:`fnmatch.fnmatchcase` pattern as a :class:`Glob` (same language: ``*``
    and ``?`` match any character, ``[!...]`` negates, an unclosed ``[`` is itself)."""
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not tokens or tokens[-1] != (_STAR, _anything):
                tokens.append((_STAR, _anything))
        elif c == "?":
            tokens.append((_ONE, _anything))
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                tokens.append((_CHAR, "["))
            else:
                # fnmatch's own translation of the one class, matched against one character
                tokens.append((_ONE, _class_test(fnmatch.translate(pattern[i - 1 : j + 1]))))
                i = j + 1
        else:
            tokens.append((_CHAR, c))
    return Glob(pattern, tokens)
