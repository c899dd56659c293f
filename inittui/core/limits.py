"""Numeric limits every front end checks the same way (imports nothing heavy, so the
argument parser can use it without loading torch)."""

from __future__ import annotations

SEED_MAX = 2**64 - 1
"""The largest seed: ``torch.Generator.manual_seed`` takes 64 bits."""


def seed_too_large(seed: int) -> str | None:
    """Why ``seed`` is out of range (the same words for ``--seed`` and a plan's ``seed``),
    or None when it fits."""
    if seed > SEED_MAX:
        return f"must be at most 2**64 - 1 ({SEED_MAX}), got {seed}"
    return None
