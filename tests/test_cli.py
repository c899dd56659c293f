"""The command line as a user runs it: contracts, output, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from harness import HE_PLAN, MODELS, PREVIEW_LAYER_KEYS, SAMPLES, run_cli_subprocess
from torch import nn

ZOO = f"{MODELS}/zoo.py"


def test_inspect_json_follows_the_contract(cli):
    result = cli("inspect", f"{SAMPLES}/tiny_gpt.py:TinyGPT", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert {
        "target",
        "model_class",
        "device",
        "total_params",
        "modules",
        "parameters",
        "buffers",
    } <= set(doc)
    assert doc["model_class"] == "TinyGPT" and doc["device"] == "cpu"
    assert doc["modules"][0]["path"] == "" and doc["modules"][0]["depth"] == 0
    assert doc["total_params"] == sum(p["numel"] for p in doc["parameters"])
    wte = next(p for p in doc["parameters"] if p["name"] == "transformer.wte.weight")
    assert wte["aliases"] == ["lm_head.weight"]
    assert {
        "name",
        "module",
        "module_type",
        "shape",
        "dtype",
        "device",
        "numel",
        "requires_grad",
        "fan_in",
        "fan_out",
        "aliases",
        "stats",
    } <= set(wte)
    assert (wte["fan_in"], wte["fan_out"]) == (64, 512)
    stats = wte["stats"]
    assert {"mean", "std", "min", "max", "abs_mean", "zero_fraction", "nan", "inf", "hist"} <= set(
        stats
    )
    from sample_models_loader import load_sample

    model = load_sample("tiny_gpt.py", "TinyGPT")
    weight = model.transformer.wte.weight.detach().double()
    assert stats["std"] == pytest.approx(weight.std().item(), rel=1e-4)
    assert stats["mean"] == pytest.approx(weight.mean().item(), rel=1e-4, abs=1e-6)
    bias = next(p for p in doc["parameters"] if p["name"].endswith("ln_1.bias"))
    assert bias["fan_in"] is None and bias["fan_out"] is None


def test_inspect_meta_json_has_null_stats_and_depth_limits_modules(cli):
    result = cli(
        "inspect", f"{SAMPLES}/convnet.py:ConvNet", "--json", "--device", "meta", "--depth", "1"
    )
    doc = result.json()
    assert all(p["stats"] is None for p in doc["parameters"])
    assert all(m["depth"] <= 1 for m in doc["modules"])
    assert doc["total_params"] == sum(p["numel"] for p in doc["parameters"])


def test_inspect_human_output_shows_fans_and_flags(cli):
    result = cli("inspect", f"{MODELS}/zoo.py:Convs")
    assert result.code == 0
    assert "fan_in" in result.out and "transposed conv" in result.out


def test_inspect_70b_on_meta(cli):
    result = cli("inspect", f"{MODELS}/llama.py:llama_70b", "--device", "meta", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["total_params"] > 68e9
    q = next(p for p in doc["parameters"] if p["name"] == "layers.0.self_attn.q_proj.weight")
    assert q["shape"] == [8192, 8192] and q["fan_in"] == 8192 and q["stats"] is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["inspect", "missing.py:Net"], "not found"),
        (["inspect", f"{ZOO}:Nope"], "has no 'Nope'"),
        (["inspect", f"{MODELS}/broken_syntax.py:Net"], "syntax error"),
        (["inspect", f"{ZOO}:NeedsArgs"], "needs constructor argument(s)"),
        (["inspect", f"{ZOO}:Raises"], "constructing Raises failed"),
        (["inspect", f"{ZOO}:NUMBER"], "not an nn.Module"),
        (["inspect", f"{ZOO}:make_mlp", "--device", "tpu"], "unknown device"),
        (["inspect", f"{ZOO}:make_mlp", "--dtype", "int8"], "unknown dtype"),
        (["inspect", f"{ZOO}:make_mlp", "--load", "nope.pt"], "not found"),
        (["inspect", f"{ZOO}:make_mlp", "--arg", "width"], "KEY=VALUE"),
        (["inspect", f"{ZOO}:make_mlp", "--depth", "-1"], "--depth"),
        (["inspect"], "required"),
        (["inspect", f"{ZOO}:make_mlp", "--bogus"], "unrecognized arguments"),
        (["plan", f"{ZOO}:make_mlp", "--plan", "missing.toml"], "not found"),
        (["export", f"{ZOO}:make_mlp", "--plan", "missing.toml"], "nothing to export"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args, fragment):
    result = cli(*args)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert fragment in lines[0]


def test_debug_shows_the_traceback():
    result = run_cli_subprocess("inspect", f"{ZOO}:Raises", "--debug")
    assert result.code != 0 and "Traceback" in result.err


def test_python_dash_m_and_help():
    result = run_cli_subprocess("--help")
    assert result.code == 0 and "inittui inspect TARGET" in result.out


def test_export_refuses_overwrite_and_bad_extension_and_writes_nothing(cli, tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text('version = 1\n[[rule]]\nselect = "type:Linear"\nscheme = "zeros"\n')
    existing = tmp_path / "init.py"
    existing.write_text("keep me\n")
    target = f"{ZOO}:make_mlp"
    result = cli(
        "export", target, "--plan", plan, "--script", existing, "--checkpoint", tmp_path / "w.pt"
    )
    assert result.code == 2 and "already exists; pass --force" in result.err
    assert existing.read_text() == "keep me\n" and not (tmp_path / "w.pt").exists()
    result = cli("export", target, "--plan", plan, "--checkpoint", tmp_path / "w.npz")
    assert result.code == 2 and "unknown extension" in result.err
    result = cli("export", target, "--plan", plan, "--script", tmp_path / "nodir" / "x.py")
    assert result.code == 2 and "does not exist" in result.err
    bad_plan = tmp_path / "bad.toml"
    bad_plan.write_text('version = 1\n[[rule]]\nselect = "type:Linear"\nscheme = "kaiming"\n')
    result = cli("export", target, "--plan", bad_plan, "--script", tmp_path / "new.py")
    assert result.code == 2 and "rule 1" in result.err and not (tmp_path / "new.py").exists()
    result = cli("export", target, "--plan", plan, "--script", existing, "--force")
    assert result.code == 0 and "def init_weights" in existing.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "init.py", "p.toml"]


def test_export_script_on_meta_and_checkpoint_refused(cli, tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(
        'version = 1\n[[rule]]\nselect = "type:Linear"\nscheme = "xavier_normal"\n'
        'params = "weight"\n'
    )
    target = f"{MODELS}/llama.py:Llama"
    result = cli(
        "export", target, "--plan", plan, "--device", "meta", "--script", tmp_path / "init.py"
    )
    assert result.code == 0, result.err
    result = cli(
        "export", target, "--plan", plan, "--device", "meta", "--checkpoint", tmp_path / "w.pt"
    )
    assert result.code == 2 and "meta" in result.err


def test_plan_json_explains_every_parameter(cli, tmp_path):
    plan = tmp_path / "p.toml"
    plan.write_text(
        'version = 1\nseed = 5\n[[rule]]\nselect = "type:Linear"\n'
        'params = "weight"\nscheme = "kaiming_uniform"\nnonlinearity = "relu"\n'
    )
    result = cli("plan", f"{SAMPLES}/mlp.py:MLP", "--plan", plan, "--json")
    doc = result.json()
    first = doc["parameters"][0]
    assert first["rule"] == 1 and first["scheme"] == "kaiming_uniform"
    assert first["expected_std"] == pytest.approx(2**0.5 / first["fan_in"] ** 0.5)
    assert first["expected_bound"] == pytest.approx(3**0.5 * first["expected_std"])
    bias = doc["parameters"][1]
    assert bias["rule"] is None
    assert any(lint["kind"] == "uncovered" for lint in doc["lints"])
    json.dumps(doc, allow_nan=False)


def test_nan_parameters_are_counted_and_linted(cli, tmp_path):
    model = nn.Sequential(nn.Linear(4, 4))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
        model[0].weight[1, 1] = float("inf")
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    result = cli("inspect", f"{ZOO}:make_mlp", "--arg", "width=4", "--json")
    assert result.code == 0
    model_file = tmp_path / "one.py"
    model_file.write_text(
        "from torch import nn\n\ndef Net():\n    return nn.Sequential(nn.Linear(4, 4))\n"
    )
    result = cli("inspect", f"{model_file}:Net", "--load", path, "--json")
    weight = result.json()["parameters"][0]["stats"]
    assert weight["nan"] == 1 and weight["inf"] == 1
    finite = model[0].weight.detach().flatten()
    finite = finite[torch.isfinite(finite)].double()
    assert weight["std"] == pytest.approx(finite.std().item(), rel=1e-4)
    plan = tmp_path / "p.toml"
    plan.write_text('version = 1\n[[rule]]\nselect = "0"\nparams = "bias"\nscheme = "zeros"\n')
    result = cli("plan", f"{model_file}:Net", "--load", path, "--plan", plan, "--json")
    assert any(lint["kind"] == "nonfinite" for lint in result.json()["lints"])


def test_preview_json_contract_and_plan_comparison(cli, tmp_path):
    plan = tmp_path / "he.toml"
    plan.write_text(HE_PLAN)
    result = cli("preview", f"{SAMPLES}/mlp.py:MLP", "--arg", "depth=4", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert {"device", "inputs", "layers", "flags"} <= set(doc)
    kept = [{key: item[key] for key in ("shape", "dtype")} for item in doc["inputs"]]
    assert kept == [{"shape": [8, 64], "dtype": "float32"}]
    assert doc["inputs"][0]["source"] == doc["inputs_source"]
    layer = doc["layers"][0]
    assert PREVIEW_LAYER_KEYS <= set(layer)
    assert layer["grad_std"] is None
    result = cli("preview", f"{SAMPLES}/mlp.py:MLP", "--plan", plan, "--backward", "--json")
    doc = result.json()
    assert doc["plan_applied"] and doc["ratios"]
    assert all(item["grad_std"] is not None for item in doc["layers"])


def test_preview_without_any_input_hint_says_what_to_pass(cli, tmp_path):
    model_file = tmp_path / "odd.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n\nclass Odd(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.p = nn.Parameter(torch.ones(3))\n"
        "    def forward(self, x):\n        return x * self.p\n"
    )
    result = cli("preview", f"{model_file}:Odd")
    assert result.code == 2 and "--input-shape" in result.err
    result = cli("preview", f"{model_file}:Odd", "--input-shape", "4,3")
    assert result.code == 0, result.err
    result = cli("preview", f"{model_file}:Odd", "--input-shape", "4,x")
    assert result.code == 2 and "comma-separated" in result.err
    result = cli("preview", f"{model_file}:Odd", "--input-shape", "4,5")
    assert result.code == 2 and "forward pass failed" in result.err


def test_check_gates_ci(cli, tmp_path):
    plan = tmp_path / "he.toml"
    plan.write_text(HE_PLAN)
    deep_tanh = (f"{SAMPLES}/mlp.py:MLP", "--arg", "depth=12", "--arg", "activation=tanh")
    failing = cli("check", *deep_tanh)
    assert failing.code == 1 and "vanishing" in failing.out
    passing = cli("check", f"{SAMPLES}/mlp.py:MLP", "--arg", "depth=12", "--plan", plan)
    assert passing.code == 0 and "check passed" in passing.out
    assert cli("check", *deep_tanh, "--max-ratio", "0.5").code == 2


def test_lsuv_writes_a_plan_that_reproduces_unit_variance(cli, tmp_path):
    out = tmp_path / "lsuv.toml"
    result = cli("lsuv", f"{SAMPLES}/mlp.py:MLP", "--arg", "activation=tanh", "--plan-out", out)
    assert result.code == 0, result.err
    assert "scale" in out.read_text()
    preview = cli(
        "preview", f"{SAMPLES}/mlp.py:MLP", "--arg", "activation=tanh", "--plan", out, "--json"
    )
    linears = [layer for layer in preview.json()["layers"] if layer["type"] == "Linear"]
    assert all(abs(layer["out_std"] - 1.0) < 0.1 for layer in linears)
    again = cli("lsuv", f"{SAMPLES}/mlp.py:MLP", "--plan-out", out)
    assert again.code == 2 and "already exists" in again.err


# --------------------------------------------------------------------------- tables


def _render(table, width: int, color: bool = True) -> list[str]:
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=color, color_system="truecolor" if color else None
    )
    table.render(console)
    return out.getvalue().splitlines()


def test_lean_table_fits_the_width_cutting_the_shrinkable_columns_in_order():
    from inittui.render import LeanTable

    table = LeanTable()
    table.add_column("parameter", shrink=16, order=2, cut="left")
    table.add_column("scheme", shrink=10, order=0)
    table.add_column("std", justify="right")
    table.add_row(
        "encoder.layers.11.attention.q_proj.weight", "kaiming_normal(a=0.0, mode=fan_in)", "0.02"
    )
    table.add_row("head.bias", "zeros", "0")
    lines = _render(table, 50, color=False)
    assert all(len(line) <= 50 for line in lines), lines
    assert lines[0].split() == ["parameter", "scheme", "std"]
    assert set(lines[1].strip()) == {"─"}
    assert lines[2].startswith(" …") and "q_proj.weight" in lines[2]  # the end is kept
    assert "kaiming_n…" in lines[2] and lines[2].endswith("0.02")
    assert lines[3].startswith(" head.bias ") and lines[3].split() == ["head.bias", "zeros", "0"]
    assert all(line == line.rstrip() for line in lines)


def test_lean_table_fill_column_takes_the_room_left_or_is_left_out():
    from rich.text import Text

    from inittui.render import LeanTable

    def table():
        t = LeanTable()
        t.add_column("layer", shrink=5, order=1)
        t.add_fill_column(
            lambda v, w: Text("#" * min(v, w), style="green"), lambda w: "bar"[:w], 4, 10
        )
        t.add_column("std", justify="right")
        t.add_row("fc1", 7, Text("1.0", style="bold"))
        t.add_row("a.very.long.layer.name", 30, "2.0")
        return t

    wide = _render(table(), 80, color=False)
    assert wide[2].split() == ["fc1", "#######", "1.0"] and "#" * 10 in wide[3]
    narrow = _render(table(), 20, color=False)  # the bar gives way first, then the names
    assert all(len(line) <= 20 for line in narrow), narrow
    assert "#" not in "".join(narrow) and narrow[0].split() == ["layer", "std"]
    colored = _render(table(), 20)  # styles of cut and left-out cells stay inside the lines
    assert len(colored) == len(narrow)


def test_inspect_of_a_10k_module_model_fits_80_columns(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    model = tmp_path / "deep.py"
    model.write_text(
        "from torch import nn\n"
        "class Deep(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.blocks = nn.ModuleList(\n"
        "            nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(3400)\n"
        "        )\n"
    )
    result = cli("inspect", f"{model}:Deep")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) > 3 * 3400 + 2 * 2 * 3400
    assert max(len(line) for line in lines[2:]) <= 80
    # The table ends with the last parameter; the "built by" block follows it.
    table_end = lines.index("built by (the last call that wrote each parameter, how many):")
    assert lines[table_end - 1].split()[0] == ".bias"
    assert "3400  Linear.reset_parameters -> kaiming_uniform_(a=2.236)" in result.out
