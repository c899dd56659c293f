"""inittui: inspect, plan, preview and export PyTorch weight initialization."""

__version__ = "0.1.0"
