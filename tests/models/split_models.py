"""Models for the split tests: a fused q/k/v Linear (GQA-like sizes), MultiheadAttention,
and a scalar (0-dim) parameter."""

from __future__ import annotations

import torch
from torch import nn


class Fused(nn.Module):
    """``qkv``: Linear(32, 96) holding q, k, v stacked along dim 0; ``attn``: MHA(32)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(32, 96)
        self.attn = nn.MultiheadAttention(32, 4)
        self.out = nn.Linear(96, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.qkv(x))


class Scalar(nn.Module):
    """A 0-dim parameter beside a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.alpha


class GPT2Attention(nn.Module):
    """GPT-2's fused attention projection: transformers' ``Conv1D`` ``c_attn`` (weight
    stored (in, out) = (128, 384): q, k, v side by side along dim 1) and ``c_proj``."""

    def __init__(self, embd: int = 128) -> None:
        super().__init__()
        from transformers.pytorch_utils import Conv1D

        self.c_attn = Conv1D(3 * embd, embd)
        self.c_proj = Conv1D(embd, embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.c_attn(x).chunk(3, -1)
        return self.c_proj(q + k + v)
