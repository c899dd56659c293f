"""Named plans shipped with inittui: ``preset:NAME`` wherever a plan path is accepted.

Each preset is a TOML plan file in this folder (``NAME.toml``) whose leading comment says
what it mirrors and where that comes from. :data:`PRESETS` lists them, in the order
``inittui presets`` prints them, with one line each. This module reads text only (no torch,
no inittui imports); :func:`inittui.core.workspace.read_plan` parses a preset like a file.
"""

from __future__ import annotations

import difflib
from importlib import resources

PREFIX = "preset:"

PRESETS: dict[str, str] = {
    "torch-default": "PyTorch's own reset_parameters for every module (scheme default)",
    "gpt2": "Hugging Face GPT-2 (GPT2PreTrainedModel._init_weights): normal 0.02, "
    "c_proj 0.02/sqrt(2*n_layer)",
    "bert": "Hugging Face BERT (BertPreTrainedModel._init_weights): normal 0.02, "
    "padding row zero, LayerNorm 1/0",
    "llama": "TorchTitan Llama 3 depth_init on HF Llama names: trunc_normal 0.02, "
    "o/up/down_proj 0.02/sqrt(2*(layer+1))",
    "nanogpt": "karpathy/nanoGPT GPT._init_weights: normal 0.02, c_proj 0.02/sqrt(2*n_layer)",
    "vit": "timm ViT jax mode (init_weights_vit_jax): xavier_uniform, head zero, "
    "patch embed lecun_normal truncated",
    "vit-timm": "timm ViT default mode (init_weights_vit_timm): trunc_normal 0.02 on Linear",
    "fixup": "Fixup (Zhang et al. 2019): residual branch last layer zero, others He "
    "scaled by depth**(-1/(2m-2))",
}
"""Every preset by name, with what it mirrors (one line)."""


class PresetError(ValueError):
    """An unknown or empty preset name; the message is one line listing the presets."""


def is_preset(path: object) -> bool:
    """Whether a plan path names a preset (``preset:NAME``)."""
    return isinstance(path, str) and path.startswith(PREFIX)


def _listing() -> str:
    return ", ".join(PRESETS)


def preset_text(name: str) -> str:
    """The TOML text of preset ``name`` (exactly the shipped file)."""
    if not name:
        raise PresetError(
            f"'{PREFIX}' needs a preset name, e.g. {PREFIX}gpt2; presets: {_listing()}"
        )
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise PresetError(f"unknown preset {name!r}{hint}; presets: {_listing()}")
    return resources.files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")


def preset_name(path: str) -> str:
    """``gpt2`` for ``preset:gpt2``."""
    return path[len(PREFIX) :].strip()
