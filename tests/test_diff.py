"""``inittui diff``: two states of a model compared per parameter (plan, preset, checkpoint,
current): the std ratio, the Kolmogorov-Smirnov distance, the flags, the JSON document,
the text at 80 columns, --preview, --fail-on-diff and the core call the TUI will use."""

from __future__ import annotations

import math

import pytest
import torch
from harness import MODELS, SAMPLES

from inittui.core.diff import diff_states, parse_side
from inittui.core.diff_stats import (
    KS_C,
    KS_MAX_VALUES,
    ks_critical,
    ks_statistic,
    log_ratio_sd,
    sample_values,
)

MLP = f"{MODELS}/zoo.py:make_mlp"  # Sequential(Linear(w, w), ReLU, Linear(w, 2))
WIDE = ("--arg", "width=256")  # 65,536 weights: sampling error well below the differences
WEIGHTS = 'select = "type:Linear"\nparams = "weight"\n'


def write_plan(tmp_path, name: str, rule: str, seed: int = 0) -> str:
    path = tmp_path / name
    path.write_text(f"version = 1\nseed = {seed}\n\n[[rule]]\n{WEIGHTS}{rule}\n")
    return str(path)


def diff_json(cli, a: str, b: str, *extra: str, model: str = MLP) -> dict:
    result = cli("diff", model, a, b, *(WIDE if model == MLP else ()), *extra, "--json")
    assert result.code == 0, result.err
    return result.json()


def by_name(document: dict) -> dict[str, dict]:
    return {param["name"]: param for param in document["parameters"]}


def test_current_against_current_is_identical(cli):
    doc = diff_json(cli, "current", "current")
    assert doc["a"] == {"kind": "current", "source": "current"}
    assert all(param["flags"] == ["identical"] for param in doc["parameters"])
    assert all(param["ks"] == 0 and param["std_ratio"] == 1 for param in doc["parameters"])
    assert doc["summary"]["differ"] == 0
    assert doc["summary"]["identical"] == doc["summary"]["parameters"] == 4


def test_kaiming_normal_against_torch_default_is_the_theoretical_ratio(cli, tmp_path):
    """kaiming_normal (gain sqrt(2)) over Linear's kaiming_uniform(a=sqrt(5)) (gain
    sqrt(2 / (1 + 5)) = sqrt(1/3), the same std for a uniform): sqrt(2) / sqrt(1/3) = sqrt(6)."""
    he = write_plan(tmp_path, "he.toml", 'scheme = "kaiming_normal"')
    doc = diff_json(cli, "current", he)
    assert doc["b"] == {"kind": "plan", "source": he}
    weight = by_name(doc)["0.weight"]
    n = 256 * 256
    sampling = 4 * log_ratio_sd(n, 3.0, n, 3.0)
    assert abs(math.log(weight["std_ratio"] / math.sqrt(6))) < sampling
    assert "differs" in weight["flags"] and "identical" not in weight["flags"]
    assert weight["ratio_band"][0] < 1 < weight["ratio_band"][1] < weight["std_ratio"]
    bias = by_name(doc)["0.bias"]  # the plan leaves biases alone: their built values
    assert bias["flags"] == ["identical"]
    assert doc["summary"]["differ"] == 2


def test_practically_the_same_distribution_is_not_flagged(cli, tmp_path):
    normal = write_plan(tmp_path, "n.toml", 'scheme = "normal"\nstd = 0.02')
    trunc = write_plan(
        tmp_path, "t.toml", 'scheme = "trunc_normal"\nstd = 0.02\na = -2.0\nb = 2.0', seed=1
    )
    doc = diff_json(cli, normal, trunc)
    weight = by_name(doc)["0.weight"]
    assert weight["flags"] == [], weight
    assert weight["ks"] < weight["ks_critical"]
    assert doc["summary"]["differ"] == 0


def test_the_same_plan_under_two_seeds_differs_in_values_only(cli, tmp_path):
    # (seeds 1 and 2 happen to draw a 0.weight whose KS p-value is ~1e-5: flagged, rightly)
    one = write_plan(tmp_path, "one.toml", 'scheme = "kaiming_normal"', seed=3)
    two = write_plan(tmp_path, "two.toml", 'scheme = "kaiming_normal"', seed=4)
    doc = diff_json(cli, one, two)
    for name in ("0.weight", "2.weight"):
        assert by_name(doc)[name]["flags"] == [], by_name(doc)[name]
        assert by_name(doc)[name]["ks"] > 0
    assert doc["summary"] == {**doc["summary"], "differ": 0, "identical": 2}


def test_a_constant_compares_exactly(cli, tmp_path):
    zeros = tmp_path / "z.toml"
    zeros.write_text('version = 1\n[[rule]]\nselect = "**"\nscheme = "zeros"\n')
    zeros_again = tmp_path / "z2.toml"
    zeros_again.write_text(zeros.read_text())
    doc = diff_json(cli, "current", str(zeros))
    assert all(param["flags"] == ["differs", "constant"] for param in doc["parameters"])
    assert by_name(doc)["0.bias"]["b"] == {"mean": 0.0, "std": 0.0}
    doc = diff_json(cli, str(zeros), str(zeros_again))
    assert all(param["flags"] == ["identical", "constant"] for param in doc["parameters"])


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_an_exported_checkpoint_is_identical_to_its_plan(cli, tmp_path, suffix):
    he = write_plan(tmp_path, "he.toml", 'scheme = "kaiming_normal"', seed=7)
    checkpoint = tmp_path / f"w{suffix}"
    result = cli("export", MLP, *WIDE, "--plan", he, "--checkpoint", checkpoint)
    assert result.code == 0, result.err
    doc = diff_json(cli, str(checkpoint), he)
    assert doc["a"]["kind"] == "checkpoint"
    assert all(param["flags"] == ["identical"] for param in doc["parameters"])


def test_seed_replaces_the_plans_seed_on_both_sides(cli, tmp_path):
    one = write_plan(tmp_path, "one.toml", 'scheme = "kaiming_normal"', seed=1)
    two = write_plan(tmp_path, "two.toml", 'scheme = "kaiming_normal"', seed=2)
    doc = diff_json(cli, one, two, "--seed", "5")
    assert doc["seed"] == 5
    assert all("identical" in param["flags"] for param in doc["parameters"])


def test_tied_parameters_are_shown_once(cli):
    doc = diff_json(cli, "current", "current", model=f"{SAMPLES}/tiny_gpt.py:TinyGPT")
    names = [param["name"] for param in doc["parameters"]]
    assert "lm_head.weight" not in names
    assert by_name(doc)["transformer.wte.weight"]["aliases"] == ["lm_head.weight"]


# --------------------------------------------------------------------------- statistics


def ks_reference(x: list[float], y: list[float]) -> float:
    """The two-sample KS statistic by brute force in float64: at every value, the largest
    distance between the two empirical CDFs (what scipy.stats.ks_2samp returns)."""
    points = sorted(set(x) | set(y))
    return max(
        abs(sum(v <= p for v in x) / len(x) - sum(v <= p for v in y) / len(y)) for p in points
    )


@pytest.mark.parametrize("seed", range(4))
def test_ks_is_the_brute_force_statistic(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(300, generator=generator, dtype=torch.float64)
    y = torch.randn(170, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    if seed % 2:  # ties within and across the samples
        x, y = torch.round(x * 4) / 4, torch.round(y * 4) / 4
    assert ks_statistic(x, y) == pytest.approx(ks_reference(x.tolist(), y.tolist()), abs=1e-12)


def test_ks_matches_scipy_when_installed():
    stats = pytest.importorskip("scipy.stats")
    generator = torch.Generator().manual_seed(3)
    x, y = torch.randn(500, generator=generator), torch.rand(400, generator=generator)
    expected = stats.ks_2samp(x.numpy(), y.numpy()).statistic
    assert ks_statistic(x, y) == pytest.approx(expected, abs=1e-12)


def test_ks_critical_value_and_subsampling():
    assert KS_C == pytest.approx(1.9495, abs=1e-4)  # c(alpha = 1e-3)
    assert ks_critical(100, 100) == pytest.approx(KS_C * math.sqrt(2 / 100))
    big = torch.arange(KS_MAX_VALUES * 3, dtype=torch.float32)
    first, sampled = sample_values(big)
    again, _ = sample_values(big)
    assert sampled and first.numel() == KS_MAX_VALUES and torch.equal(first, again)
    small, sampled = sample_values(torch.tensor([1.0, float("nan"), 2.0]))
    assert not sampled and small.tolist() == [1.0, 2.0]


def test_a_big_tensor_is_subsampled_and_says_so(cli):
    doc = diff_json(cli, "current", "current")  # 65,536 values: all of them
    assert doc["summary"]["subsampled"] == 0
    result = cli("diff", MLP, "current", "current", "--arg", "width=400", "--json")
    weight = by_name(result.json())["0.weight"]  # 160,000 values
    assert weight["flags"] == ["identical", "subsampled"]


# --------------------------------------------------------------------------- output


def test_text_fits_80_columns_with_a_summary(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    he = write_plan(tmp_path, "he.toml", 'scheme = "kaiming_normal"')
    result = cli("diff", f"{SAMPLES}/tiny_gpt.py:TinyGPT", "current", he, "--preview")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 80, result.out
    assert any(line.startswith("  A: current (the model as built)") for line in lines)
    assert any(" of " in line and "parameters differ beyond sampling error" in line
               for line in lines)  # fmt: skip
    assert "preview: output std per layer" in result.out
    assert "…" in result.out  # long names are cut, keeping their end
    assert "differs" in result.out


def test_fail_on_diff_exits_1_only_when_something_differs(cli, tmp_path):
    he = write_plan(tmp_path, "he.toml", 'scheme = "kaiming_normal"')
    assert cli("diff", MLP, "current", he, "--fail-on-diff").code == 1
    assert cli("diff", MLP, "current", he).code == 0
    assert cli("diff", MLP, "current", "current", "--fail-on-diff").code == 0


def test_preview_json_pairs_both_sides(cli, tmp_path):
    he = write_plan(tmp_path, "he.toml", 'scheme = "kaiming_normal"')
    doc = diff_json(cli, "current", he, "--preview")
    layers = doc["preview"]["layers"]
    assert [layer["path"] for layer in layers] == ["0", "1", "2"]
    first = layers[0]
    assert first["ratio"] == pytest.approx(first["b_std"] / first["a_std"])
    assert first["ratio"] > 1.5  # sqrt(6) times the weights' std
    assert "preview" not in diff_json(cli, "current", he)


# --------------------------------------------------------------------------- the core call


def test_diff_states_takes_a_resolved_plan_and_a_state_dict():
    """What the TUI will call: its working plan (resolved) against a saved state."""
    from inittui.core.plan import Plan, resolve_plan, rule_from_dict
    from inittui.core.workspace import open_model

    opened = open_model(MLP, {"width": 64})
    rule = rule_from_dict(0, {"select": "type:Linear", "params": "weight", "scheme": "zeros"})
    resolved = resolve_plan(Plan(rules=(rule,)), opened.loaded.model, opened.tree)
    saved = {name: t.clone() for name, t in opened.loaded.model.state_dict().items()}
    result = diff_states(opened.loaded, resolved, saved, tree=opened.tree)
    assert result.a.kind == "plan" and result.b.kind == "state"
    flags = {p.name: p.flags for p in result.params}
    assert flags["0.weight"] == ["differs", "constant"] and flags["0.bias"] == ["identical"]
    assert opened.loaded.model[0].weight.abs().sum() > 0  # the model keeps its values
    assert result.summary_line() == "2 of 4 parameters differ beyond sampling error (2 identical)"


def test_sides_are_told_apart_by_their_form():
    assert parse_side("current").kind == "current"
    assert parse_side("preset:gpt2").kind == "preset"
    assert parse_side("a/b.TOML").kind == "plan"
    assert [parse_side(f"w{s}").kind for s in (".pt", ".pth", ".safetensors")] == ["checkpoint"] * 3
