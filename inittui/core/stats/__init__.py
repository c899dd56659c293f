"""Fast per-tensor statistics: the hot path of inittui on big models.

Modules: ``records`` (:class:`TensorStats`, shared helpers, progress and cancel), ``large``
(the chunked two-pass streaming of a large tensor), ``small`` (many small tensors in one
batched pass), ``parallel`` (single-threaded worker threads on CPU), ``compute`` (the public
functions).

Only ``torch``, ``math`` and the standard library are used (no numpy, no UI code), and every
computation is a plain torch op, so the same code runs on CPU and CUDA.

Figures (for a tensor ``x`` with ``N = x.numel()`` elements, ``F`` = its finite elements,
``n = |F|``):

* ``nan`` / ``inf``: number of NaN / +-Inf elements.
* ``mean = (1/n) * sum_F x``
* ``std = sqrt( sum_F (x - mean)^2 / (n - 1) )`` (sample std, Bessel's correction, like
  ``torch.std``); ``None`` when ``n < 2``.
* ``min`` / ``max`` over ``F``; ``abs_mean = (1/n) * sum_F |x|``.
* ``zero_fraction = #{x == 0} / N`` (over *all* elements; NaN/Inf are never zero).
* histogram of ``F`` with ``bins`` equal-width bins, edges ``e_k = min + k (max - min) / bins``
  (``k = 0..bins``), bin ``j`` holds ``e_j <= x < e_{j+1}`` and the last bin is closed
  (``x == max`` belongs to it), like ``numpy.histogram``.  When ``min == max`` the edges span
  ``[v - d, v + d]`` with ``d = 1e-6 * |v|`` (``1e-6`` when ``v == 0``) and every value is
  counted in bin ``bins // 2`` (the bin whose left edge is ``v`` for even ``bins``).

All figures except the NaN/Inf counts and ``zero_fraction`` are over the finite values only,
so one NaN does not silently poison the mean of a 50M-element embedding.

How it is fast (CPU: ``torch.var_mean``, ``torch.histc``, ``torch.isfinite`` and ``x == 0`` run
at ~1 GB/s, while ``sum``, ``aminmax`` and in-cache element-wise ops run at 20+ GB/s):

1. Pass 1 streams ``aminmax`` over the tensor in chunks.  ``min``/``max`` propagate NaN and
   show +-Inf, so a finite ``(min, max)`` proves the tensor is all finite and no ``isfinite``
   pass is needed; otherwise (rare) the NaN/Inf are counted and the finite values gathered,
   then processed the same way.  A constant tensor (``min == max``) is answered exactly here
   (``std = 0``, no second pass).
2. A shift ``c`` is estimated from a strided sample of <= 4096 elements (``c = 0`` when the
   sample mean is within a quarter sample-std of 0, which saves one op per chunk).  Pass 2
   processes chunks of 256K elements so every temporary stays in cache: ``a = |x|`` gives
   ``sum |x|`` and, when a chunk's ``min |x|`` is 0, the zero count (``count_nonzero`` on the
   integer bit pattern of ``a``: only ``+0.0`` is all zero bits); ``d = x - c`` gives
   ``S1 = sum d`` and ``S2 = sum d^2``, and the *corrected two-pass* formula ::

       mean = c + S1 / n
       var  = (S2 - S1^2 / n) / (n - 1)

   is exact in exact arithmetic for any ``c`` and numerically good while ``|mean - c|`` is at
   most a few std (the relative error of ``var`` grows like ``S2 / (S2 - S1^2/n)``); when that
   ratio exceeds 16 (an unrepresentative sample) the sums are recomputed with ``c = mean``.
   Sums are cascade sums (``torch.sum``, ~1e-8 relative; a BLAS ``dot`` is faster but ~3e-6)
   over at most one chunk, and chunk results are accumulated in float64.
3. Histogram: ``u = (x - min) * bins / (max - min)`` (one fused ``add(alpha=)`` op when the data
   is not far off-centre, else subtract-then-scale, which is exact at ``x = min``), truncated
   to int16 and clamped to ``bins - 1``; then ``g`` sub-chunks are packed into one base-``bins``
   number (``bins**g <= 32768``, ``g = 3`` for 32 bins) so the serial ``torch.bincount`` sees
   ``1/g`` of the elements, and the ``bins**g`` joint histogram is marginalised at the end.
   Counts are exact for the edges as computed in floating point; a value within ~1e-6 of a
   bin width from an edge may land in the neighbouring bin compared to ``numpy.histogram``.

Precision: float32 (and bf16/fp16/small ints/bool, cast per chunk) are computed in float32
while the value spread is within ``[2**-40, 2**40]``, else in float64 (e.g. values ~1e-30,
whose squares underflow float32); float64, int32 and int64 are computed in float64 (float64
inputs with extreme magnitudes are first scaled by an exact power of two).  Tensors on devices
other than CPU and CUDA (e.g. MPS, which lacks float64) are copied to the CPU first.

Threads (``parallel``): on CPU the tensors and the batches of small ones are tasks for
``torch.get_num_threads()`` worker threads that each run torch ops on one thread (their own
OpenMP count set to 1; the caller's is unchanged), so no op waits at an OpenMP barrier for a
descheduled thread and the serial ``bincount`` runs on every core.  On a busy 2-core machine
(load ~11) this took bench_stats from 0.39 to 0.11 of the naive loop; chunks are 256K
elements (~2.5 MB of temporaries per thread), ~10% faster than 1M with one thread per chunk.

Small tensors (``numel <= 4096``: biases, norms) are batched: up to 64K elements of the same
dtype and similar length become the rows of one zero-padded ``[k, L]`` float64 matrix, and
every figure is a row reduction, so ~25 ops serve a whole batch instead of ~25 per tensor.
"""

from inittui.core.errors import StatsCancelled
from inittui.core.stats.compute import compute_stats, naive_stats, planned_stats, tensor_stats
from inittui.core.stats.records import HIST_BINS, TensorStats

__all__ = [
    "HIST_BINS",
    "StatsCancelled",
    "TensorStats",
    "compute_stats",
    "naive_stats",
    "planned_stats",
    "tensor_stats",
]
