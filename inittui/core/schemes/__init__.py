"""The scheme table: the one place in inittui that knows an init scheme.

Each row (:class:`Scheme`) owns its arguments and their validation, the ranks and dtypes
it fills, whether it is fan-based, its value interval, its expected mean/std with the
formula (:class:`Expected`), its lints and the one Python statement that performs it.
:meth:`Scheme.apply` executes exactly the statement that :meth:`Scheme.code` prints, so
the in-app result and an exported script can never disagree. The statement calls
``torch.nn.init`` or a helper from :mod:`inittui.core.runtime` (whose source an exported
script copies), never a re-implemented distribution.

``default`` (PyTorch's own ``reset_parameters``) is a row too (:data:`DEFAULT`), which
:meth:`Scheme.resolve` turns into the concrete row per parameter; :func:`default_init`
says the same as a ``(scheme, args)`` pair.

Modules: :mod:`.args` (arguments and their checks), :mod:`.stats` (expected values and
formulas, fans), :mod:`.row` (the :class:`Scheme` row), :mod:`.table` (the rows),
:mod:`.defaults` (PyTorch's defaults and the ``default`` row).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from inittui.core.schemes.args import NONLINEARITIES, REQUIRED, Arg, SchemeError
from inittui.core.schemes.defaults import DEFAULT, default_init
from inittui.core.schemes.row import Scheme
from inittui.core.schemes.stats import Expected, fans, truncated_normal_moments
from inittui.core.schemes.table import SCHEMES

__all__ = [
    "DEFAULT",
    "NONLINEARITIES",
    "REQUIRED",
    "ROWS",
    "SCHEMES",
    "Arg",
    "Expected",
    "Scheme",
    "SchemeError",
    "default_init",
    "dtype_problem",
    "fans",
    "get_scheme",
    "truncated_normal_moments",
]

ROWS: dict[str, Scheme] = {DEFAULT.name: DEFAULT, **SCHEMES}
"""Every row a rule may name, ``default`` first (the assign dialog's list)."""


def get_scheme(name: str) -> Scheme:
    """The row called ``name`` (``default`` included); :class:`SchemeError` with a close
    match and the list."""
    scheme = ROWS.get(name)
    if scheme is not None:
        return scheme
    message = f'unknown scheme "{name}"'
    close = difflib.get_close_matches(str(name), list(SCHEMES), n=1, cutoff=0.6)
    if close:
        message += f'; did you mean "{close[0]}"?'
    else:
        message += ";"
    raise SchemeError(f"{message} schemes: {', '.join(SCHEMES)}", "scheme")


def dtype_problem(
    scheme: str, args: Mapping[str, object], dtype: str, name: str = ""
) -> str | None:
    """Why ``scheme`` cannot fill a tensor of ``dtype`` (:meth:`Scheme.dtype_problem`)."""
    row = ROWS.get(scheme)
    return None if row is None else row.dtype_problem(args, dtype, name)
