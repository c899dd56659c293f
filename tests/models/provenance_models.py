"""Models whose construction does something provenance must see (tests/test_provenance.py)."""

from __future__ import annotations

import torch
from torch import nn


class Reinit(nn.Module):
    """The transformers pattern: layers init themselves, then ``_init_weights`` again."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            module.bias.data.zero_()


class Garbage(nn.Module):
    """A parameter from torch.empty never written, one copied from another tensor, one
    filled by model code, one scaled in no_grad."""

    def __init__(self) -> None:
        super().__init__()
        self.raw = nn.Parameter(torch.empty(3, 5))
        self.copied = nn.Parameter(torch.empty(4))
        self.copied.data.copy_(torch.arange(4.0))
        self.filled = nn.Parameter(torch.empty(2))
        self.filled.data.fill_(0.5)
        self.scaled = nn.Parameter(torch.empty(6, 6))
        nn.init.xavier_normal_(self.scaled)
        with torch.no_grad():
            self.scaled.mul_(0.5)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(10, 4, padding_idx=0)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.wte.weight


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        raise RuntimeError("boom")


def deep(n: int = 1000) -> nn.Module:
    """A plain net of many small modules (the benchmark's 10k-module case at n=3400)."""
    return nn.Sequential(*[nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)) for _ in range(n)])
