"""How much memory the model holds and how much the machine has: the copy limit of
:func:`compare` and the size check of ``--input-shape`` inputs."""

from __future__ import annotations

import os

import torch
from torch import nn

DEFAULT_COPY_LIMIT = 8 * 1024**3


def model_bytes(model: nn.Module) -> int:
    """Bytes held by the model's unique parameters and buffers."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        total += tensor.numel() * tensor.element_size()
    return total


def default_copy_limit(device: torch.device | None = None) -> int:
    """Half of the free memory where the model lives (RAM via ``os.sysconf``, or the free
    memory of a CUDA device), or 8 GB when that is unknown."""
    if device is not None and device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0] // 2)
        except (RuntimeError, AssertionError):
            return DEFAULT_COPY_LIMIT
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_COPY_LIMIT
    if pages <= 0 or page_size <= 0:
        return DEFAULT_COPY_LIMIT
    return int(pages * page_size // 2)


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory ``device`` has in all (None where that is not known)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[1])
        if device.type == "cpu":
            return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None
