"""``preview/check/lsuv --blocks K``: check a model too big to materialise on K of its blocks.

The model is built on meta. :func:`find_stack` finds its repeated blocks (the
``nn.ModuleList``/``nn.Sequential`` of same-class children with identical parameter shapes
that holds the most parameters: GPT-2's ``transformer.h``, Llama's ``model.layers``); the
stack keeps its first K blocks under their own names (``model.layers.0``, ...), so plan
globs match as on the full model. Everything left is materialised on the device
(``to_empty``) and initialised by the plan's own apply, resolved on the full model: the
kept blocks get exactly the numbers the full model's first K blocks get (seeds are per
parameter name). Parameters the plan leaves undecided get torch's defaults (the
``torch-default`` preset), as does everything without ``--plan``: the model's own
construction ran on meta and has no values.

A module outside the blocks holding more than :data:`STAND_IN_BYTES` (a 70B model's
embedding and LM head) is replaced by a **stand-in**: an Embedding keeps its first
:data:`STAND_IN_ROWS` rows (ids are drawn, or taken modulo, below that), a Linear its first
:data:`STAND_IN_ROWS` outputs, both drawn with the planned scheme and its statistics, not
the full tensor's numbers; each is named in ``stand_ins``. Buffers built on meta are
recomputed by a transformers model's ``_init_weights`` or a norm's ``reset_running_stats``;
any other buffer is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from inittui.core.errors import InittuiError
from inittui.core.loading import LoadedModel
from inittui.core.plan import ResolvedPlan

STAND_IN_BYTES = 256 * 2**20  # a module outside the blocks above this gets a stand-in
STAND_IN_ROWS = 1024
DEFAULT_PLAN = "preset:torch-default"


@dataclass(frozen=True)
class Stack:
    """The repeated blocks: the container's path, its block class, how many it has."""

    path: str
    block_type: str
    total: int
    params_per_block: int


@dataclass
class BlocksModel:
    """The truncated, materialised model and what was done to build it."""

    stack: Stack
    kept: int
    blocks: list[tuple[str, nn.Module]]
    stand_ins: list[str] = field(default_factory=list)
    defaults: int = 0  # parameters the plan left undecided, given torch's defaults
    plan_given: bool = False
    own_init: int = 0  # parameters neither decides: their module's own init

    def summary(self) -> dict[str, object]:
        return {
            "kept": self.kept,
            "total": self.stack.total,
            "path": self.stack.path,
            "type": self.stack.block_type,
            "stand_ins": list(self.stand_ins),
        }

    def lines(self) -> list[str]:
        """What the command says about the build, before any number."""
        weights = "the plan" if self.plan_given else "torch's defaults (no --plan)"
        lines = [
            f"blocks: {self.kept} of {self.stack.total} {self.stack.block_type} blocks of "
            f"{self.stack.path} built (the model on meta, weights from {weights}); "
            "the other blocks are not run"
        ]
        if self.plan_given and self.defaults:
            lines.append(
                f"blocks: {self.defaults} parameter(s) the plan leaves as constructed get "
                "torch's defaults (construction ran on meta)"
            )
        if self.own_init:
            lines.append(
                f"blocks: {self.own_init} parameter(s) with no rule and no torch default get "
                "their module's reset_parameters or the transformers model's _init_weights"
            )
        lines += [f"stand-in: {text}" for text in self.stand_ins]
        return lines


def _signature(module: nn.Module) -> tuple:
    return (type(module), tuple((n, tuple(p.shape)) for n, p in module.named_parameters()))


def find_stack(model: nn.Module) -> tuple[Stack, nn.Module] | None:
    """The container of repeated blocks holding the most parameters, or None."""
    best: tuple[int, Stack, nn.Module] | None = None
    for path, module in model.named_modules():
        if not isinstance(module, (nn.ModuleList, nn.Sequential)):
            continue
        children = list(module._modules.values())  # noqa: SLF001 - the container's own dict
        if len(children) < 2 or any(child is None for child in children):
            continue
        signature = _signature(children[0])
        if any(_signature(child) != signature for child in children[1:]):
            continue
        count = sum(p.numel() for p in module.parameters())
        if count and (best is None or count > best[0]):
            per_block = sum(p.numel() for p in children[0].parameters())
            stack = Stack(path, type(children[0]).__name__, len(children), per_block)
            best = (count, stack, module)
    return None if best is None else (best[1], best[2])


def check_blocks_option(blocks: int, stack: Stack | None, model_class: str) -> None:
    if blocks < 1:
        raise InittuiError(f"--blocks must be 1 or more, got {blocks}")
    if stack is None:
        raise InittuiError(
            f"--blocks: {model_class} has no repeated blocks (an nn.ModuleList or nn.Sequential "
            "of same-type children with the same parameter shapes); run without --blocks"
        )
    if blocks >= stack.total:
        raise InittuiError(
            f"--blocks {blocks} keeps every block of {stack.path} ({stack.total}); give "
            f"--blocks below {stack.total}, or run without --blocks to preview the whole model"
        )


def _truncate(container: nn.Module, kept: int) -> None:
    names = list(container._modules)  # noqa: SLF001
    for name in names[kept:]:
        del container._modules[name]  # noqa: SLF001


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)


class RowsStandIn(nn.Embedding):
    """An Embedding's first rows, standing in for the whole table; ids are taken modulo
    the rows kept."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's name
        return super().forward(input % self.num_embeddings)


def _stand_in(module: nn.Module, path: str) -> tuple[nn.Module, str] | None:
    if isinstance(module, nn.Embedding) and module.num_embeddings > STAND_IN_ROWS:
        total, dim = module.weight.shape
        pad = module.padding_idx if module.padding_idx is not None else None
        with torch.device("meta"):
            new = RowsStandIn(STAND_IN_ROWS, dim, dtype=module.weight.dtype,
                              padding_idx=pad if pad is not None and pad < STAND_IN_ROWS else None)  # fmt: skip
        text = (
            f"{path} ({type(module).__name__} {total}x{dim}): its first {STAND_IN_ROWS} rows, "
            f"drawn with the planned scheme (not the full tensor's numbers); ids modulo "
            f"{STAND_IN_ROWS}"
        )
        return new, text
    if isinstance(module, nn.Linear) and module.out_features > STAND_IN_ROWS:
        with torch.device("meta"):
            new = nn.Linear(module.in_features, STAND_IN_ROWS, bias=module.bias is not None,
                            dtype=module.weight.dtype)  # fmt: skip
        text = (
            f"{path} (Linear {module.in_features}->{module.out_features}): its first "
            f"{STAND_IN_ROWS} outputs, drawn with the planned scheme (not the full tensor's "
            "numbers); its output has those columns only"
        )
        return new, text
    return None


def _place_stand_ins(model: nn.Module, stack_path: str) -> list[str]:
    """Replace the big modules outside the stack; ``(path, text)`` of each stand-in."""
    texts = []
    tied: dict[int, nn.Parameter] = {}
    for path, module in list(model.named_modules()):
        inside = not stack_path or path == stack_path or path.startswith(stack_path + ".")
        if inside:
            continue
        size = sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
        if size <= STAND_IN_BYTES:
            continue
        made = _stand_in(module, path)
        if made is None:
            gib = size / 2**30
            raise InittuiError(
                f"--blocks: {path} ({type(module).__name__}, {gib:.1f} GiB) lies outside the "
                "repeated blocks and only an Embedding or a Linear can have a stand-in; "
                "build the model smaller or run without --blocks"
            )
        new, text = made
        old = id(module.weight)
        if old in tied and tuple(tied[old].shape) == tuple(new.weight.shape):
            new.weight = tied[old]  # tied weights stay tied
        tied.setdefault(old, new.weight)
        _set_module(model, path, new)
        texts.append(text)
    return texts


def _to_empty(model: nn.Module, device: torch.device) -> None:
    """``model.to_empty(device)`` keeping tied parameters tied (from meta, torch gives each
    module its own new parameter)."""
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for name, param in module._parameters.items():  # noqa: SLF001
            if param is not None:
                owners.setdefault(id(param), []).append((module, name))
    model.to_empty(device=device)
    for places in owners.values():
        first_module, first_name = places[0]
        shared = first_module._parameters[first_name]  # noqa: SLF001
        for module, name in places[1:]:
            module._parameters[name] = shared  # noqa: SLF001


def _rebuild_buffers(model: nn.Module) -> None:
    """Buffers built on meta hold nothing after ``to_empty``: recompute them, or refuse."""
    done: set[int] = set()
    for root in model.modules():
        init_weights = getattr(root, "_init_weights", None)
        if not callable(init_weights) or not hasattr(root, "config"):
            continue  # a transformers PreTrainedModel recomputes its buffers (rotary, ids)
        for module in root.modules():
            if module._buffers and id(module) not in done:  # noqa: SLF001
                with torch.no_grad():
                    init_weights(module)
                done.add(id(module))
    for path, module in model.named_modules():
        if id(module) in done or not module._buffers:  # noqa: SLF001
            continue
        reset = getattr(module, "reset_running_stats", None)
        if callable(reset):
            reset()
            continue
        name = next(iter(module._buffers))  # noqa: SLF001
        raise InittuiError(
            f"--blocks: the buffer {path + '.' if path else ''}{name} was built on meta and "
            "inittui cannot recompute it (only transformers models' and norms' buffers); "
            "run without --blocks"
        )


def _steps_for(model: nn.Module, planned: ResolvedPlan, defaults: ResolvedPlan):
    """The steps for the parameters left: the plan's, else torch's default; stand-ins get
    their step with their own shape. Returns (steps, names from the defaults, names that
    neither decides)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    by_name = {step.param: step for step in defaults.steps}
    from_plan = {step.param for step in planned.steps}
    by_name.update({step.param: step for step in planned.steps})
    steps, seen, from_default, undecided = [], set(), [], []
    for name, tensor in params.items():
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        step = by_name.get(name)
        if step is None:
            undecided.append(name)
            continue
        if step.param not in from_plan:
            from_default.append(name)
        if tuple(tensor.shape) != tuple(step.shape):
            if step.blocks or step.forget_block:
                raise InittuiError(f"--blocks: {name} is split by its rule and cannot stand in")
            step = dataclasses.replace(step, shape=tuple(tensor.shape), padding_idx=None)
        steps.append(step)
    return steps, from_default, undecided


def _own_init(model: nn.Module, names: list[str]) -> None:
    """Parameters no rule and no torch default decides: their module's own
    ``reset_parameters``, else a transformers model's ``_init_weights``; else refuse."""
    hf_roots = [m for m in model.modules() if callable(getattr(m, "_init_weights", None))]
    for name in names:
        owner_path = name.rpartition(".")[0]
        owner = model.get_submodule(owner_path) if owner_path else model
        reset = getattr(owner, "reset_parameters", None)
        roots = [root for root in hf_roots if any(m is owner for m in root.modules())]
        with torch.no_grad():
            if callable(reset):
                reset()
            elif roots:
                roots[-1]._init_weights(owner)  # noqa: SLF001 - transformers' own init
            else:
                raise InittuiError(
                    f"--blocks: no rule and no torch default decides {name} (construction "
                    "ran on meta, so it has no values); add a rule for it to the plan"
                )


def build_blocks(
    loaded: LoadedModel,
    kept: int,
    planned: ResolvedPlan,
    defaults: ResolvedPlan,
    device: torch.device,
    plan_given: bool,
) -> tuple[LoadedModel, BlocksModel]:
    """Truncate the meta model ``loaded`` to ``kept`` blocks, stand in for its big modules,
    materialise it on ``device`` and apply ``planned`` (``defaults`` for the rest)."""
    from inittui.core.apply import apply_plan

    model = loaded.model
    found = find_stack(model)
    check_blocks_option(kept, found[0] if found else None, loaded.model_class)
    stack, container = found  # type: ignore[misc]
    _truncate(container, kept)
    stand_ins = _place_stand_ins(model, stack.path)
    _to_empty(model, device)
    _rebuild_buffers(model)
    steps, from_default, undecided = _steps_for(model, planned, defaults)
    _own_init(model, undecided)
    apply_plan(model, steps, seed=planned.plan.seed)
    blocks = [(f"{stack.path}.{name}" if stack.path else name, child)
              for name, child in container.named_children()]  # fmt: skip
    built = BlocksModel(stack, kept, blocks, stand_ins, len(from_default), plan_given,
                        len(undecided))  # fmt: skip
    return dataclasses.replace(loaded, model=model, device=device), built
