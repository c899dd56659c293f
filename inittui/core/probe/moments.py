"""Per-tensor statistics for the probe: which tensor of a module's output is measured, and
its moments (mean, variance, largest magnitude, exact zeros) computed with few kernels and,
off the CPU, one host copy per device."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import weakref
from collections.abc import Mapping

import torch

from inittui.core.probe.results import LayerRecord


def _main_tensor(output: object, depth: int = 0) -> tuple[torch.Tensor | None, str | None]:
    """The first floating tensor in ``output``, depth-first, and where it sits ("[0]",
    "['logits']", ".last_hidden_state"); a non-floating tensor only if there is no float."""
    if isinstance(output, torch.Tensor):
        return output, None
    found: tuple[torch.Tensor | None, str | None] = (None, None)
    if depth > 6 or isinstance(output, (str, bytes)):
        return found
    if isinstance(output, Mapping):
        items: list[tuple[str, object]] = [(f"[{k!r}]", v) for k, v in output.items()]
    elif isinstance(output, (tuple, list)):
        items = [(f"[{i}]", v) for i, v in enumerate(output)]
    elif dataclasses.is_dataclass(output) and not isinstance(output, type):
        items = [(f".{f.name}", getattr(output, f.name, None)) for f in dataclasses.fields(output)]
    else:
        return found
    for label, value in items:
        tensor, inner = _main_tensor(value, depth + 1)
        if tensor is None:
            continue
        where = label + (inner or "")
        if tensor.is_floating_point():
            return tensor, where
        if found[0] is None:
            found = (tensor, where)
    return found


class _Stats:
    """Per-tensor moments with few kernels, and (off the CPU) no host sync per tensor.

    A slot holds ``(n, mean, var, abs_max, nonzero)``. On the CPU they are computed at once:
    ``sum``, ``dot``, ``aminmax`` and ``count_nonzero`` on the integer bit pattern (only
    +0.0 is all zero bits; a ``min`` of the bits finds -0.0) stream at memory speed without
    temporaries (``torch.var_mean`` is ~20x slower there), and
    ``var = (sum x^2 - (sum x)^2 / n) / (n - 1)`` falls back to ``torch.var`` in float64
    when the mean dominates (|mean| > ~30 std). On other devices ``var_mean``/``amax``/
    ``count_nonzero`` results stay on the device in one stacked tensor per slot and are
    copied to the host once, in :meth:`finish`. The last tensor measured is remembered (by
    identity and version counter), so a container whose output is its last child's tensor
    costs nothing.
    """

    immediate_devices: tuple[str, ...] = ("cpu",)  # computed at once, no deferred copy

    def __init__(self) -> None:
        self.values: list[tuple[float, float, float, float, float] | None] = []
        self.pending: dict[int, torch.Tensor] = {}
        self.sizes: dict[int, int] = {}
        self._last: tuple[weakref.ref, int, int] | None = None

    def measure(self, tensor: torch.Tensor) -> int:
        last = self._last
        if last is not None and last[0]() is tensor and last[1] == tensor._version:
            return last[2]
        slot = len(self.values)
        self.values.append(None)
        x = tensor.detach()
        n = x.numel()
        if n > 0:
            if x.is_complex():
                x = x.abs()
            if x.dtype not in (torch.float32, torch.float64):
                x = x.float()
            if x.device.type in self.immediate_devices:
                self.values[slot] = _cpu_moments(x)
            else:
                var, mean = torch.var_mean(x) if n > 1 else (x.new_zeros(()), x.mean())
                magnitude = x.abs()
                self.pending[slot] = torch.stack(
                    (mean, var, magnitude.amax(), torch.count_nonzero(magnitude).to(x.dtype))
                )
                self.sizes[slot] = n
        with contextlib.suppress(TypeError):
            self._last = (weakref.ref(tensor), tensor._version, slot)
        return slot

    def finish(self) -> None:
        """Copy the pending device results to the host (one transfer per device)."""
        by_device: dict[torch.device, list[int]] = {}
        for slot, packed in self.pending.items():
            by_device.setdefault(packed.device, []).append(slot)
        for slots in by_device.values():
            rows = torch.stack([self.pending[s].double() for s in slots]).cpu().tolist()
            for slot, (mean, var, amax, nonzero) in zip(slots, rows, strict=True):
                self.values[slot] = (float(self.sizes[slot]), mean, var, amax, nonzero)
        self.pending.clear()

    def get(self, slot: int | None) -> tuple[float, float, float, float, float] | None:
        return None if slot is None else self.values[slot]


def _cpu_moments(x: torch.Tensor) -> tuple[float, float, float, float, float]:
    """``(n, mean, var, abs_max, nonzero)`` of a float32/float64 CPU tensor, allocating
    nothing for a contiguous tensor (fresh large buffers cost page faults)."""
    flat = x.reshape(-1)
    n = flat.numel()
    int_dtype = torch.int32 if flat.dtype == torch.float32 else torch.int64
    bits = flat.view(int_dtype)
    nonzero = float(torch.count_nonzero(bits))  # +0.0 is the only all-zero bit pattern
    low, high = (float(v) for v in torch.aminmax(flat))
    if low <= 0.0 <= high and int(bits.min()) == torch.iinfo(int_dtype).min:
        nonzero = float(torch.count_nonzero(flat))  # -0.0 present: count it as zero too
    abs_max = math.nan if math.isnan(low) or math.isnan(high) else max(-low, high)
    total = float(flat.sum())
    squares = float(torch.dot(flat, flat))
    mean = total / n
    if n < 2:
        return (float(n), mean, 0.0, abs_max, nonzero)
    if not (math.isfinite(abs_max) and math.isfinite(total) and math.isfinite(squares)):
        if math.isfinite(abs_max):  # finite values whose squares overflow float32
            var64, mean64 = torch.var_mean(flat.double())
            return (float(n), float(mean64), float(var64), abs_max, nonzero)
        return (float(n), math.nan, math.nan, abs_max, nonzero)
    var = max(squares - total * mean, 0.0) / (n - 1)
    if var * 1000.0 < squares / n:  # the mean dominates: recompute without cancellation
        var = float(torch.var(flat.double()))
    return (float(n), mean, var, abs_max, nonzero)


def _fill(record: LayerRecord, values: tuple[float, float, float, float, float] | None) -> None:
    if values is None:
        return
    n, mean, var, abs_max, nonzero = values
    record.out_mean = mean
    if n >= 2:
        record.out_std = math.sqrt(var) if var >= 0 else math.nan
    record.abs_max = abs_max
    record.zero_fraction = (n - nonzero) / n if n else None
    record.nonfinite = not (math.isfinite(mean) and math.isfinite(var) and math.isfinite(abs_max))


def _std_of(values: tuple[float, float, float, float, float] | None) -> float | None:
    if values is None or values[0] < 2:
        return None
    var = values[2]
    return math.sqrt(var) if var >= 0 else math.nan
