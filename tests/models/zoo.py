"""Test models that are not samples: odd layouts, tied and shared weights, lazy, parametrized."""

import torch
from torch import nn
from torch.nn.utils import parametrizations


class Shared(nn.Module):
    """One Linear used twice (a shared module) and a tied output layer."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.emb = nn.Embedding(20, width, padding_idx=0)
        self.fc = nn.Linear(width, width)
        self.again = self.fc
        self.head = nn.Linear(width, 20, bias=False)
        self.head.weight = self.emb.weight
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, ids):
        return self.head(self.again(self.fc(self.emb(ids)))) * self.scale


class Convs(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 3)
        self.grouped = nn.Conv2d(8, 16, 3, groups=4)
        self.depthwise = nn.Conv2d(16, 16, 3, groups=16)
        self.up = nn.ConvTranspose2d(16, 6, 4, stride=2, groups=2)
        self.c3 = nn.Conv3d(2, 3, (1, 2, 3))
        self.bil = nn.Bilinear(3, 4, 5)


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(4)


class WeightNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = parametrizations.weight_norm(nn.Linear(5, 3))


class NeedsArgs(nn.Module):
    def __init__(self, hidden: int, depth: int, bias: bool = True):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(hidden, hidden, bias=bias) for _ in range(depth)])


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("width must be even")


def make_mlp(width: int = 4):
    """A factory function."""
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))


def not_a_module():
    return 42


instance = nn.Linear(3, 2)
NUMBER = 7


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, bidirectional=True)
        self.gru = nn.GRU(4, 5)
        self.cell = nn.LSTMCell(3, 4)
        self.attn = nn.MultiheadAttention(16, 4)
        self.ln = nn.LayerNorm(16)
        self.bn = nn.BatchNorm1d(16)
        self.rms = nn.RMSNorm(16)


class Counted(nn.Module):
    """A Linear beside non-float parameters: an int64 step counter and a complex weight."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.count = nn.Parameter(torch.zeros(3, dtype=torch.int64), requires_grad=False)
        self.phase = nn.Parameter(torch.zeros(4, 4, dtype=torch.complex64))
