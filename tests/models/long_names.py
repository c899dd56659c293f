"""Modules under 60-character paths of a's (a backtracking glob's worst case)."""

from torch import nn


class LongNames(nn.Module):
    def __init__(self):
        super().__init__()
        inner = nn.Module()
        inner.add_module("a" * 29, nn.Linear(2, 2))
        self.add_module("a" * 30, inner)  # path: 30 a's, a dot, 29 a's
        self.add_module("a" * 60, nn.Linear(2, 2))
