"""Deep MLP: the classic demonstration of vanishing / exploding activation variance.

A stack of ``depth`` Linear layers, each followed by the same activation. With PyTorch's
default init (kaiming_uniform with a=sqrt(5), i.e. std ~= 1/sqrt(3 * fan_in)) the signal
shrinks layer by layer for ReLU; Kaiming (He) init keeps it stable for ReLU, Xavier (Glorot)
for tanh / linear, and too large a gain makes it explode. Change ``activation`` and ``depth``
to see how the right gain depends on the nonlinearity.

TARGET: ``sample_models/mlp.py:MLP``
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "identity": nn.Identity,
    "linear": nn.Identity,
    "sigmoid": nn.Sigmoid,
}


def _make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except (KeyError, AttributeError):
        allowed = ", ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; expected one of {allowed}") from None


class MLP(nn.Module):
    """``depth`` x (Linear + activation), then a Linear output layer."""

    def __init__(
        self,
        in_features: int = 64,
        width: int = 64,
        depth: int = 8,
        out_features: int = 10,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        layers: list[nn.Module] = []
        fan_in = in_features
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width))
            layers.append(_make_activation(activation))
            fan_in = width
        layers.append(nn.Linear(fan_in, out_features))
        self.activation = activation
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def example_inputs(model: nn.Module) -> torch.Tensor:
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    return torch.randn(8, first.in_features)
