"""The scheme table: one :class:`~inittui.core.schemes.row.Scheme` row per init scheme.

A scheme is named as its ``torch.nn.init`` function without the trailing underscore
(``kaiming_normal``), and its arguments are torch's keyword names and defaults. Each row
says everything inittui knows about the scheme: arguments and their checks, ranks and
dtypes, fan-based or not, the values' interval, expected mean/std with the formula, lints
and the statement it prints. Adding a scheme means adding a row here (and its tests);
``default`` (PyTorch's own ``reset_parameters``) is the row in
:mod:`inittui.core.schemes.defaults`.

Besides torch's functions there are three inittui schemes: ``lecun_normal`` (std =
1/sqrt(fan_in), LeCun et al. 1998, an untruncated normal), ``variance_scaling`` (JAX's
``jax.nn.initializers.variance_scaling``, whose ``lecun_normal`` is the truncated one) and
``keep`` (leave the tensor as it is).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from inittui.core.schemes.args import GAIN_ARG, KAIMING_ARGS, REQUIRED, Arg
from inittui.core.schemes.jax import (
    VARIANCE_SCALING_ARGS,
    variance_scaling_interval,
    variance_scaling_shape_check,
    variance_scaling_stats,
)
from inittui.core.schemes.row import Scheme
from inittui.core.schemes.stats import (
    Expected,
    constant_expected,
    dirac_shape_check,
    dirac_stats,
    eye_stats,
    kaiming_args_check,
    kaiming_normal_stats,
    kaiming_uniform_stats,
    lecun_normal_stats,
    normal_stats,
    orthogonal_stats,
    sparse_stats,
    trunc_normal_args_check,
    trunc_normal_lints,
    trunc_normal_precision_check,
    trunc_normal_stats,
    uniform_args_check,
    uniform_stats,
    xavier_normal_stats,
    xavier_shape_check,
    xavier_uniform_stats,
)


def _ab_interval(dims: tuple[int, ...], v: dict) -> tuple[str, float, float]:
    return f"[a, b] = [{v['a']!r}, {v['b']!r}]", v["a"], v["b"]


def _bound_of(stats: Callable[[tuple[int, ...], dict], Expected]) -> Callable:
    """The interval [-bound, bound] of a uniform fan-based scheme."""

    def interval(dims: tuple[int, ...], v: dict) -> tuple[str, float, float] | None:
        if math.prod(dims) == 0:
            return None
        bound = stats(dims, v).bound
        return None if bound is None else (f"the bound {bound!r}", -bound, bound)

    return interval


def _constant_dtype_check(v: dict, kind: torch.dtype, dtype: str, what: str) -> str | None:
    """An integer or bool tensor holds ``val`` only if it is a whole number in range."""
    if kind.is_floating_point or kind.is_complex:
        return None
    value = v.get("val")
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


def _trunc_normal_dtype_check(v: dict, kind: torch.dtype, dtype: str, what: str) -> str | None:
    if not kind.is_floating_point or not all(k in v for k in ("mean", "std", "a", "b")):
        return None
    return trunc_normal_precision_check(v, torch.finfo(kind).eps, dtype)


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
        stats=uniform_stats,
        args_check=uniform_args_check,
        interval=_ab_interval,
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
        stats=normal_stats,
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
        stats=trunc_normal_stats,
        args_check=trunc_normal_args_check,
        dtypes="real",
        interval=_ab_interval,
        dtype_check=_trunc_normal_dtype_check,
        lints=trunc_normal_lints,
    ),
    Scheme(
        name="constant",
        summary="every value = val",
        args=(Arg("val", float, REQUIRED, doc="the value to fill the tensor with", example=0.0),),
        uses_generator=False,
        function="torch.nn.init.constant_",
        stats=lambda dims, v: constant_expected(v["val"], "constant"),
        dtypes="any",
        interval=lambda dims, v: (f"val={v['val']!r}", v["val"], v["val"]),
        dtype_check=_constant_dtype_check,
    ),
    Scheme(
        name="ones",
        summary="every value = 1",
        args=(),
        uses_generator=False,
        function="torch.nn.init.ones_",
        stats=lambda dims, v: constant_expected(1.0, "ones"),
        dtypes="any",
    ),
    Scheme(
        name="zeros",
        summary="every value = 0",
        args=(),
        uses_generator=False,
        function="torch.nn.init.zeros_",
        stats=lambda dims, v: constant_expected(0.0, "zeros"),
        dtypes="any",
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
        stats=eye_stats,
        dtypes="any",
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
        stats=dirac_stats,
        shape_check=dirac_shape_check,
        dtypes="any",
    ),
    Scheme(
        name="xavier_uniform",
        summary="Glorot uniform: bound = gain * sqrt(6 / (fan_in + fan_out))",
        args=(GAIN_ARG,),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.xavier_uniform_",
        paper="Glorot & Bengio 2010, Understanding the difficulty of training deep "
        "feedforward neural networks",
        dims_purpose=_FAN_PURPOSE,
        stats=xavier_uniform_stats,
        shape_check=xavier_shape_check,
        fan_based=True,
        whole_matrix=True,
        interval=_bound_of(xavier_uniform_stats),
    ),
    Scheme(
        name="xavier_normal",
        summary="Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out))",
        args=(GAIN_ARG,),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.xavier_normal_",
        paper="Glorot & Bengio 2010, Understanding the difficulty of training deep "
        "feedforward neural networks",
        dims_purpose=_FAN_PURPOSE,
        stats=xavier_normal_stats,
        shape_check=xavier_shape_check,
        fan_based=True,
        whole_matrix=True,
    ),
    Scheme(
        name="kaiming_uniform",
        summary="He uniform: bound = gain * sqrt(3 / fan_mode)",
        args=KAIMING_ARGS,
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_uniform_",
        paper="He et al. 2015, Delving deep into rectifiers",
        dims_purpose=_FAN_PURPOSE,
        stats=kaiming_uniform_stats,
        args_check=kaiming_args_check,
        fan_based=True,
        whole_matrix=True,
        interval=_bound_of(kaiming_uniform_stats),
    ),
    Scheme(
        name="kaiming_normal",
        summary="He normal: std = gain / sqrt(fan_mode)",
        args=KAIMING_ARGS,
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_normal_",
        paper="He et al. 2015, Delving deep into rectifiers",
        dims_purpose=_FAN_PURPOSE,
        stats=kaiming_normal_stats,
        args_check=kaiming_args_check,
        fan_based=True,
        whole_matrix=True,
    ),
    Scheme(
        name="orthogonal",
        summary="gain times a (semi) orthogonal matrix; trailing dims flattened",
        args=(GAIN_ARG,),
        uses_generator=True,
        min_dims=2,
        function="_orthogonal_",
        helpers=("_orthogonal_",),
        paper="Saxe et al. 2013, Exact solutions to the nonlinear dynamics of learning in "
        "deep linear neural networks",
        dims_purpose=" (rows x flattened columns)",
        stats=orthogonal_stats,
        dtypes="real",
        whole_matrix=True,
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
                example=0.0,
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
        stats=sparse_stats,
    ),
    Scheme(
        name="lecun_normal",
        summary="LeCun normal: std = 1 / sqrt(fan_in), untruncated; JAX/Flax/timm's "
        "lecun_normal is truncated: use variance_scaling (variance_scale 1, fan_in, truncated_normal)",
        args=(),
        uses_generator=True,
        min_dims=2,
        function="torch.nn.init.kaiming_normal_",
        fixed=(("mode", "fan_in"), ("nonlinearity", "linear")),
        paper="LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017, "
        "Self-Normalizing Neural Networks",
        dims_purpose=_FAN_PURPOSE,
        stats=lecun_normal_stats,
        fan_based=True,
        whole_matrix=True,
    ),
    Scheme(
        name="variance_scaling",
        summary="JAX's variance_scaling: std = sqrt(scale / n), n = fan_in, fan_out or "
        "their average; truncated at 2 std (std-corrected), untruncated normal or uniform",
        args=VARIANCE_SCALING_ARGS,
        uses_generator=True,
        min_dims=2,
        function="_variance_scaling_",
        helpers=("_variance_scaling_",),
        fans_in_call=True,
        paper="jax.nn.initializers.variance_scaling (JAX); Klambauer et al. 2017 and "
        "He et al. 2015 for the lecun/he presets of it",
        dims_purpose=_FAN_PURPOSE,
        stats=variance_scaling_stats,
        shape_check=variance_scaling_shape_check,
        dtypes="real",
        fan_based=True,
        whole_matrix=True,
        interval=variance_scaling_interval,
    ),
    Scheme(
        name="keep",
        summary="leave the tensor as it is",
        args=(),
        uses_generator=False,
        function=None,
        stats=None,
        dtypes="any",
    ),
)

SCHEMES: dict[str, Scheme] = {scheme.name: scheme for scheme in _ALL}
"""Every concrete scheme by plan name, in table order (``default`` is not one)."""
