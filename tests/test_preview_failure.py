"""classify_failure: the hint matches the failure (--input-shape only for guessed inputs),
the frame names the user's line, and run_preview's errors carry their inputs' source."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.probe import make_inputs, probe, run_preview
from inittui.core.probe.failure import classify_failure, is_user_file, user_frame
from inittui.core.workspace import open_model

HERE = str(Path(__file__).resolve())


class Mismatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(16, 2)

    def forward(self, x):
        return self.b(self.a(x))


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)

    def forward(self, x):
        raise ValueError("refused")


def forward_error(model: nn.Module, source: str) -> InittuiError:
    inputs = make_inputs(model)
    with pytest.raises(InittuiError) as caught:
        probe(model, inputs)
    caught.value.inputs_source = source
    return caught.value


def test_guessed_inputs_point_at_input_shape():
    error = forward_error(Mismatch(), "inferred from first layer a (Linear)")
    failure = classify_failure(error, error.inputs_source, [HERE])
    assert failure.kind == "guessed"
    assert "--input-shape" in failure.hint and "guessed" in failure.hint
    assert failure.message.startswith("forward pass failed: RuntimeError")
    assert not failure.message.endswith("check --input-shape")
    assert failure.frame and failure.frame.startswith("test_preview_failure.py:")
    assert "Traceback" in failure.traceback


@pytest.mark.parametrize(
    ("source", "kind", "words"),
    [
        ("example_inputs", "example_inputs", "example_inputs(model)"),
        ("--input-shape", "shapes", "input shapes given"),
        ("--inputs batch.pt", "inputs_file", "--inputs batch.pt"),
    ],
)
def test_library_failures_name_where_the_inputs_came_from(source, kind, words):
    failure = classify_failure(forward_error(Mismatch(), source), source, [HERE])
    assert failure.kind == kind and words in failure.hint
    assert "--input-shape" not in failure.hint
    assert failure.source == source


def test_forward_that_raises_itself_is_named_with_its_line():
    failure = classify_failure(forward_error(Raises(), "example_inputs"), "example_inputs", [HERE])
    assert failure.kind == "forward"
    assert 'raise ValueError("refused")' in failure.hint
    assert "--input-shape" not in failure.hint
    frame, raised_there = user_frame(forward_error(Raises(), "x"), [HERE])
    assert raised_there and frame.endswith('in forward: raise ValueError("refused")')


def test_inputs_that_could_not_be_made():
    no_layer = InittuiError("cannot infer an input for Net (no parameterized layer); pass ...")
    assert classify_failure(no_layer).kind == "no_inputs"
    bad = InittuiError("--input-shape 'a' must be comma-separated positive integers, e.g. 8,3")
    assert classify_failure(bad).kind == "inputs"
    example = InittuiError("example_inputs in m.py failed: KeyError: 'x'; fix it or pass ...")
    assert classify_failure(example).kind == "example_inputs"
    backward = InittuiError("backward pass failed: RuntimeError: x; preview without --backward")
    assert classify_failure(backward, "--input-shape").kind == "backward"


def test_user_files_without_a_list_are_outside_libraries():
    assert is_user_file(HERE)
    assert not is_user_file(torch.__file__)
    assert not is_user_file("<string>")


def test_run_preview_errors_carry_the_inputs_source():
    opened = open_model(str(Path(__file__).parent.parent / "sample_models" / "mlp.py") + ":MLP")
    with pytest.raises(InittuiError) as caught:
        run_preview(opened.loaded, None, input_shapes=["8,3"])
    assert caught.value.inputs_source == "--input-shape"
    assert str(caught.value).endswith("check --input-shape")  # the CLI's line is unchanged
