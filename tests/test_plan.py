"""Plans: TOML v1 parsing and validation, rule matching, resolution, seeding, lints."""

from __future__ import annotations

import pytest
import torch
from harness import MODELS, SAMPLES
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.errors import InittuiError
from inittui.core.loading import load_model
from inittui.core.plan import Plan, Rule, param_seed, parse_plan, plan_to_toml, resolve_plan
from inittui.core.tree import build_tree

HEAD = "version = 1\nseed = 0\n"


def rules(*tables: str) -> str:
    return HEAD + "".join(f"[[rule]]\n{t}\n" for t in tables)


def resolve(model: nn.Module, text: str):
    return resolve_plan(parse_plan(text), model, build_tree(model))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("version = 1\n[[rule]\n", "not valid TOML"),
        ("version = 2\n", "version 2 is not supported"),
        ("version = 1\nseeed = 3\n", "unknown top-level key(s) 'seeed'"),
        (rules('select = "type:Linear"\nscheme = "kaiming_normall"'), "did you mean"),
        (
            rules('select = "type:Linear"\nscheme = "kaiming_normal"\nnonlinearty = "relu"'),
            'did you mean "nonlinearity"',
        ),
        (rules('select = "type:Linear"\nscheme = "normal"\nstd = -1.0'), "std"),
        (rules('select = "type:Linear"\nscheme = "kaiming_normal"\nmode = "fan_avg"'), "fan_in"),
        (
            rules('select = "type:Linear"\nscheme = "kaiming_normal"\nnonlinearity = "swish"'),
            "relu",
        ),
        (rules('select = "type:Linear"\nscheme = "constant"'), "val"),
        (rules('scheme = "zeros"'), "missing key 'select'"),
        (rules('select = "x"\nscheme = "zeros"\nscale = "big"'), "scale must be a finite number"),
        (rules('select = "type:"\nscheme = "zeros"'), "must name a class"),
        (rules('select = "type:Linear"\nscheme = "default"\nstd = 1.0'), "takes no arguments"),
    ],
)
def test_bad_plans_name_the_rule_and_key(text, fragment):
    with pytest.raises(InittuiError) as info:
        parse_plan(text, "p.toml")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    if "[[rule]]" in text and "select" in text:
        assert "rule 1" in str(info.value)


def test_inapplicable_scheme_names_rule_and_parameter():
    model = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(InittuiError) as info:
        resolve(model, rules('select = "type:Linear"\nscheme = "kaiming_normal"'))
    message = str(info.value)
    assert "rule 1" in message and "0.bias" in message and "at least 2 dims" in message
    with pytest.raises(InittuiError, match="exactly 2 dims"):
        resolve(nn.Conv1d(2, 2, 3), rules('select = ""\nparams = "weight"\nscheme = "eye"'))


def test_toml_roundtrip():
    text = rules(
        'select = "type:Linear"\nparams = "weight"\nscheme = "kaiming_normal"\n'
        'mode = "fan_out"\nnonlinearity = "relu"',
        'select = "lstm"\nparams = "weight_hh*"\nscheme = "orthogonal"\nper_gate = true',
        'select = "lstm"\nparams = "bias*"\nscheme = "zeros"\nforget_bias = 1.0\nscale = 2.0',
    )
    plan = parse_plan(text)
    assert parse_plan(plan_to_toml(plan)) == plan
    assert plan.rules[0].args == {"a": 0.0, "mode": "fan_out", "nonlinearity": "relu"}


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)


class MyLinear(nn.Linear):
    pass


class Net(nn.Module):
    def __init__(self, extra: bool = False):
        super().__init__()
        self.encoder = nn.ModuleList([Block(), Block()])
        if extra:
            self.extra = nn.Linear(4, 4)
        self.head = MyLinear(4, 2)
        self.gain = nn.Parameter(torch.ones(4))


def decided(model, text):
    resolved = resolve(model, text)
    return {s.param: (s.scheme, s.rule_index) for s in resolved.steps}


def test_selectors_type_mro_globs_exact_root():
    model = Net()
    got = decided(model, rules('select = "type:Linear"\nparams = "weight"\nscheme = "zeros"'))
    assert "head.weight" in got  # a subclass of Linear matches type:Linear
    assert set(got) == {f"encoder.{i}.fc{j}.weight" for i in (0, 1) for j in (1, 2)} | {
        "head.weight"
    }
    assert set(decided(model, rules('select = "type:MyLinear"\nscheme = "zeros"'))) == {
        "head.weight",
        "head.bias",
    }
    got = decided(model, rules('select = "encoder.*.fc1"\nscheme = "zeros"'))
    assert set(got) == {
        "encoder.0.fc1.weight",
        "encoder.0.fc1.bias",
        "encoder.1.fc1.weight",
        "encoder.1.fc1.bias",
    }
    # "*" stays within one path component; "**" spans components (a subtree)
    assert decided(model, rules('select = "encoder.*"\nscheme = "zeros"')) == {}
    assert len(decided(model, rules('select = "encoder.**"\nscheme = "zeros"'))) == 8
    assert set(decided(model, rules('select = ""\nscheme = "ones"'))) == {"gain"}
    assert set(decided(model, rules('select = "head"\nparams = "b*"\nscheme = "zeros"'))) == {
        "head.bias"
    }


def test_last_matching_rule_wins_and_unmatched_keep_values():
    model = Net()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    text = rules(
        'select = "type:Linear"\nscheme = "zeros"',
        'select = "head"\nparams = "weight"\nscheme = "ones"',
        'select = "encoder.1.**"\nscheme = "keep"',
    )
    resolved = resolve(model, text)
    got = {s.param: s.rule_index for s in resolved.steps}
    assert got["head.weight"] == 1 and got["head.bias"] == 0
    assert not any(name.startswith("encoder.1.") for name in got)
    apply_plan(model, resolved)
    assert torch.equal(model.head.weight, torch.ones(2, 4))
    for name, value in before.items():
        if name.startswith("encoder.1.") or name == "gain":
            assert torch.equal(dict(model.named_parameters())[name], value)


def test_seeding_is_per_parameter_and_stable():
    assert param_seed(0, "a.weight") == param_seed(0, "a.weight")
    assert param_seed(0, "a.weight") != param_seed(1, "a.weight")
    text = rules('select = "type:Linear"\nparams = "weight"\nscheme = "normal"')
    small, big = Net(), Net(extra=True)
    apply_plan(small, resolve(small, text))
    apply_plan(big, resolve(big, text))
    for name, value in small.named_parameters():
        if name.endswith("weight"):
            assert torch.equal(value, dict(big.named_parameters())[name]), name
    # reordering rules does not change the numbers either
    other = Net()
    apply_plan(
        other,
        resolve(
            other,
            rules(
                'select = "head"\nscheme = "zeros"',
                'select = "type:Linear"\nparams = "weight"\nscheme = "normal"',
            ),
        ),
    )
    assert torch.equal(other.encoder[0].fc1.weight, small.encoder[0].fc1.weight)


def test_tied_parameters_initialized_once_with_conflict_warning():
    model = load_model(f"{MODELS}/zoo.py:Shared").model
    text = rules(
        'select = "emb"\nscheme = "normal"\nstd = 0.02', 'select = "head"\nscheme = "zeros"'
    )
    resolved = resolve(model, text)
    steps = [s for s in resolved.steps if s.param == "emb.weight"]
    assert len(steps) == 1 and steps[0].scheme == "zeros" and steps[0].rule_index == 1
    assert any(lint.kind == "tied_conflict" for lint in resolved.lints)


def test_embedding_padding_row_stays_zero_for_any_scheme():
    model = load_model(f"{SAMPLES}/lstm_lm.py:LSTMLanguageModel").model
    for scheme in ("normal", "uniform", "ones", "xavier_uniform", "orthogonal"):
        resolved = resolve(model, rules(f'select = "type:Embedding"\nscheme = "{scheme}"'))
        apply_plan(model, resolved)
        assert torch.count_nonzero(model.embedding.weight[0]) == 0, scheme
        assert torch.count_nonzero(model.embedding.weight[1]) > 0, scheme


def test_lstm_per_gate_orthogonal_and_forget_bias():
    model = nn.LSTM(6, 8, num_layers=1)
    text = rules(
        'select = ""\nparams = "weight_hh*"\nscheme = "orthogonal"\nper_gate = true',
        'select = ""\nparams = "bias*"\nscheme = "zeros"\nforget_bias = 1.0',
    )
    resolved = resolve(model, text)
    apply_plan(model, resolved)
    for block in model.weight_hh_l0.detach().chunk(4, 0):
        assert torch.allclose(block @ block.T, torch.eye(8), atol=1e-5)
    effective = model.bias_ih_l0 + model.bias_hh_l0
    assert torch.equal(effective[8:16], torch.ones(8))
    assert torch.count_nonzero(effective[:8]) == 0 and torch.count_nonzero(effective[16:]) == 0
    step = resolved.step_for("weight_hh_l0")
    assert step.block_shape == (8, 8) and step.fan_in == 8


def test_per_gate_equals_chunked_torch_loop():
    """`for w in weight.chunk(4, 0): xavier_uniform_(w)` with the step's generator."""
    model = nn.LSTM(5, 7)
    resolved = resolve(
        model,
        rules('select = ""\nparams = "weight_ih*"\nscheme = "xavier_uniform"\nper_gate = true'),
    )
    apply_plan(model, resolved)
    step = resolved.step_for("weight_ih_l0")
    g = torch.Generator().manual_seed(step.seed)
    reference = torch.empty(28, 5)
    for w in reference.chunk(4, 0):
        nn.init.xavier_uniform_(w, generator=g)
    assert torch.equal(model.weight_ih_l0.detach(), reference)


def test_per_gate_and_forget_bias_errors():
    with pytest.raises(InittuiError, match="per_gate applies to RNN/LSTM/GRU"):
        resolve(
            nn.Linear(3, 3),
            rules('select = ""\nparams = "weight"\nscheme = "orthogonal"\nper_gate = true'),
        )
    with pytest.raises(InittuiError, match="GRU has no forget gate"):
        resolve(
            nn.GRU(3, 3),
            rules('select = ""\nparams = "bias*"\nscheme = "zeros"\nforget_bias = 1.0'),
        )


def test_lints_trunc_normal_fused_recurrent_fan_layout_uncovered():
    text = rules('select = "type:Linear"\nparams = "weight"\nscheme = "trunc_normal"\nstd = 0.02')
    lints = resolve(Net(), text).lints
    trunc = [lint for lint in lints if lint.kind == "trunc_normal_bounds"]
    assert trunc and "absolute" in trunc[0].message and "a=-0.04, b=0.04" in trunc[0].message
    assert any(lint.kind == "uncovered" for lint in lints)
    ok = rules(
        'select = "type:Linear"\nparams = "weight"\nscheme = "trunc_normal"\nstd = 0.02\n'
        "a = -0.04\nb = 0.04"
    )
    assert not [lint for lint in resolve(Net(), ok).lints if lint.kind == "trunc_normal_bounds"]

    lstm = nn.LSTM(4, 4)
    fused = resolve(lstm, rules('select = ""\nparams = "weight_hh*"\nscheme = "orthogonal"'))
    assert any(lint.kind == "fused_recurrent" for lint in fused.lints)
    advice = next(lint.message for lint in fused.lints if lint.kind == "fused_recurrent")
    assert "per_gate = true" in advice
    followed = resolve(
        lstm, rules('select = ""\nparams = "weight_hh*"\nscheme = "orthogonal"\nper_gate = true')
    )
    assert not any(lint.kind == "fused_recurrent" for lint in followed.lints)
    apply_plan(lstm, followed)
    for block in lstm.weight_hh_l0.detach().chunk(4, 0):  # each gate block is orthogonal
        assert torch.allclose(block @ block.T, torch.eye(4), atol=1e-5)
    convs = load_model(f"{MODELS}/zoo.py:Convs").model
    layout = resolve(
        convs,
        rules('select = "type:ConvTranspose2d"\nparams = "weight"\nscheme = "default"'),
    )
    assert any(lint.kind == "fan_layout" for lint in layout.lints)
    # The advice, followed: kaiming_normal draws with the computed fans, no lint.
    advised = resolve(
        convs,
        rules('select = "type:ConvTranspose2d"\nparams = "weight"\nscheme = "kaiming_normal"'),
    )
    assert not any(lint.kind == "fan_layout" for lint in advised.lints)


def test_default_scheme_reproduces_pytorch_reset_distribution():
    model = nn.Sequential(
        nn.Linear(400, 300), nn.LayerNorm(300), nn.Embedding(50, 8, padding_idx=3)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    apply_plan(model, resolve(model, rules('select = "**"\nscheme = "default"')))
    bound = 1 / 400**0.5
    assert model[0].weight.abs().max() <= bound and model[0].bias.abs().max() <= bound
    assert abs(model[0].weight.std().item() - bound / 3**0.5) < 0.02 * bound
    assert torch.equal(model[1].weight, torch.ones(300))
    assert torch.equal(model[1].bias, torch.zeros(300))
    assert torch.count_nonzero(model[2].weight[3]) == 0
    assert abs(model[2].weight.std().item() - 1.0) < 0.15


def test_plan_helpers_are_immutable_and_composable():
    plan = Plan().with_rule(Rule(select="type:Linear", scheme="zeros")).with_seed(4)
    assert plan.seed == 4 and len(plan.rules) == 1
    assert plan.without_rule(0).rules == ()


def test_readme_recipes_norm_default_and_zero_init_last_bn():
    model = load_model(f"{SAMPLES}/resnet_tiny.py:TinyResNet").model
    text = rules(
        'select = "type:BatchNorm2d"\nscheme = "default"',
        'select = "**.bn2"\nparams = "weight"\nscheme = "zeros"',
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    apply_plan(model, resolve(model, text))
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            expected = 0.0 if name.endswith("bn2") else 1.0
            assert torch.all(module.weight == expected), name
            assert torch.all(module.bias == 0), name


def test_resolved_plan_is_frozen_and_with_lints_returns_a_new_one():
    import dataclasses

    from inittui.core.plan import Lint

    model = nn.Sequential(nn.Linear(3, 2))
    resolved = resolve(model, rules('select = "**"\nscheme = "zeros"'))
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.steps = ()  # type: ignore[misc]
    extra = Lint("nonfinite", "0.weight", "0.weight holds 1 NaN and 0 Inf values")
    more = resolved.with_lints([extra])
    assert more.lints == (*resolved.lints, extra) and extra not in resolved.lints
    assert more.step_for("0.weight") is resolved.step_for("0.weight")
