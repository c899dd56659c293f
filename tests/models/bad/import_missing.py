"""A model file that imports a package that is not installed."""

import inittui_no_such_package_xyz  # noqa: F401
from torch import nn


class Net(nn.Module):
    pass
