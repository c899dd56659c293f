"""A model file whose example_inputs calls sys.exit."""

import sys

from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


def example_inputs():
    sys.exit(4)
