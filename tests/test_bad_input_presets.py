"""Bad input for presets (issue 13): ``preset:NAME`` wherever a plan path is, the
``presets`` command and the ``variance_scaling`` scheme's arguments; rows in the style of
tests/test_bad_input.py (exit 2, one line naming what is wrong, nothing written)."""

from __future__ import annotations

import pytest
from harness import ROOT
from test_bad_input import MLP, C, Case, run_bad_input

LISTING = "presets: torch-default, gpt2, bert"


def vs_plan(line: str) -> dict[str, bytes]:
    rule = '[[rule]]\nselect = "type:Linear"\nparams = "weight"\nscheme = "variance_scaling"\n'
    return {"p.toml": (rule + line + "\n").encode()}


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
CASES += [
    C(
        "variance-scaling-mode",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="fan_avg",
        files=vs_plan('mode = "fan_sum"'),
    ),
    C(
        "variance-scaling-distribution",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="untruncated_normal",
        files=vs_plan('distribution = "normal"'),
    ),
    C(
        "variance-scaling-zero",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="variance_scale",
        files=vs_plan("variance_scale = 0.0"),
    ),
    C(
        "variance-scaling-on-a-bias",
        "plan",
        MLP,
        "--plan",
        "{tmp}/p.toml",
        fragment="at least 2 dims",
        files={"p.toml": b'[[rule]]\nselect = "**"\nscheme = "variance_scaling"\n'},
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, cli, tmp_path, monkeypatch):
    line = run_bad_input(case, cli, tmp_path, monkeypatch)
    assert "Traceback" not in line
