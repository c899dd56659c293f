"""A model that takes an image and token ids: a Conv2d + BatchNorm image branch and an
Embedding + LSTM ids branch, joined by a Linear head. Its first layer is the Conv2d, so
neither input can be inferred from it alone: the tests feed it with ``--input-shape`` twice
and ``--input-dtype float32,long``, or with ``--inputs FILE``."""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 50


class ImageText(nn.Module):
    def __init__(self, channels: int = 3, width: int = 8, vocab: int = VOCAB) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Embedding(vocab, width)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.head = nn.Linear(2 * width, 4)

    def forward(self, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        seen = self.pool(torch.relu(self.bn(self.conv(image)))).flatten(1)
        read, _ = self.lstm(self.embed(ids))
        return self.head(torch.cat([seen, read[:, -1]], dim=1))


class KeywordOnly(ImageText):
    """The same model with keyword-only inputs: ``model(image=..., ids=...)``."""

    def forward(self, *, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(image, ids)
