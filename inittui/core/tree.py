"""Module and parameter records: the model's tree, fans, tied parameters.

Each parameter carries torch's layout fans (``torch_fan_in``/``torch_fan_out``:
:func:`inittui.core.schemes.fans`, tested equal to ``_calculate_fan_in_and_fan_out``) and
the fans the schemes use (``fan_in``/``fan_out``), which differ where the layout misleads:
a known layout here (:func:`inittui.core.fans.layout_fans`), or a traced forward
(:func:`inittui.core.fans.traced_tree`). ``fan_note`` names both where they differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from inittui.core.fans import KNOWN, layout_fans
from inittui.core.provenance import InitCall, provenance_of
from inittui.core.schemes import fans


def fan_note(module: nn.Module, param_name: str) -> str | None:
    """Where torch's layout fans mislead for this parameter (a transformers ``Conv1D``, a
    transposed or grouped conv): one sentence naming the computed fans and torch's."""
    weight = getattr(module, param_name, None)
    if not isinstance(weight, torch.Tensor) or _is_uninitialized(weight):
        return None
    info = layout_fans(module, param_name, tuple(weight.shape))
    return None if info is None or info.source != KNOWN else info.note


@dataclass
class ParamRecord:
    """One unique parameter tensor, under its first name."""

    name: str
    module: str
    module_type: str
    local_name: str
    shape: tuple[int, ...] | None
    dtype: str
    device: str
    numel: int
    requires_grad: bool
    fan_in: int | float | None  # the fans the schemes use (see inittui.core.fans)
    fan_out: int | float | None
    aliases: list[str] = field(default_factory=list)
    uninitialized: bool = False
    fan_note: str | None = None
    torch_fan_in: int | None = None  # torch's layout rule (_calculate_fan_in_and_fan_out)
    torch_fan_out: int | None = None
    fan_source: str | None = None  # "trace", "known layout" or "torch"; None under 2 dims
    # What the model's construction did (core/provenance.py); empty when not recorded.
    init_calls: tuple[InitCall, ...] = ()
    init_flags: tuple[str, ...] = ()
    tensor: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def has_data(self) -> bool:
        return not self.uninitialized and self.tensor is not None and not self.tensor.is_meta


@dataclass
class BufferRecord:
    name: str
    module: str
    shape: tuple[int, ...] | None
    dtype: str
    device: str
    numel: int
    persistent: bool = True


@dataclass
class ModuleRecord:
    """One module, pre-order as ``named_modules()``; shared modules appear once."""

    path: str
    type: str
    depth: int
    own_params: int
    num_params: int
    children: list[str]
    param_names: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    leaf: bool = True


@dataclass
class ModelTree:
    modules: list[ModuleRecord]
    parameters: list[ParamRecord]
    buffers: list[BufferRecord]
    module_objects: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    # The arguments the model was built with (what expressions' arg.NAME read); set by
    # inittui.core.fans.traced_tree from the LoadedModel, used by resolve_plan by default.
    constructor_args: dict[str, object] | None = field(default=None, repr=False)

    @property
    def total_params(self) -> int:
        return sum(p.numel for p in self.parameters)

    def param(self, name: str) -> ParamRecord:
        """The record of the parameter called ``name`` (or one of its tied aliases)."""
        return self._index()[0][name]

    def params_of(self, module_path: str) -> list[ParamRecord]:
        return list(self._index()[1].get(module_path, ()))

    def _index(self) -> tuple[dict[str, ParamRecord], dict[str, list[ParamRecord]]]:
        """Look-ups by name and by module, built once (and again if ``parameters``
        changes length): a search per call made reports on big models quadratic."""
        cached = self.__dict__.get("_lookup")
        if cached is None or cached[0] != len(self.parameters):
            by_name: dict[str, ParamRecord] = {}
            by_module: dict[str, list[ParamRecord]] = {}
            for record in self.parameters:
                by_name.setdefault(record.name, record)
                by_module.setdefault(record.module, []).append(record)
            for record in self.parameters:
                for alias in record.aliases:
                    by_name.setdefault(alias, record)
            cached = (len(self.parameters), by_name, by_module)
            self.__dict__["_lookup"] = cached
        return cached[1], cached[2]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _is_uninitialized(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, nn.parameter.UninitializedTensorMixin)


def _shape(tensor: torch.Tensor) -> tuple[int, ...] | None:
    if _is_uninitialized(tensor):
        return None
    return tuple(int(s) for s in tensor.shape)


def _split(name: str) -> tuple[str, str]:
    module, _, local = name.rpartition(".")
    return module, local


def _all_named_parameters(model: nn.Module) -> Iterable[tuple[str, nn.Parameter]]:
    """``model.named_parameters(remove_duplicate=False)``, in its order, read from each
    module's ``_parameters``: torch's version hashes every tensor (a Python call each),
    a third of building a 10,000-module tree."""
    for path, module in model.named_modules(remove_duplicate=False):
        for local, param in module._parameters.items():
            if param is not None:
                yield (f"{path}.{local}" if path else local), param


def build_tree(model: nn.Module) -> ModelTree:
    """Records for every module, unique parameter and buffer of ``model``."""
    modules_by_path = dict(model.named_modules())
    records = _param_records(model, modules_by_path)
    return ModelTree(
        modules=_module_records(model, modules_by_path, records),
        parameters=list(records.values()),
        buffers=_buffer_records(model, modules_by_path),
        module_objects=modules_by_path,
    )


def _param_records(
    model: nn.Module, modules_by_path: dict[str, nn.Module]
) -> dict[int, ParamRecord]:
    """One record per unique parameter tensor (keyed by ``id``), in
    ``named_parameters()`` order, under its first name; later names are its aliases."""
    records: dict[int, ParamRecord] = {}
    provenance = provenance_of(model) or {}
    for name, param in _all_named_parameters(model):
        key = id(param)
        if key in records:
            records[key].aliases.append(name)
            continue
        module_path, local = _split(name)
        owner = modules_by_path.get(module_path)
        if owner is None:  # parameter reached through a shared module's second path
            owner = model.get_submodule(module_path)
        shape = _shape(param)
        fan = fans(shape) if shape is not None else None
        info = layout_fans(owner, local, shape)
        history = provenance.get(name)
        records[key] = ParamRecord(
            name=name,
            module=module_path,
            module_type=type(owner).__name__,
            local_name=local,
            shape=shape,
            dtype=_dtype_name(param.dtype),
            device=str(param.device),
            numel=0 if shape is None else int(param.numel()),
            requires_grad=bool(param.requires_grad),
            fan_in=None if info is None else info.fan_in,
            fan_out=None if info is None else info.fan_out,
            uninitialized=_is_uninitialized(param),
            fan_note=None if info is None else info.note,
            torch_fan_in=None if fan is None else fan[0],
            torch_fan_out=None if fan is None else fan[1],
            fan_source=None if info is None else info.source,
            init_calls=() if history is None else history.calls,
            init_flags=() if history is None else history.flags,
            tensor=param,
        )
    return records


def _module_records(
    model: nn.Module, modules_by_path: dict[str, nn.Module], records: dict[int, ParamRecord]
) -> list[ModuleRecord]:
    """One record per module (first path), with its own and subtree parameter counts."""
    # Module aliases: a module object reachable under several paths.
    module_aliases: dict[int, list[str]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        module_aliases.setdefault(id(module), []).append(path)

    # The parameters below each module, children first (one walk, not one per module).
    subtree_ids: dict[int, set[int]] = {}
    for module in reversed(list(modules_by_path.values())):
        ids = {id(p) for p in module._parameters.values() if p is not None}
        for child in module._modules.values():
            if child is not None:
                below = subtree_ids.get(id(child))
                ids |= below if below is not None else {id(p) for p in child.parameters()}
        subtree_ids[id(module)] = ids

    modules: list[ModuleRecord] = []
    for path, module in modules_by_path.items():
        own_tensors = [p for p in module._parameters.values() if p is not None]
        own = [
            records[id(p)].name
            for p in own_tensors
            if id(p) in records and records[id(p)].module == path
        ]
        children = [name for name, child in module._modules.items() if child is not None]
        modules.append(
            ModuleRecord(
                path=path,
                type=type(module).__name__,
                depth=0 if path == "" else path.count(".") + 1,
                own_params=sum(records[id(p)].numel for p in own_tensors if id(p) in records),
                num_params=sum(records[k].numel for k in subtree_ids[id(module)] if k in records),
                children=children,
                param_names=own,
                aliases=[a for a in module_aliases.get(id(module), []) if a != path],
                leaf=not children,
            )
        )
    return modules


def _buffer_records(model: nn.Module, modules_by_path: dict[str, nn.Module]) -> list[BufferRecord]:
    records = []
    for name, buf in model.named_buffers():
        module_path, local = _split(name)
        owner = modules_by_path.get(module_path, model)
        shape = _shape(buf)
        records.append(
            BufferRecord(
                name=name,
                module=module_path,
                shape=shape,
                dtype=_dtype_name(buf.dtype),
                device=str(buf.device),
                numel=0 if shape is None else int(buf.numel()),
                persistent=local not in getattr(owner, "_non_persistent_buffers_set", ()),
            )
        )
    return records


def param_tensors(tree: ModelTree) -> Iterable[tuple[str, torch.Tensor]]:
    """(name, tensor) for every parameter that holds data (not meta, not lazy)."""
    for record in tree.parameters:
        if record.has_data:
            assert record.tensor is not None
            yield record.name, record.tensor.detach()
