"""Models whose construction or forward pass goes wrong in every way a user's code can."""

import sys

import torch
from torch import nn


class Recursive(nn.Module):
    """Infinite recursion in the constructor (RecursionError)."""

    def __init__(self, depth: int = 0):
        super().__init__()
        self.child = Recursive(depth + 1)


class Exits(nn.Module):
    """Calls sys.exit in the constructor."""

    def __init__(self):
        super().__init__()
        sys.exit(3)


class ForwardRaises(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        raise RuntimeError("forward is not implemented for this input\nsecond line")


def example_inputs():
    return torch.zeros(2, 4)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.gru = nn.GRU(3, 5)
        self.conv = nn.Conv3d(2, 2, 1)


class NotTensors(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)


class ForwardExits(nn.Module):
    """Calls sys.exit in forward (a script's argument parsing run by mistake)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        sys.exit("usage: train.py DATA")
