"""Forward/backward variance probe: example inputs, per-layer statistics, theory, LSUV.

The preview answers "how does the signal's scale change through this model with these
weights?" by running one forward (optionally one backward) pass with a hook on every module.

* :func:`make_inputs` picks the inputs: ``--inputs FILE``, ``--input-shape``, else the model file's
  ``example_inputs(model)``, else a guess from the first parameterized layer.
* :func:`probe` runs the pass and records, per module call in the order the calls finished,
  the output's shape, mean, std, fraction of exact zeros and largest magnitude (and with
  ``backward=True`` the std of the gradient of that output). Statistics are computed inside
  the hook and the activations are dropped, so the probe needs no more memory than the
  forward pass itself.
* :func:`theory_std` predicts the std of chains of Linear/Conv layers and elementwise
  activations from the weights actually in the model (He et al. 2015 / Glorot & Bengio 2010
  style variance propagation), for comparison with the measured values.
* :func:`compare` probes the current weights and the weights a plan would give.
* :func:`lsuv` runs layer-sequential unit-variance init (Mishkin & Matas 2015, "All you need
  is a good init") and returns it as a plan that reproduces it without data.
* :func:`run_preview` is the preview as one action (inputs, probe, compare) for the CLI and
  the TUI; :func:`preview_rows` pairs current and planned per layer; :func:`check_preview`
  is the ``inittui check`` verdict.

Conventions: ``std`` is the sample standard deviation (correction 1) over all elements of
the measured tensor; ``zero_fraction`` counts exact zeros (``+0.0`` and ``-0.0``); numbers
that are NaN/Inf are kept as floats in the records and written as ``null`` by ``to_dict``.
Only ``torch`` and the standard library are imported here.

Modules: ``results`` (records, flags, thresholds), ``inputs`` (example inputs),
``input_files`` (``--inputs FILE``, keyword inputs), ``input_report`` (what the inputs were:
shapes, dtypes, distributions, the header line), ``moments`` (per-tensor statistics),
``record`` (the hooked pass), ``residuals`` (residual adds seen in the pass),
``expectations`` (what each call should do to the std, references along the data flow),
``verdicts`` (the rules flags and check apply), ``theory`` (predicted std),
``theory_grad`` (predicted gradient std),
``memory`` (model and device sizes), ``comparison`` (current vs planned), ``failure`` (why a
preview failed: kind, hint, user frame), ``lsuv_init``
(LSUV), ``run`` (preview and check for the CLI and the TUI).
"""

from __future__ import annotations

from inittui.core.probe.comparison import Comparison, LayerRatio, compare
from inittui.core.probe.input_files import keyword_call, read_inputs_file
from inittui.core.probe.input_report import input_infos, inputs_line
from inittui.core.probe.inputs import (
    DEFAULT_BATCH,
    DEFAULT_IDS_HIGH,
    DEFAULT_SEQ,
    DEFAULT_SPATIAL,
    INTEGER_DTYPES,
    ProbeInputs,
    describe_inputs,
    first_layer,
    ids_high,
    infer_inputs,
    make_inputs,
    parse_input_dtype,
    parse_input_dtypes,
    parse_input_shape,
)
from inittui.core.probe.lsuv_init import LSUV_TYPES, LSUVLayer, LSUVResult, lsuv
from inittui.core.probe.memory import (
    DEFAULT_COPY_LIMIT,
    default_copy_limit,
    device_memory,
    model_bytes,
)
from inittui.core.probe.moments import _cpu_moments as _cpu_moments  # for the tests
from inittui.core.probe.moments import _Stats as _Stats  # for the tests
from inittui.core.probe.record import probe
from inittui.core.probe.results import (
    CancelFn,
    Flag,
    InputInfo,
    LayerRecord,
    ProbeResult,
    ProgressFn,
    ResidualAdd,
    Thresholds,
    find_flags,
)
from inittui.core.probe.run import (
    CheckVerdict,
    Preview,
    PreviewFlag,
    PreviewRow,
    PreviewRun,
    check_max_ratio,
    check_preview,
    preview_rows,
    run_preview,
)
from inittui.core.probe.theory import theory_std
from inittui.core.probe.verdicts import Verdict, judge

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_IDS_HIGH",
    "DEFAULT_COPY_LIMIT",
    "DEFAULT_SEQ",
    "DEFAULT_SPATIAL",
    "INTEGER_DTYPES",
    "LSUV_TYPES",
    "CancelFn",
    "CheckVerdict",
    "Comparison",
    "Flag",
    "InputInfo",
    "LSUVLayer",
    "LSUVResult",
    "LayerRatio",
    "LayerRecord",
    "Preview",
    "PreviewFlag",
    "PreviewRow",
    "PreviewRun",
    "ProbeInputs",
    "ProbeResult",
    "ProgressFn",
    "ResidualAdd",
    "Thresholds",
    "Verdict",
    "check_max_ratio",
    "check_preview",
    "compare",
    "default_copy_limit",
    "describe_inputs",
    "device_memory",
    "find_flags",
    "first_layer",
    "ids_high",
    "input_infos",
    "inputs_line",
    "keyword_call",
    "infer_inputs",
    "judge",
    "lsuv",
    "make_inputs",
    "read_inputs_file",
    "model_bytes",
    "parse_input_dtype",
    "parse_input_dtypes",
    "parse_input_shape",
    "preview_rows",
    "probe",
    "run_preview",
    "theory_std",
]
