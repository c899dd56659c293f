"""Models for ``--blocks K`` (tests/test_blocks.py, benchmarks/bench_blocks_70b.py).

``ResidualMLP`` and ``ScaledChain`` are plain nets with 12 repeated blocks; ``llama`` builds
a transformers ``LlamaForCausalLM`` from a ``LlamaConfig`` offline (no download) and returns
its logits: ``llama_70b`` is Llama-3-70B's shape (hidden 8192, intermediate 28672, 80 layers,
64 heads, 8 kv heads, vocab 128256), to be built on meta only (``--blocks K``).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    """in -> 12 residual blocks (pre-norm MLPs) -> out."""

    def __init__(self, width: int = 32, depth: int = 12) -> None:
        super().__init__()
        self.inp = nn.Linear(16, width)
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(depth))
        self.out = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        for block in self.blocks:
            x = block(x)
        return self.out(x)


class ScaledChain(nn.Module):
    """12 identical bias-free Linear blocks and nothing else: with ``eye`` weights scaled by
    ``a`` each block multiplies the std by exactly ``a``."""

    def __init__(self, width: int = 16, depth: int = 12) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(nn.Linear(width, width, bias=False) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Flat(nn.Module):
    """No repeated blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class LlamaLM(nn.Module):
    """A transformers ``LlamaForCausalLM`` whose forward takes ``input_ids`` and returns the
    logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits


def llama(
    hidden_size: int = 256,
    intermediate_size: int = 688,
    num_hidden_layers: int = 8,
    num_attention_heads: int = 8,
    num_key_value_heads: int = 2,
    vocab_size: int = 1000,
) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        vocab_size=vocab_size,
        max_position_embeddings=2048,
    )
    return LlamaLM(LlamaForCausalLM(config))


def llama_70b() -> nn.Module:
    """Llama-3-70B's shapes (~70.6B parameters): build it on meta only."""
    return llama(8192, 28672, 80, 64, 8, 128256)
