"""A model file in a package: uses a relative import."""

from torch import nn

from .blocks import Block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())
