"""What a probe measured: per-call layer records, flags and their thresholds.

Also the small value helpers the probe modules share (a NaN/Inf-free number for JSON, a
dtype's short name, an exception as one line). Only ``torch`` and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from inittui.core.errors import InittuiError

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
# What ``mode_detail`` says: train mode is eval mode but normalization uses batch statistics.
MODE_DETAIL = {True: "train (batch statistics, dropout off)", False: "eval (running statistics)"}


@dataclass(frozen=True)
class Thresholds:
    """Flag limits relative to the input std: a leaf output std below ``vanishing`` x or
    above ``exploding`` x the input's is flagged (once, where it starts)."""

    vanishing: float = 0.1
    exploding: float = 10.0

    def __post_init__(self) -> None:
        if not (0 < self.vanishing < self.exploding) or not math.isfinite(self.exploding):
            raise InittuiError(
                f"thresholds must satisfy 0 < vanishing < exploding, got vanishing="
                f"{self.vanishing:g}, exploding={self.exploding:g}; e.g. --vanishing 0.1 "
                "--exploding 10"
            )


@dataclass
class InputInfo:
    """One model input: built by :func:`inittui.core.probe.input_report.input_infos`."""

    shape: list[int]
    dtype: str
    source: str | None = None  # where the inputs came from (the probe's inputs_source)
    keyword: str | None = None  # the keyword it is passed as; None: positional
    distribution: dict[str, Any] | None = None  # kind, mean, std (None for ids), min, max

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": self.dtype,
            "source": self.source,
            "keyword": self.keyword,
            "distribution": self.distribution,
        }


@dataclass
class LayerRecord:
    """One module call. Statistics are of the module's main output (``main_output`` names
    the element of a tuple/dict/dataclass output that was measured; ``None`` when the output
    is itself a tensor). ``input_link`` is ``"input"`` when the call's first positional
    argument was the model's first floating input, ``"previous"`` when it was the previous
    leaf's output unchanged, else ``None`` (used by :func:`theory_std`).

    The verdict fields (leaves only; see :mod:`inittui.core.probe.verdicts`): ``in_std`` /
    ``in_mean`` of the tensor the call consumed; ``expected_ratio`` (output std / input std
    its type and weights should give); ``weight_ratio`` (Linear/Conv: how its weights scale a
    unit input, sqrt(fan_in) x weight rms); ``reference`` / ``reference_std`` (what its output
    std is judged against: the model input, or the last embedding, normalization or residual
    add before it; ``None`` inside a residual branch, which its add judges);
    ``residual_branch`` (the module whose residual add the call feeds); and the backward
    twins ``in_grad_std``, ``expected_grad_ratio``, ``grad_reference_std``."""

    path: str
    type: str
    call: int
    leaf: bool
    out_shape: list[int] | None = None
    out_mean: float | None = None
    out_std: float | None = None
    zero_fraction: float | None = None
    abs_max: float | None = None
    main_output: str | None = None
    grad_std: float | None = None
    theory_std: float | None = None
    grad_theory_std: float | None = None
    nonfinite: bool = False
    input_link: str | None = None
    in_std: float | None = None
    in_mean: float | None = None
    expected_ratio: float | None = None
    weight_ratio: float | None = None
    reference: str | None = None
    reference_std: float | None = None
    residual_branch: str | None = None
    branch_last: bool = False
    in_grad_std: float | None = None
    expected_grad_ratio: float | None = None
    grad_reference_std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "call": self.call,
            "leaf": self.leaf,
            "out_shape": self.out_shape,
            "out_mean": _finite(self.out_mean),
            "out_std": _finite(self.out_std),
            "zero_fraction": _finite(self.zero_fraction),
            "grad_std": _finite(self.grad_std),
            "abs_max": _finite(self.abs_max),
            "main_output": self.main_output,
            "theory_std": _finite(self.theory_std),
            "grad_theory_std": _finite(self.grad_theory_std),
            "in_std": _finite(self.in_std),
            "expected_ratio": _finite(self.expected_ratio),
            "weight_ratio": _finite(self.weight_ratio),
            "reference": self.reference,
            "reference_std": _finite(self.reference_std),
            "residual_branch": self.residual_branch,
            "in_grad_std": _finite(self.in_grad_std),
            "expected_grad_ratio": _finite(self.expected_grad_ratio),
            "grad_reference_std": _finite(self.grad_reference_std),
        }


@dataclass
class ResidualAdd:
    """One residual add ``stream + branch`` seen in the forward pass, inside module ``path``
    (its ``call``-th add there). ``depth`` counts the adds of its stack (a stream that is the
    previous add's output continues the stack); ``entry_std`` is the stream's std entering
    the stack, ``expected_std`` = ``entry_std x sqrt(depth + 1)`` the most it should have
    grown to (each branch adding about the entering variance: He et al. 2016's linear growth
    of the variance). ``kind`` is ``pre-LN`` (the branch starts with a normalization),
    ``post-LN`` (a normalization follows the add) or ``plain``. ``start``/``end`` are the
    record indices the branch's calls span (not in the JSON)."""

    path: str
    call: int
    kind: str
    depth: int
    stream_std: float | None
    branch_std: float | None
    out_std: float | None
    entry_std: float | None
    start: int = 0
    end: int = 0
    grad_std: float | None = None

    @property
    def expected_std(self) -> float | None:
        if self.entry_std is None:
            return None
        return self.entry_std * math.sqrt(self.depth + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "call": self.call,
            "kind": self.kind,
            "depth": self.depth,
            "stream_std": _finite(self.stream_std),
            "branch_std": _finite(self.branch_std),
            "out_std": _finite(self.out_std),
            "entry_std": _finite(self.entry_std),
            "expected_std": _finite(self.expected_std),
            "grad_std": _finite(self.grad_std),
        }


@dataclass
class Flag:
    """Where a problem starts. ``rule`` names the rule broken (see
    :mod:`inittui.core.probe.verdicts`), ``ratio`` the measured factor it judged,
    ``expected_ratio`` what the rule expected of it, ``reference`` what it was measured
    against."""

    path: str
    kind: str  # vanishing, exploding, vanishing_grad, exploding_grad, nan
    detail: str
    rule: str | None = None
    ratio: float | None = None
    expected_ratio: float | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "detail": self.detail,
            "rule": self.rule,
            "ratio": _finite(self.ratio),
            "expected_ratio": _finite(self.expected_ratio),
            "reference": self.reference,
        }


@dataclass
class ProbeResult:
    """What :func:`probe` measured. ``to_dict`` is the ``preview --json`` document."""

    device: str
    inputs: list[InputInfo]
    layers: list[LayerRecord]
    flags: list[Flag]
    input_std: float | None = None
    input_mean: float | None = None
    input_std_source: str = ""
    inputs_source: str | None = None
    loss: str | None = None
    param_grad_std: dict[str, float] | None = None
    train_mode: bool = False
    seed: int = 0
    residuals: list[ResidualAdd] = field(default_factory=list)

    def layer(self, path: str, call: int = 0) -> LayerRecord:
        return _lookup(self, self.layers, (path, call))

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "inputs": [info.to_dict() for info in self.inputs],
            "layers": [record.to_dict() for record in self.layers],
            "flags": [flag.to_dict() for flag in self.flags],
            "inputs_source": self.inputs_source,
            "input_std": _finite(self.input_std),
            "input_std_source": self.input_std_source,
            "mode": "train" if self.train_mode else "eval",
            "mode_detail": MODE_DETAIL[bool(self.train_mode)],
            "seed": self.seed,
            "loss": self.loss,
            "param_grad_std": None
            if self.param_grad_std is None
            else {k: _finite(v) for k, v in self.param_grad_std.items()},
            "residuals": [item.to_dict() for item in self.residuals],
        }


def find_flags(
    layers: Sequence[LayerRecord],
    input_std: float | None,
    thresholds: Thresholds,
    residuals: Sequence[ResidualAdd] = (),
) -> list[Flag]:
    """The first onset of each kind: ``nan`` (first non-finite output, any layer), then
    ``vanishing``/``exploding`` (forward, in call order) and ``vanishing_grad``/
    ``exploding_grad`` (backward, from the output toward the input): the first call whose
    output breaks one of the rules of :func:`inittui.core.probe.verdicts.judge` by more than
    the thresholds. Records without the verdict fields are judged against ``input_std``."""
    from inittui.core.probe.verdicts import judge

    flags: list[Flag] = []
    bad = [r for r in layers if r.nonfinite]
    if bad:
        first = bad[0]
        flags.append(
            Flag(
                first.path,
                "nan",
                f"output holds NaN/Inf at {first.path or '(root)'} ({first.type}); it starts "
                f"here ({len(bad)} of {len(layers)} layer outputs are non-finite)",
                rule="nan",
            )
        )
    found: dict[str, object] = {}
    verdicts = judge(layers, residuals, input_std, thresholds.vanishing, thresholds.exploding)
    for verdict in sorted(verdicts, key=lambda v: v.order):
        found.setdefault(verdict.kind, verdict)
    for kind in ("vanishing", "exploding", "vanishing_grad", "exploding_grad"):
        verdict = found.get(kind)
        if verdict is not None:
            flags.append(verdict.flag())
    return flags


def _lookup(owner: object, items: list, key: tuple[str, int]):
    """``items`` (records with ``path`` and ``call``) by key, through an index kept on
    ``owner`` (a search per lookup made a 10,000-layer report quadratic)."""
    cached = owner.__dict__.get("_index")
    if cached is None or cached[0] is not items or cached[1] != len(items):
        index: dict[tuple[str, int], object] = {}
        for item in items:
            index.setdefault((item.path, item.call), item)
        cached = (items, len(items), index)
        owner.__dict__["_index"] = cached
    try:
        return cached[2][key]
    except KeyError:
        raise KeyError(key) from None


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
