"""A model whose constructor changes the current folder (to $INITTUI_TEST_CHDIR): relative
output paths must already be absolute by then (tests/test_bad_input_writes.py)."""

import os

from torch import nn


class Wanders(nn.Sequential):
    def __init__(self) -> None:
        os.chdir(os.environ["INITTUI_TEST_CHDIR"])
        super().__init__(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
