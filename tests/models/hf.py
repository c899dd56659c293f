"""Transformers models built offline from configs (no download): GPT-2 and BERT as Hugging
Face builds and initialises them. Targets: ``tests/models/hf.py:gpt2``, ``...:bert``.

``example_inputs`` feeds token ids; the models return their last hidden state (a tensor), so
the preview sees one main output.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 1000
SEQ = 32


class HFWrapper(nn.Module):
    """A transformers model whose forward takes ``input_ids`` and returns the last hidden
    state; ``config`` is the model's config (as transformers models have)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids).last_hidden_state


def gpt2(n_layer: int = 4, n_embd: int = 128, n_head: int = 4, wrap: bool = True) -> nn.Module:
    """GPT-2 (transformers ``GPT2Model``) with HF's own init (``_init_weights``: normal(0,
    0.02), residual projections 0.02/sqrt(2 * n_layer)); weights stored (in, out) in Conv1D."""
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(
        vocab_size=VOCAB,
        n_positions=SEQ * 2,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2Model(config)
    return HFWrapper(model) if wrap else model


def gpt2_lm() -> nn.Module:
    """GPT-2 with its tied LM head (``GPT2LMHeadModel``), unwrapped."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=VOCAB, n_positions=SEQ * 2, n_embd=128, n_layer=2, n_head=4)
    return GPT2LMHeadModel(config)


def bert(num_hidden_layers: int = 4, hidden_size: int = 128, wrap: bool = True) -> nn.Module:
    """BERT (transformers ``BertModel``) with HF's own init (normal(0, 0.02), LayerNorm 1/0)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=SEQ * 2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertModel(config, add_pooling_layer=False)
    return HFWrapper(model) if wrap else model


def example_inputs(model: nn.Module) -> tuple[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.randint(0, VOCAB, (4, SEQ), generator=generator),)
