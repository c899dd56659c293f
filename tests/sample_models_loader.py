"""Load a sample model by file name, outside the CLI (for reference values in tests)."""

import importlib.util

import torch
from harness import SAMPLES


def load_sample(file: str, name: str, seed: int = 0, **kwargs):
    spec = importlib.util.spec_from_file_location(f"sample_{file[:-3]}", SAMPLES / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    return getattr(module, name)(**kwargs)
