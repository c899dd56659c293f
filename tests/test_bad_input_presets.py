"""Bad input for presets (issue 13): ``preset:NAME`` wherever a plan path is, and the
``presets`` command; rows in the style of tests/test_bad_input.py (exit 2, one line naming
what is wrong and listing the presets, nothing written)."""

from __future__ import annotations

import pytest
from harness import ROOT
from test_bad_input import MLP, C, Case, run_bad_input

LISTING = "presets: torch-default, gpt2, bert"

CASES = [
    C("preset-unknown", "plan", MLP, "--plan", "preset:gtp2", fragment="did you mean gpt2?"),
    C("preset-unknown-listing", "plan", MLP, "--plan", "preset:resnet", fragment=LISTING),
    C("preset-empty", "plan", MLP, "--plan", "preset:", fragment="needs a preset name"),
    C(
        "preset-unknown-export",
        "export",
        MLP,
        "--plan",
        "preset:nope",
        "--script",
        "init.py",
        fragment="unknown preset 'nope'",
    ),
    C("preset-unknown-preview", "preview", MLP, "--plan", "preset:nope", fragment=LISTING),
    C("preset-unknown-check", "check", MLP, "--plan", "preset:nope", fragment=LISTING),
    C(
        "preset-unknown-lsuv",
        "lsuv",
        MLP,
        "--plan",
        "preset:nope",
        "--plan-out",
        "l.toml",
        fragment=LISTING,
    ),
    C("preset-unknown-serve", "serve", MLP, "--plan", "preset:nope", fragment=LISTING),
    C("presets-name-unknown", "presets", "llama2", fragment="did you mean llama?"),
    C("presets-name-unknown-listing", "presets", "xyz", fragment=LISTING),
    C("presets-name-with-json", "presets", "gpt2", "--json", fragment="give no NAME"),
    C(
        "preset-needs-config",  # nanogpt's c_proj std reads config.n_layer: TinyGPT has none
        "plan",
        str(ROOT / "sample_models" / "tiny_gpt.py") + ":TinyGPT",
        "--plan",
        "preset:nanogpt",
        fragment="TinyGPT has no config attribute",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, cli, tmp_path, monkeypatch):
    line = run_bad_input(case, cli, tmp_path, monkeypatch)
    assert "Traceback" not in line
