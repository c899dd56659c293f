"""A model of 256 MB in 32 tensors, for killing an export while it writes its checkpoint
(tests/test_kill_export.py): many tensors, so torch.save returns to Python between them."""

import torch
from torch import nn


class Big(nn.Module):
    def __init__(self, count: int = 32, rows: int = 1024, cols: int = 2048) -> None:
        super().__init__()
        self.blocks = nn.ParameterList(nn.Parameter(torch.empty(rows, cols)) for _ in range(count))
