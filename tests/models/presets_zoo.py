"""Models the presets target, built offline at test size (no downloads, no timm):

- ``llama``: transformers' ``LlamaForCausalLM`` from a ``LlamaConfig`` (HF names);
- ``nanogpt``: karpathy/nanoGPT's ``GPT`` layout (model.py at 3adf61e), ``config`` attribute,
  tied ``lm_head``, with nanoGPT's own init (``official_init=True``);
- ``vit``: timm's ``VisionTransformer`` layout (patch_embed.proj, cls_token, pos_embed,
  blocks.N.attn.qkv/proj, blocks.N.mlp.fc1/fc2, norm, head);
- ``fixup``: the Fixup authors' ``FixupBasicBlock`` (hongyi-zhang/Fixup, f3fa449) stacked in
  one Sequential, with the authors' init (``official_init=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def llama(num_hidden_layers: int = 4, hidden_size: int = 256) -> nn.Module:
    """HF ``LlamaForCausalLM`` (names model.layers.N.self_attn.o_proj, mlp.down_proj, ...)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1000,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


# -- nanoGPT ---------------------------------------------------------------------------


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 1000
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    bias: bool = True


class LayerNorm(nn.Module):
    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig, official_init: bool = True) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        if official_init:  # nanoGPT's GPT.__init__, verbatim
            self.apply(self._init_weights)
            for pn, p in self.named_parameters():
                if pn.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def nanogpt(n_layer: int = 4, n_embd: int = 256, official_init: bool = True) -> nn.Module:
    return GPT(GPTConfig(n_layer=n_layer, n_embd=n_embd), official_init)


# -- timm's ViT layout -------------------------------------------------------------------


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(
        self, image: int = 32, patch: int = 4, dim: int = 192, depth: int = 4, classes: int = 100
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(patch, 3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[ViTBlock(dim, 4) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


def vit() -> nn.Module:
    return VisionTransformer()


# -- Fixup -----------------------------------------------------------------------------


def conv3x3(in_planes: int, out_planes: int) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1, bias=False)


class FixupBasicBlock(nn.Module):
    """The authors' block (no downsampling: one stage)."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.bias1a = nn.Parameter(torch.zeros(1))
        self.conv1 = conv3x3(planes, planes)
        self.bias1b = nn.Parameter(torch.zeros(1))
        self.relu = nn.ReLU()
        self.bias2a = nn.Parameter(torch.zeros(1))
        self.conv2 = conv3x3(planes, planes)
        self.scale = nn.Parameter(torch.ones(1))
        self.bias2b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = self.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return self.relu(out + x)


class FixupNet(nn.Module):
    def __init__(self, blocks: int = 6, planes: int = 64, official_init: bool = True) -> None:
        super().__init__()
        self.num_layers = blocks
        self.stem = conv3x3(3, planes)
        self.bias1 = nn.Parameter(torch.zeros(1))
        self.blocks = nn.Sequential(*[FixupBasicBlock(planes) for _ in range(blocks)])
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.fc = nn.Linear(planes, 10)
        if official_init:  # FixupResNet.__init__'s loop
            for m in self.modules():
                if isinstance(m, FixupBasicBlock):
                    fan_out = m.conv1.weight.shape[0] * math.prod(m.conv1.weight.shape[2:])
                    std = math.sqrt(2 / fan_out) * self.num_layers ** (-0.5)
                    nn.init.normal_(m.conv1.weight, mean=0, std=std)
                    nn.init.constant_(m.conv2.weight, 0)
                elif isinstance(m, nn.Linear):
                    nn.init.constant_(m.weight, 0)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = F.relu(self.stem(x) + self.bias1)
        x = self.blocks(x).mean((2, 3))
        return self.fc(x + self.bias2)


def fixup(blocks: int = 6, planes: int = 64) -> nn.Module:
    return FixupNet(blocks, planes)


def example_inputs(model: nn.Module) -> tuple[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    if isinstance(model, (VisionTransformer, FixupNet)):
        return (torch.randn(2, 3, 32, 32, generator=generator),)
    return (torch.randint(0, 1000, (2, 16), generator=generator),)
