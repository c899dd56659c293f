"""Small CNN: fans of convolutions, including a depthwise (grouped) convolution.

For a Conv2d the fan is ``in_channels / groups * kh * kw`` (fan_in) and
``out_channels / groups * kh * kw`` (fan_out), so a 3x3 depthwise conv has fan_in 9 no
matter how many channels it has -- a good check that an init tool accounts for ``groups``.
The convolutions have ``bias=False`` (BatchNorm follows), BatchNorm weights/biases start
at 1/0, and the classifier head is a plain Linear layer.

TARGET: ``sample_models/convnet.py:ConvNet``
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_bn_relu(in_ch: int, out_ch: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(),
    )


class ConvNet(nn.Module):
    """Stages of conv-bn-relu blocks with 2x2 max pooling between stages.

    Each stage is a regular 3x3 conv block; the stage at index ``depthwise_stage`` (default:
    the last) also has a depthwise 3x3 conv block (``groups == channels``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: Sequence[int] = (16, 32, 64),
        depthwise_stage: int = -1,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths:
            raise ValueError("widths must not be empty")
        dw = depthwise_stage % len(widths)
        stages: list[nn.Module] = []
        ch = in_channels
        for i, w in enumerate(widths):
            if i > 0:
                stages.append(nn.MaxPool2d(2))
            block = [conv_bn_relu(ch, w)]
            if i == dw:
                block.append(conv_bn_relu(w, w, groups=w))  # depthwise
            stages.append(nn.Sequential(*block))
            ch = w
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.features(x))))


def example_inputs(model: nn.Module) -> torch.Tensor:
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return torch.randn(4, first.in_channels, 32, 32)
