"""Fuzzing the core with random module trees and random plans (strategies in strategies.py).

Properties:
(a) resolving any plan either succeeds or raises InittuiError (never another exception);
    a plan that resolves also applies and exports; any plan document parses or raises
    InittuiError;
(b) exported script == in-app apply == checkpoint (.pt and .safetensors), bit for bit;
    padding rows are zero and forget-gate blocks hold their value afterwards;
(c) parameters no rule decides (and every buffer) keep their values;
(d) adding a layer anywhere changes no other parameter's values under the same plan;
(e) fans equal torch's ``_calculate_fan_in_and_fan_out`` for every 2+-dim parameter (and
    for the gate blocks a per-gate step initializes);
(f) plan_to_toml / parse_plan round trip is the identity;
(g) the inspect report counts every unique parameter once and lists every name once.

Profiles ``inittui-fuzz`` / ``inittui-fuzz-slow``. The normal run draws 280 examples in all
(about 6 s): (a) 50 + 30 + 20, (b)+(c) 50, (d) 40, (e), (f), (g) 30 each.
``pytest -m slow tests/test_fuzz.py --hypothesis-show-statistics`` checks every property
together on 2000 examples (about 2-3 minutes). The tests at the end are the bugs the fuzzer
found, kept as plain regression tests.
"""

from __future__ import annotations

import copy
import math
import types
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from strategies import (
    attach,
    layers,
    module_trees,
    plan_documents,
    plans_for,
    wild_plans,
)
from torch import nn

from inittui.core.apply import apply_plan
from inittui.core.codegen import render_script
from inittui.core.errors import InittuiError
from inittui.core.export import write_checkpoint
from inittui.core.fans import conv_fans
from inittui.core.loading import LoadedModel
from inittui.core.plan import (
    Plan,
    ResolvedPlan,
    Rule,
    parse_plan,
    plan_from_dict,
    plan_to_toml,
    resolve_plan,
)
from inittui.core.schemes import SCHEMES
from inittui.core.summary import inspect_report
from inittui.core.tree import build_tree

pytestmark = pytest.mark.filterwarnings(
    "ignore:Initializing zero-element tensors is a no-op:UserWarning",
    "ignore:mean is more than 2 std from:UserWarning",
)

settings.register_profile(
    "inittui-fuzz",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "inittui-fuzz-slow", settings.get_profile("inittui-fuzz"), max_examples=2000
)
FUZZ = settings.get_profile("inittui-fuzz")
SLOW = settings.get_profile("inittui-fuzz-slow")


# --------------------------------------------------------------------------- helpers


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes (so NaN == NaN and -0.0 != 0.0, as bit-identical means)."""
    return tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


def all_params(model: nn.Module) -> dict[str, torch.Tensor]:
    return dict(model.named_parameters(remove_duplicate=False))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in all_params(model).items()}
    state.update({f"buffer:{k}": v.clone() for k, v in model.named_buffers()})
    return state


def resolve(model: nn.Module, plan) -> ResolvedPlan:
    return resolve_plan(plan, model, build_tree(model))


def run_script(resolved: ResolvedPlan, folder: Path, model: nn.Module) -> None:
    path = folder / "init_fuzz.py"
    path.write_text(render_script(resolved, "fuzz.py:Box", type(model).__name__))
    namespace: dict[str, object] = {"__name__": "init_fuzz"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # as an import would
    namespace["init_weights"](model)


def note_features(model: nn.Module, resolved: ResolvedPlan | None = None) -> None:
    """Hypothesis events, so --hypothesis-show-statistics shows what the fuzzer covered."""
    tree = build_tree(model)
    if any(p.aliases for p in tree.parameters):
        event("model: tied parameters")
    if any(m.aliases for m in tree.modules):
        event("model: shared module")
    dtype = next((p.dtype for p in model.parameters()), None)
    event(f"model: {str(dtype).removeprefix('torch.')}")
    if resolved is not None:
        steps = len(resolved.steps)
        event(f"plan: {'0' if not steps else '1-9' if steps < 10 else '10+'} steps")
        if any(s.blocks for s in resolved.steps):
            event("plan: per_gate")
        if any(s.forget_block for s in resolved.steps):
            event("plan: forget_bias")
        if any(s.padding_idx is not None for s in resolved.steps):
            event("plan: padding row")


def decided_names(resolved: ResolvedPlan) -> set[str]:
    return {name for step in resolved.steps for name in (step.param, *step.aliases)}


def read_safetensors(model: nn.Module, path: Path) -> tuple[dict, dict]:
    write_checkpoint(model, path, force=True)
    with safe_open(str(path), "pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata() or {}  # noqa: SIM118


# --------------------------------------------------------------------------- the checks


def check_no_crash(model: nn.Module, plan, folder: Path) -> None:
    """(a) InittuiError or a plan that applies and exports without any error."""
    try:
        resolved = resolve(model, plan)
    except InittuiError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), repr(exc)
        event("resolve: InittuiError")
        return
    event("resolve: ok")
    apply_plan(copy.deepcopy(model), resolved)
    run_script(resolved, folder, copy.deepcopy(model))


def check_script_apply_checkpoint(model: nn.Module, plan, folder: Path) -> ResolvedPlan:
    """(b) and (c): a valid plan resolves; script, apply, .pt and .safetensors agree bit
    for bit; undecided parameters and all buffers are unchanged."""
    resolved = resolve(model, plan)
    before = snapshot(model)
    fresh = copy.deepcopy(model)
    apply_plan(model, resolved)
    run_script(resolved, folder, fresh)
    write_checkpoint(model, folder / "w.pt", force=True)
    saved = torch.load(folder / "w.pt", weights_only=True)
    fresh_state = fresh.state_dict()
    state = model.state_dict()
    safe, meta = read_safetensors(model, folder / "w.safetensors")
    assert state.keys() == fresh_state.keys() == saved.keys()
    for name, value in state.items():
        assert same(value, fresh_state[name]), f"script != apply: {name}"
        assert same(value, saved[name]), f".pt != apply: {name}"
        key = name if name in safe else meta.get(f"alias:{name}")
        assert key in safe, f"{name} missing from the .safetensors file"
        assert same(value, safe[key]), f".safetensors != apply: {name}"

    params = all_params(model)
    decided = decided_names(resolved)
    for name, value in params.items():  # (c)
        if name not in decided:
            assert same(value, before[name]), f"{name} is decided by no rule but changed"
    for name, value in model.named_buffers():
        assert same(value, before[f"buffer:{name}"]), f"buffer {name} changed"

    for step in resolved.steps:  # what the plan promises beyond the scheme
        tensor = params[step.param].detach()
        if step.forget_block is not None:
            start, stop, value = step.forget_block
            want = torch.full((stop - start,), value, dtype=tensor.dtype)
            assert same(tensor[start:stop], want), f"{step.param}: forget-gate block"
    for path, module in model.named_modules(remove_duplicate=False):
        padding = getattr(module, "padding_idx", None)
        weight_name = f"{path}.weight" if path else "weight"
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and padding is not None:
            if weight_name in decided:  # whichever name of the tensor decided it
                row = module.weight.detach()[padding]
                assert same(row, torch.zeros_like(row)), f"{weight_name}: padding row not zero"
    return resolved


def check_adding_a_layer(model: nn.Module, grown: nn.Module, plan) -> None:
    """(d) ``grown`` is ``model`` plus one new layer; the plan (valid for ``grown``, so for
    ``model``) gives every parameter of ``model`` the same values in both."""
    small, big = copy.deepcopy(model), copy.deepcopy(grown)
    apply_plan(small, resolve(small, plan))
    apply_plan(big, resolve(big, plan))
    after = all_params(big)
    for name, value in all_params(small).items():
        assert name in after, name
        assert same(value, after[name]), f"adding a layer changed {name}"


def check_fans(model: nn.Module, resolved: ResolvedPlan | None) -> None:
    """(e) torch's fans are torch's, for records and for per-gate blocks; the fans the
    schemes use are torch's too except for a known layout (transposed and grouped convs:
    inittui.core.fans), where they are the computation's."""
    calc = nn.init._calculate_fan_in_and_fan_out
    tree = build_tree(model)
    for record in tree.parameters:
        tensor = record.tensor
        assert record.shape == tuple(tensor.shape)
        if tensor.dim() >= 2:
            assert (record.torch_fan_in, record.torch_fan_out) == calc(tensor), record.name
            module = model.get_submodule(record.module)
            if record.fan_source == "known layout":
                want = conv_fans(tensor.shape, module.groups, module.transposed, module.stride)
                assert (record.fan_in, record.fan_out) == want, record.name
            else:
                assert (record.fan_in, record.fan_out) == calc(tensor), record.name
        else:
            assert record.fan_in is None and record.fan_out is None, record.name
    for step in resolved.steps if resolved is not None else ():
        if len(step.block_shape) >= 2:
            want = calc(torch.empty(step.block_shape, device="meta"))
            assert (step.torch_fan_in, step.torch_fan_out) == want, step.param
            if step.fan_source != "torch":
                record = tree.param(step.param)
                want = (record.fan_in, record.fan_out)
            assert (step.fan_in, step.fan_out) == want, step.param


def check_toml_round_trip(plan) -> None:
    """(f) parse_plan(plan_to_toml(plan)) == plan for a plan of normalized rules."""
    text = plan_to_toml(plan)
    again = parse_plan(text)
    assert again == plan, text
    assert plan_to_toml(again) == text


def check_inspect_report(model: nn.Module) -> None:
    """(g) total_params is the sum of unique numels; each name (aliases included) once."""
    loaded = LoadedModel(
        model=model,
        target="fuzz.py:Box",
        name="Box",
        source_module=types.ModuleType("fuzz"),
        device=torch.device("cpu"),
        dtype=None,
    )
    report = inspect_report(loaded)
    unique = {id(p): p for _, p in model.named_parameters(remove_duplicate=False)}
    assert report["total_params"] == sum(p.numel() for p in unique.values())
    assert report["total_params"] == sum(p["numel"] for p in report["parameters"])
    listed = Counter(name for p in report["parameters"] for name in (p["name"], *p["aliases"]))
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert listed == Counter(names), (listed, names)
    assert len(report["parameters"]) == len(unique)
    assert [m["path"] for m in report["modules"]] == [p for p, _ in model.named_modules()]
    assert report["modules"][0]["num_params"] == report["total_params"]
    for param in report["parameters"]:
        stats = param["stats"]
        assert stats is not None, param["name"]
        if param["numel"] < 2:
            assert stats["std"] is None, param["name"]


# --------------------------------------------------------------------------- strategies


@st.composite
def grown_models(draw):
    """(model, model plus one new layer under any module, a plan valid for the latter)."""
    model = draw(module_trees(), label="model")
    grown = copy.deepcopy(model)
    paths = [p for p, _ in grown.named_modules()]
    parent = grown.get_submodule(draw(st.sampled_from(paths), label="parent"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layer = draw(layers(), label="new layer")
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    attach(parent, "added", layer.to(dtype))
    return model, grown, draw(plans_for(grown), label="plan")


# --------------------------------------------------------------------------- properties


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_a_any_plan_resolves_or_raises_inittui_error(data, tmp_path_factory):
    model = data.draw(module_trees(), label="model")
    plan = data.draw(wild_plans(model), label="plan")
    check_no_crash(model, plan, tmp_path_factory.mktemp("a"))


@FUZZ
@given(document=plan_documents())
def test_a_any_plan_document_parses_or_raises_inittui_error(document):
    try:
        plan = plan_from_dict(document)
    except InittuiError as exc:
        assert str(exc)
        event("plan document: InittuiError")
        return
    event("plan document: ok")
    check_toml_round_trip(plan)


@settings(FUZZ, max_examples=20)
@given(text=st.text(alphabet="[]=.\"'\n #aselctrupmh0123*:", max_size=60))
def test_a_any_plan_text_parses_or_raises_inittui_error(text):
    try:
        parse_plan(text)
    except InittuiError:
        pass


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_b_c_script_equals_apply_equals_checkpoints(data, tmp_path_factory):
    model = data.draw(module_trees(), label="model")
    plan = data.draw(plans_for(model), label="plan")
    note_features(model, resolve(model, plan))
    check_script_apply_checkpoint(model, plan, tmp_path_factory.mktemp("b"))


@settings(FUZZ, max_examples=40)
@given(case=grown_models())
def test_d_adding_a_layer_changes_no_other_parameter(case):
    check_adding_a_layer(*case)


@FUZZ
@given(data=st.data())
def test_e_fans_equal_torch(data):
    model = data.draw(module_trees(), label="model")
    plan = data.draw(plans_for(model), label="plan")
    check_fans(model, resolve(model, plan))


@FUZZ
@given(data=st.data())
def test_f_plan_toml_round_trip(data):
    model = data.draw(module_trees(), label="model")
    check_toml_round_trip(data.draw(plans_for(model), label="plan"))


@FUZZ
@given(model=module_trees())
def test_g_inspect_report_counts_each_parameter_once(model):
    check_inspect_report(model)


def test_empty_model_safetensors(tmp_path):
    """A model without parameters or buffers (found by the fuzzer: Box(m0=Box()))."""
    safe, meta = read_safetensors(nn.Sequential(nn.ReLU()), tmp_path / "w.safetensors")
    assert safe == {}


def test_lazy_model_checkpoint_is_a_clean_error(tmp_path):
    model = nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 2))
    with pytest.raises(InittuiError):
        write_checkpoint(model, tmp_path / "w.pt")


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.timeout(1800)
@SLOW
@given(case=grown_models(), data=st.data())
def test_all_properties_many_examples(case, data, tmp_path_factory):
    model, grown, plan = case
    folder = tmp_path_factory.mktemp("slow")
    check_toml_round_trip(plan)  # (f)
    check_adding_a_layer(model, grown, plan)  # (d)
    check_inspect_report(grown)  # (g)
    resolved = resolve(grown, plan)
    note_features(grown, resolved)
    check_fans(grown, resolved)  # (e)
    check_script_apply_checkpoint(grown, plan, folder)  # (b), (c)
    check_no_crash(model, data.draw(wild_plans(model), label="wild plan"), folder)  # (a)
    try:
        plan_from_dict(data.draw(plan_documents(), label="document"))
    except InittuiError:
        pass


# --------------------------------------------------------------------------- found by fuzzing


def test_found_a_rule_that_is_not_a_table_is_a_clean_error():
    with pytest.raises(InittuiError, match="rule 1 is not a table"):
        plan_from_dict({"version": 1, "rule": [1.5]})


def test_found_tied_rules_with_unhashable_bad_args_are_a_clean_error():
    model = nn.Module()
    model.a, model.b = nn.Linear(2, 2), nn.Linear(2, 2)
    model.b.weight = model.a.weight
    plan = Plan((Rule("a", "uniform"), Rule("b", "uniform", args={"a": []})))
    with pytest.raises(InittuiError, match='key "a" of scheme uniform must be a number'):
        resolve(model, plan)


@pytest.mark.parametrize("extension", [{"scale": math.nan}, {"scale": math.inf}])
def test_found_nonfinite_extension_values_in_code_built_rules_are_refused(extension):
    model = nn.Linear(2, 3)
    with pytest.raises(InittuiError, match="must be a finite number"):
        resolve(model, Plan((Rule("", "zeros", **extension),)))


def test_found_a_tied_embedding_keeps_its_padding_row_when_the_head_decides():
    model = nn.Module()
    model.head = nn.Linear(3, 5, bias=False)  # first name of the tied tensor
    model.emb = nn.Embedding(5, 3, padding_idx=2)
    model.head.weight = model.emb.weight
    resolved = resolve(model, Plan((Rule("**", "default"),)))
    assert resolved.steps[0].padding_idx == 2
    apply_plan(model, resolved)
    assert torch.count_nonzero(model.emb.weight[2]) == 0


@pytest.mark.parametrize(
    ("scheme", "args", "dtype"),
    [
        ("uniform", {"a": 0.0, "b": 65505.0}, torch.float16),
        ("constant", {"val": 7e4}, torch.float16),
        ("uniform", {"a": -1e39, "b": 0.0}, torch.float32),
        ("uniform", {"a": -1e308, "b": 1e308}, torch.float64),
        ("xavier_uniform", {"gain": 1e300}, torch.float32),
    ],
)
def test_found_values_outside_the_dtype_are_refused_before_torch_fails(scheme, args, dtype):
    model = nn.Linear(2, 3).to(dtype)
    with pytest.raises(InittuiError, match=f"does not fit in {str(dtype)[6:]}"):
        resolve(model, Plan((Rule("", scheme, "weight", args=args),)))
    model = nn.Linear(2, 3).to(torch.float64)  # the same values fit a wider dtype
    if scheme == "constant" or dtype is not torch.float64:
        resolve(model, Plan((Rule("", scheme, "weight", args=args),)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"std": 3.7e-184, "a": 1.0, "b": 1.0000000000000002}, "sampler overflows"),
        ({"a": 3.0, "b": 1e300}, "proposals per value"),
        ({"a": 50.0, "b": 1e4}, "proposals per value"),
    ],
)
def test_found_trunc_normal_bounds_torch_cannot_sample_are_refused(args, message):
    with pytest.raises(InittuiError, match=message):
        parse_plan(
            'version = 1\n[[rule]]\nselect = "**"\nscheme = "trunc_normal"\n'
            + "".join(f"{k} = {v!r}\n" for k, v in args.items())
        )


@pytest.mark.parametrize(
    "args",
    [
        {"std": 0.02, "a": -0.04, "b": 0.04},
        {"mean": 5.0, "a": -2.0, "b": 2.0},
        {"a": 3.0, "b": 10.0},
        {"a": 50.0, "b": 51.0},
        {"std": 1e300, "a": 0.0, "b": 5e-324},
    ],
)
@pytest.mark.timeout(30)  # torch's rejection sampler: a regression would loop, not fail
def test_trunc_normal_bounds_torch_samples_quickly_are_accepted(args):
    values = SCHEMES["trunc_normal"].validate(args)
    SCHEMES["trunc_normal"].apply(torch.empty(64), values, torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("dtype", "args"),
    [
        (torch.float32, {"mean": -1.137, "std": 1.192e-07, "a": -5e-324, "b": 7.784e-28}),
        (torch.bfloat16, {"mean": 0.0, "std": 1.0, "a": 20.0, "b": 20.5}),
    ],
)
def test_found_trunc_normal_far_tail_in_a_coarse_dtype_is_refused(dtype, args):
    """torch's sampler looped forever on the float32 case (the fuzzer's slow run hung)."""
    model = nn.Linear(3, 2).to(dtype)
    with pytest.raises(InittuiError, match="too coarse"):
        resolve(model, Plan((Rule("", "trunc_normal", "weight", args=args),)))
    if dtype is torch.bfloat16:  # float64 has the precision for it
        resolve(model.to(torch.float64), Plan((Rule("", "trunc_normal", "weight", args=args),)))


def test_found_kaiming_slope_whose_square_overflows_is_refused():
    with pytest.raises(InittuiError, match="too large"):
        SCHEMES["kaiming_normal"].validate({"a": 1e200})
    SCHEMES["kaiming_normal"].validate({"a": 1e200, "nonlinearity": "relu"})
