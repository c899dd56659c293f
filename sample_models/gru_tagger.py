"""Bidirectional GRU sequence tagger: gated recurrent weights in both directions.

Shows, for weight initialization:

* ``embedding.weight`` with ``padding_idx=0`` (row 0 must stay zero).
* GRU weights stack three gates (r, z, n): ``weight_ih_l0`` is ``(3 * hidden_size, embed_dim)``
  and ``weight_hh_l0`` is ``(3 * hidden_size, hidden_size)``; the reverse direction has its
  own ``*_reverse`` copies. Orthogonal init for ``weight_hh*`` is a common choice.
* A Linear head whose fan_in is ``2 * hidden_size`` (both directions concatenated).

TARGET: ``sample_models/gru_tagger.py:GRUTagger``
"""

from __future__ import annotations

import torch
from torch import nn


class GRUTagger(nn.Module):
    def __init__(
        self,
        vocab_size: int = 500,
        embed_dim: int = 32,
        hidden_size: int = 64,
        num_tags: int = 12,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden_size, num_tags)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.embedding(ids))
        return self.head(out)


def example_inputs(model: nn.Module) -> torch.Tensor:
    vocab = model.embedding.num_embeddings
    ids = torch.randint(1, vocab, (4, 12), dtype=torch.long)
    ids[1, -2:] = 0
    ids[3, -5:] = 0
    return ids
