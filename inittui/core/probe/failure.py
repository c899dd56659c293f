"""Why a preview failed, for a person: :func:`classify_failure` turns the exception a
preview raised (and where its inputs came from) into a :class:`PreviewFailure` with a hint
that matches the failure, the frame of the user's code that raised, and the traceback.

The hint names ``--input-shape`` only when the inputs were guessed from the first layer;
when the model's own ``forward`` raised, it says so and points at the line; inputs from
``example_inputs`` or ``--inputs FILE`` are named as such. Pure: it reads the exception
and its ``__cause__`` chain, never the model. Plain data, so it crosses a process
boundary (the TUI runs previews in a child process) with nothing lost.
"""

from __future__ import annotations

import sysconfig
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GENERIC_HINT = "; check --input-shape"  # what record._forward appends to every failure


@dataclass(frozen=True)
class PreviewFailure:
    """One failed preview: ``message`` (one line, without the generic hint), ``kind`` (see
    :func:`classify_failure`), ``hint`` (what to do), ``source`` (where the inputs came
    from, ``None`` when they could not be made), ``frame`` (``model.py:12 in forward:
    <line>``, the deepest frame in the user's code) and the full ``traceback`` text."""

    message: str
    kind: str
    hint: str
    source: str | None
    frame: str | None
    traceback: str


def _library_roots() -> list[str]:
    roots = {sysconfig.get_paths().get(key, "") for key in ("stdlib", "platstdlib", "purelib")}
    import inittui

    roots.add(str(Path(inittui.__file__).resolve().parent))
    return [root for root in roots if root]


def is_user_file(filename: str, user_files: Sequence[str] = ()) -> bool:
    """Whether ``filename`` is the user's code: one of ``user_files``, or (without them)
    any file outside the standard library, site-packages and inittui itself."""
    if filename.startswith("<"):
        return False
    path = str(Path(filename).resolve())
    if user_files:
        return path in {str(Path(f).resolve()) for f in user_files}
    if "site-packages" in path or "dist-packages" in path:
        return False
    return not any(path.startswith(root) for root in _library_roots())


def _root_cause(error: BaseException) -> BaseException:
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


def user_frame(error: BaseException, user_files: Sequence[str] = ()) -> tuple[str | None, bool]:
    """``("model.py:12 in forward: raise ValueError(...)", raised_there)``: the deepest
    frame of the root cause's traceback that is the user's code (``None`` when there is
    none) and whether it is the deepest frame of all (the user's code raised, not a library
    it called)."""
    frames = traceback.extract_tb(_root_cause(error).__traceback__)
    for depth, frame in enumerate(reversed(frames)):
        if is_user_file(frame.filename, user_files):
            line = (frame.line or "").strip()
            text = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
            return (f"{text}: {line}" if line else text), depth == 0
    return None, False


def classify_failure(
    error: BaseException, inputs_source: str | None = None, user_files: Sequence[str] = ()
) -> PreviewFailure:
    """The :class:`PreviewFailure` of ``error``. ``inputs_source`` is where the inputs came
    from (``ProbeInputs.source``; ``None`` when making them failed). Kinds:

    * ``no_inputs``: the inputs could not be guessed (give shapes or example_inputs);
    * ``inputs``: the given shapes, dtypes or inputs file were refused;
    * ``example_inputs``: example_inputs raised or returned something else, or the forward
      failed in a library on its inputs;
    * ``forward``: the model's own code raised (the frame says where);
    * ``guessed``: the forward failed in a library on inputs guessed from the first layer
      (the one case where ``--input-shape`` is the hint);
    * ``shapes`` / ``inputs_file``: the same on ``--input-shape`` / ``--inputs`` inputs;
    * ``backward``: the backward pass failed; ``other``: anything else.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    message = text.removesuffix(GENERIC_HINT)
    frame, raised_there = user_frame(error, user_files)
    trace = "".join(traceback.format_exception(error)).rstrip()
    source = inputs_source or None

    def failure(kind: str, hint: str) -> PreviewFailure:
        return PreviewFailure(message, kind, hint, source, frame, trace)

    if message.startswith("example_inputs in"):
        return failure(
            "example_inputs", "fix example_inputs(model) in the model file, or set shapes (i)"
        )
    if source is None:
        if message.startswith("cannot infer"):
            return failure(
                "no_inputs",
                "the inputs could not be guessed: set shapes (i, like --input-shape) or "
                "define example_inputs(model) in the model file",
            )
        if not message.startswith(("forward pass failed", "backward pass failed")):
            return failure("inputs", "the inputs were refused: change them (i)")
    if message.startswith("backward pass failed"):
        return failure("backward", "the backward pass failed: b turns it off")
    if not message.startswith("forward pass failed"):
        return failure("other", "")
    if frame is not None and raised_there:
        return failure("forward", f"the model's forward raised at {frame}")
    where = f" (called from {frame})" if frame else ""
    if source is None or source.startswith("inferred"):
        return failure(
            "guessed",
            f"the inputs were guessed ({source or 'from the first layer'}){where}: "
            "check --input-shape (i sets shapes)",
        )
    if source == "--input-shape":
        return failure(
            "shapes", f"the input shapes given do not fit the model{where}: change them (i)"
        )
    if source == "example_inputs":
        return failure(
            "example_inputs",
            f"the inputs came from example_inputs(model) in the model file{where}: check what it returns",
        )
    if source.startswith("--inputs"):
        return failure(
            "inputs_file", f"the inputs came from {source}{where}: check the file's tensors"
        )
    return failure("other", f"the inputs came from {source}{where}")
