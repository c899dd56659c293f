"""LSTM language model: embeddings with a padding row, and recurrent weights.

Shows the parameters an init tool must treat specially:

* ``embedding.weight`` has ``padding_idx=0``; its row 0 should stay zero after re-init.
* ``lstm.weight_ih_l*`` / ``weight_hh_l*`` stack the four gates (i, f, g, o) along dim 0,
  so they are ``(4 * hidden_size, ...)``; per-gate fans differ from the naive 2-D fans, and
  recurrent (hh) weights are often given an orthogonal init.
* ``lstm.bias_*`` -- a common trick is setting the forget-gate slice to 1.
* ``decoder`` is a wide Linear (hidden -> vocab) whose fan_out is the vocabulary size.

TARGET: ``sample_models/lstm_lm.py:LSTMLanguageModel``
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMLanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size: int = 1000,
        embed_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # nn.LSTM warns when dropout > 0 with a single layer.
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embedding(ids))
        out, _ = self.lstm(x)
        return self.decoder(self.drop(out))


def example_inputs(model: nn.Module) -> torch.Tensor:
    vocab = model.embedding.num_embeddings
    ids = torch.randint(1, vocab, (4, 16), dtype=torch.long)
    # Right-pad rows with the padding index 0, different lengths per row.
    for row, pad in enumerate((0, 3, 5, 8)):
        if pad:
            ids[row, -pad:] = 0
    return ids
