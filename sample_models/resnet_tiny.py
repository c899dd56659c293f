"""Tiny ResNet: residual blocks where the last BatchNorm of each block is ``bn2``.

Shows, for weight initialization:

* Kaiming-normal (fan_out, relu) convs, the torchvision ResNet default.
* "Zero-init residual": setting ``*.bn2.weight`` to 0 makes every residual block start as
  the identity, which stabilizes early training (Goyal et al., 2017). Select it with a
  pattern like ``layer*.bn2.weight``.
* 1x1 downsample convs (``downsample.0``) with a fan of just ``in_channels``.

TARGET: ``sample_models/resnet_tiny.py:TinyResNet``
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TinyResNet(nn.Module):
    """Stem + three BasicBlocks (16 -> 16, 16 -> 32 /2, 32 -> 64 /2) + Linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(16, 16)  # identity shortcut
        self.layer2 = BasicBlock(16, 32, stride=2)  # 1x1 downsample shortcut
        self.layer3 = BasicBlock(32, 64, stride=2)  # 1x1 downsample shortcut
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def example_inputs(model: nn.Module) -> torch.Tensor:
    return torch.randn(4, model.conv1.in_channels, 32, 32)
