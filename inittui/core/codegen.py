"""The resolved plan (IR) printed as a standalone, readable Python init script.

:func:`step_source` is the single translation of an :class:`InitStep` into Python; the
in-app apply (:mod:`inittui.core.apply`) executes exactly these lines, so the exported
script and the app cannot disagree.

Data-safe: every value that comes from the model, the target, a path or the plan enters the
script through ``repr`` (code: parameter names, arguments) or :func:`shown` (docstring and
``#`` comments: backslashes, quotes and every non-printable character escaped), so no name
can end a comment or a string, and the script always compiles.
"""

from __future__ import annotations

import datetime as _dt
import math
import textwrap

from inittui import __version__
from inittui.core.plan import InitStep, Plan, ResolvedPlan
from inittui.core.plan.draw import TILE_SCHEMES, tile_fill, view_expression
from inittui.core.plan.split import split_text
from inittui.core.prelude import DRAW_SCHEME, prelude_source, tile_count
from inittui.core.runtime import helper_source
from inittui.core.schemes import get_scheme


def shown(text: object, quotes: bool = True) -> str:
    """``text`` safe inside a ``\"\"\"`` docstring or after ``#``: backslashes, non-printable
    characters (newlines, ``\\r``, controls, lone surrogates) and, with ``quotes``, double
    quotes are escaped the way ``repr`` does. Plain names read unchanged, and a docstring
    holding ``shown(text)`` evaluates back to ``text``."""
    out = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif char == '"' and quotes:
            out.append('\\"')
        elif not char.isprintable():
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def step_comment(step: InitStep) -> str:
    """``layers.0.weight (64, 32): fan_in=32, fan_out=64; std 0.25 (std = ...)``."""
    parts = [f"{step.param} {tuple(step.shape)}"]
    if step.aliases:
        parts.append(f"(tied: {', '.join(step.aliases)})")
    detail = []
    if step.fan_in is not None:
        fans = f"fan_in={step.fan_in}, fan_out={step.fan_out}"
        if (step.fan_in, step.fan_out) != (step.torch_fan_in, step.torch_fan_out):
            fans += (
                f" (from the {step.fan_source}; torch's layout rule: "
                f"{step.torch_fan_in}, {step.torch_fan_out})"
            )
        detail.append(fans)
    if step.expected is not None:
        if step.expected.std is not None:
            detail.append(f"expected std {_fmt(step.expected.std)}")
        if step.expected.bound is not None:
            detail.append(f"bound {_fmt(step.expected.bound)}")
    if step.blocks:
        sizes = [stop - start for start, stop in step.blocks]
        detail.append(split_text(step.block_dim, sizes, step.gates))
    head = " ".join(parts)
    return f"{head}: {', '.join(detail)}" if detail else head


def draws_by_tiles(step: InitStep, draw_scheme: int = DRAW_SCHEME) -> bool:
    """Whether the step draws tile by tile (draw scheme 2, an element-by-element scheme, a
    tensor with values and more than one tile); else the whole tensor from one generator."""
    return (
        draw_scheme >= 2
        and step.scheme in TILE_SCHEMES
        and math.prod(step.shape) > 0
        and tile_count(step.shape) > 1
    )


def step_source(step: InitStep, draw_scheme: int = DRAW_SCHEME) -> str:
    """The Python lines (no indentation) that initialize one parameter.

    Names used: ``params`` (name -> parameter), ``seed``, ``torch``, the prelude and the
    runtime helpers.
    """
    if draws_by_tiles(step, draw_scheme):
        return _tile_source(step)
    lines = [f"with _fresh(params, {step.param!r}, seed) as (p, g):"]
    body = expression_comments(step)
    if step.blocks:  # a split: each block as its own tensor
        body += _block_lines(step)
    else:  # fan_view/fan_fill: fans other than torch's layout rule
        fans = (step.fan_in, step.fan_out)
        body.append(_draw_line(step, "p", step.fan_view, step.fan_fill, fans))
    if step.scale is not None:
        body.append(f"p.mul_({step.scale!r})")
    if step.forget_block is not None:
        start, stop, value = step.forget_block
        body.append(f"p[{start}:{stop}].fill_({value!r})  # forget gate")
    if step.padding_idx is not None:
        body.append(f"p[{step.padding_idx}].zero_()  # padding row stays zero")
    lines += ["    " + line for line in body]
    return "\n".join(lines)


def expression_comments(step: InitStep) -> list[str]:
    """``# std = 0.02 / sqrt(2 * config.n_layer) = 0.004082482904638631``: the rule's
    expressions as comments (the code holds their values, exactly)."""
    return [
        f"# {shown(key, quotes=False)} = {shown(text, quotes=False)} = {value!r}"
        for key, text, value in step.expressions
    ]


def _draw_line(step: InitStep, name: str, view, fill, fans=None) -> str:
    """One tensor's draw: torch's function on ``name`` (or on the view with the fans the
    scheme uses), or normal_/uniform_ with the computed std or bound. ``fans`` are the
    tensor's (or block's) effective fans, for a row that passes them in its call
    (``variance_scaling``)."""
    if fill is not None:
        kind, value = fill
        if kind == "uniform":
            return f"torch.nn.init.uniform_({name}, a={-value!r}, b={value!r}, generator=g)"
        return f"torch.nn.init.normal_({name}, mean=0.0, std={value!r}, generator=g)"
    target = name if view is None else view_expression(view, name)
    return get_scheme(step.scheme).code(target, step.kwargs, "g", fans)


def _block_lines(step: InitStep) -> list[str]:
    """A split step: each block drawn in order with the same generator; one loop when
    every block draws alike (``for block in p.chunk(4, 0):``), else one line per block."""
    assert step.blocks is not None
    sizes = [stop - start for start, stop in step.blocks]
    if len(set(sizes)) == 1:
        cut = f"p.chunk({len(sizes)}, {step.block_dim})"
    else:
        cut = f"p.split({sizes!r}, {step.block_dim})"
    draws = step.block_draws or ()
    in_call = get_scheme(step.scheme).fans_in_call  # the call spells out each block's fans
    ways = {
        (d.fan_view, d.fan_fill, (d.fan_in, d.fan_out) if in_call else None) for d in draws
    } or {(None, None, None)}
    if len(ways) == 1:
        view, fill, fans = next(iter(ways))
        return [f"for block in {cut}:", "    " + _draw_line(step, "block", view, fill, fans)]
    lines = [f"blocks = {cut}"]
    for i, draw in enumerate(draws):
        fans = (draw.fan_in, draw.fan_out) if in_call else None
        lines.append(_draw_line(step, f"blocks[{i}]", draw.fan_view, draw.fan_fill, fans))
    return lines


def _tile_source(step: InitStep) -> str:
    """A step drawn tile by tile: ``for p, g, k, r in _blocks(params, name, seed):`` with
    the draw (per split block ``k`` where the blocks draw differently), then the scale and
    the rows set by global row (``r`` is the tile's, or block part's, first row)."""
    split = ""
    if step.blocks:
        sizes = [stop - start for start, stop in step.blocks]
        split = f", split=({step.block_dim}, {sizes!r})"
        whole = {d.start: d for d in step.block_draws or ()}
        parts = []
        for start, stop in step.blocks:
            draw = whole.get(start)
            shape = tuple(
                stop - start if d == step.block_dim else n for d, n in enumerate(step.shape)
            )
            if draw is None:
                parts.append(_tile_draw(step, shape, None, None, (step.fan_in, step.fan_out)))
            else:
                fans = (draw.fan_in, draw.fan_out)
                parts.append(_tile_draw(step, shape, draw.fan_view, draw.fan_fill, fans))
    else:
        fans = (step.fan_in, step.fan_out)
        parts = [_tile_draw(step, step.shape, step.fan_view, step.fan_fill, fans)]
    body = expression_comments(step)
    by_block = len(set(parts)) > 1
    if by_block:
        for k, line in enumerate(parts):
            body += [f"{'if' if k == 0 else 'elif'} k == {k}:", "    " + line]
    else:
        body.append(parts[0])
    rows = step.forget_block is not None or step.padding_idx is not None
    if step.scale is not None:
        body.append(f"p.mul_({step.scale!r})")
    if step.forget_block is not None:
        start, stop, value = step.forget_block
        body.append(f"_rows(p, r, {start}, {stop}).fill_({value!r})  # forget gate")
    if step.padding_idx is not None:
        index = step.padding_idx % step.shape[0]
        body.append(f"_rows(p, r, {index}, {index + 1}).zero_()  # padding row stays zero")
    drawn = "g" if get_scheme(step.scheme).uses_generator else "_"
    names = f"p, {drawn}, {'k' if by_block else '_'}, {'r' if rows else '_'}"
    head = f"for {names} in _blocks(params, {step.param!r}, seed{split}):"
    return "\n".join([head, *("    " + line for line in body)])


def _tile_draw(step: InitStep, shape: tuple[int, ...], view, fill, fans) -> str:
    """One tile's draw for a tensor (or split block) of ``shape``: the scheme's own call
    when it has no fans or takes them in the call; a fan-based torch function as the
    normal_/uniform_ it performs on the whole tensor, with its std or bound (a tile has
    other fans)."""
    scheme = get_scheme(step.scheme)
    if not scheme.fan_based or scheme.fans_in_call:
        return _draw_line(step, "p", None, None, fans)
    function = (scheme.function or "").rsplit(".", 1)[-1]
    if fill is not None:
        note = f"{function} with the fans fan_in={fans[0]}, fan_out={fans[1]}"
    else:
        kind, value, used = tile_fill(scheme, step.kwargs, shape, view)
        fill = (kind, value)
        what = "of the whole tensor" if not step.blocks else "of the whole block"
        note = f"{function} {what}: fan_in={used[0]}, fan_out={used[1]}"
    return f"{_draw_line(step, 'p', None, fill)}  # {note}"


def _helpers_used(steps: list[InitStep]) -> list[str]:
    names: list[str] = []
    for step in steps:
        for helper in getattr(get_scheme(step.scheme), "helpers", ()) or ():
            if helper not in names:
                names.append(helper)
    return names


def _rule_header(plan: Plan, index: int, steps: list[InitStep]) -> str:
    rule = plan.rules[index]
    text = f"rule {index + 1}: {shown(rule.describe(), quotes=False)}"
    if steps and steps[0].from_default:
        text += " (PyTorch's reset_parameters, per module type)"
    if steps and steps[0].expected is not None and steps[0].expected.formula:
        formula = steps[0].expected.formula
        text += "\n" + "\n".join(shown(line, quotes=False) for line in formula.split("\n"))
    return "\n".join(("    # " + line) if line.strip() else line for line in text.split("\n"))


def _draw_scheme_text(draw_scheme: int) -> list[str]:
    """The docstring's lines on the draw scheme (plan key ``draw_scheme``)."""
    if draw_scheme == 1:
        return [
            "Draw scheme 1 (the plan's draw_scheme = 1): every parameter is drawn whole from its",
            "one generator, as inittui before draw scheme 2 did; a sharded rank draws each full",
            "tensor and keeps its shard.",
        ]
    return [
        "Draw scheme 2: a parameter larger than one tile (256 rows x 512 columns, or 131072",
        "elements of a 1-D tensor) draws each tile from its own generator seeded from (seed,",
        "name, tile index), so a sharded rank draws only the tiles it holds; orthogonal,",
        "sparse, eye and dirac draw the whole tensor.",
    ]


def render_script(
    resolved: ResolvedPlan, target: str = "", model_class: str = "", seed: int | None = None
) -> str:
    """A single Python file defining ``init_weights(model, seed=<plan seed>)``."""
    plan = resolved.plan
    default_seed = plan.seed if seed is None else seed
    steps = resolved.steps
    draw_scheme = plan.draw_scheme
    tiles = any(draws_by_tiles(step, draw_scheme) for step in steps)
    shapes = ",\n".join(f"    {s.param!r}: {tuple(s.shape)!r}" for s in steps)
    helpers = _helpers_used(steps)
    stamp = _dt.date.today().isoformat()
    out = [
        f'"""Weight initialization for {shown(model_class) or "the model"}, '
        f"generated by inittui {__version__} on {stamp}.",
        "",
        f"Target: {shown(target) or '-'}",
        f"Plan: {len(plan.rules)} rule(s), {len(steps)} parameter(s), default seed {default_seed}.",
        "",
        "Usage:",
        "    from this_file import init_weights",
        "    init_weights(model)            # or init_weights(model, seed=1)",
        "",
        "Every parameter draws from its own CPU generator seeded from (seed, parameter name),",
        "so the numbers are the same on any device, for any subset of parameters, and after",
        "model.to_empty(...) from the meta device. Parameters not listed here are untouched.",
        *_draw_scheme_text(draw_scheme),
        "Requires only torch.",
        '"""',
        "",
        "import torch",
        "",
        f"PLAN_SEED = {default_seed}",
        f"DRAW_SCHEME = {draw_scheme}  # how the numbers are cut into generators (docstring)",
        "",
        "# Every planned parameter and its shape, checked before anything is touched.",
        "EXPECTED_SHAPES = {" + ("\n" + shapes + ",\n" if steps else "") + "}",
        "",
        "",
        prelude_source(tiles).rstrip(),
        "",
    ]
    if helpers:
        out += ["", helper_source(helpers).rstrip(), ""]
    out += [
        "",
        "@torch.no_grad()",
        "def init_weights(model: torch.nn.Module, seed: int = PLAN_SEED) -> None:",
        '    """Initialize ``model`` in place (see the module docstring)."""',
        "    params = _check_params(model, EXPECTED_SHAPES)",
    ]
    if not steps:
        out.append("    del params  # the plan decides no parameter")
    by_rule: dict[int, list[InitStep]] = {}
    for step in steps:
        by_rule.setdefault(step.rule_index, []).append(step)
    for index in sorted(by_rule):
        group = by_rule[index]
        out.append("")
        out.append(_rule_header(plan, index, group))
        for step in group:
            out.append(f"    # {shown(step_comment(step), quotes=False)}")
            out.append(textwrap.indent(step_source(step, draw_scheme), "    "))
    out += [
        "",
        "",
        'if __name__ == "__main__":',
        '    print(f"init_weights initializes {len(EXPECTED_SHAPES)} parameter(s); import it '
        'and call init_weights(model).")',
        "",
    ]
    return "\n".join(out)
