"""Small text students. Every one takes `input_ids` and `attention_mask` ([batch, length], int32 or
int64, padding id 0) and returns logits, using only ops that convert to TFLite, Core ML and ONNX."""
from __future__ import annotations

import math

from edgemod.training.students.registry import register_student


def _torch():
    import torch

    return torch


def _masked_pools(hidden, mask):
    """Mean and max over valid positions: [B, L, D] -> [B, 2D]."""
    torch = _torch()
    weights = mask.unsqueeze(-1)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    maxed = (hidden + (weights - 1.0) * 1e4).amax(1)
    return torch.cat([mean, maxed], dim=-1)


def _text_cnn_class():
    torch = _torch()
    nn = torch.nn

    class TextCNN(nn.Module):
        """Embedding -> residual 1-D convolutions -> masked mean+max pooling -> classifier."""

        def __init__(self, num_labels, vocab_size=8000, embed_dim=128, layers=3, kernel_size=5,
                     dropout=0.2, max_length=64, dilations=None):
            super().__init__()
            dilations = list(dilations or [1] * layers)
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
            self.convs = nn.ModuleList(
                nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation)
                for dilation in dilations)
            self.act = nn.GELU()
            self.dropout = nn.Dropout(dropout)
            self.norm = nn.LayerNorm(2 * embed_dim)
            self.head = nn.Linear(2 * embed_dim, num_labels)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.to(torch.float32)
            hidden = self.dropout(self.embed(input_ids.long())) * mask.unsqueeze(-1)
            hidden = hidden.transpose(1, 2)
            for conv in self.convs:
                hidden = (hidden + self.act(conv(hidden))) * mask.unsqueeze(1)
            pooled = _masked_pools(hidden.transpose(1, 2), mask)
            return self.head(self.dropout(self.norm(pooled)))

    return TextCNN


def _text_transformer_class():
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, dim, heads, ffn_dim, dropout):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.out = nn.Linear(dim, dim)
            self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, dim))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x, bias):
            b, length, dim = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(b, length, 3, self.heads, dim // self.heads).permute(
                2, 0, 3, 1, 4)
            # Explicit attention (no fused SDPA) so every converter sees plain matmul/softmax.
            scores = q @ k.transpose(-1, -2) / math.sqrt(dim // self.heads) + bias
            attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, length, dim)
            x = x + self.dropout(self.out(attended))
            return x + self.dropout(self.ffn(self.norm2(x)))

    class TextTransformer(nn.Module):
        """Pre-norm transformer encoder with learned positions and masked mean+max pooling."""

        def __init__(self, num_labels, vocab_size=8000, dim=128, layers=2, heads=4, ffn_dim=256,
                     dropout=0.1, max_length=64):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
            self.position = nn.Parameter(torch.zeros(1, max_length, dim))
            nn.init.normal_(self.position, std=0.02)
            self.blocks = nn.ModuleList(Block(dim, heads, ffn_dim, dropout) for _ in range(layers))
            self.norm = nn.LayerNorm(2 * dim)
            self.head = nn.Linear(2 * dim, num_labels)
            self.dropout = nn.Dropout(dropout)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.to(torch.float32)
            length = input_ids.shape[1]
            x = self.dropout(self.embed(input_ids.long()) + self.position[:, :length])
            bias = ((mask - 1.0) * 1e4)[:, None, None, :]
            for block in self.blocks:
                x = block(x, bias)
            return self.head(self.dropout(self.norm(_masked_pools(x, mask))))

    return TextTransformer


def _bag_class():
    torch = _torch()
    nn = torch.nn

    class TextBag(nn.Module):
        """Embedding bag (masked mean) -> MLP: the smallest, fastest text student."""

        def __init__(self, num_labels, vocab_size=8000, embed_dim=64, hidden=64, dropout=0.1, max_length=64):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
            self.mlp = nn.Sequential(nn.Linear(2 * embed_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, num_labels))

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.to(torch.float32)
            return self.mlp(_masked_pools(self.embed(input_ids.long()), mask))

    return TextBag


@register_student("text_cnn_small", description="1-D CNN, 128-d, 3 residual conv layers (~1.3M params at 8k vocab)")
def text_cnn_small(num_labels: int, **options):
    return _text_cnn_class()(num_labels, **options)


@register_student("text_cnn_medium", description="1-D CNN, 160-d, 3 residual conv layers (~1.7M params at 8k vocab)")
def text_cnn_medium(num_labels: int, **options):
    return _text_cnn_class()(num_labels, **{"embed_dim": 160, **options})


@register_student("text_cnn_dilated", description="1-D CNN, 160-d, 5 residual conv layers of width 3 dilated 1-2-4-8-1 "
                                                "(sees 33 tokens; ~1.7M params at 8k vocab)")
def text_cnn_dilated(num_labels: int, **options):
    return _text_cnn_class()(num_labels, **{"embed_dim": 160, "kernel_size": 3, "dilations": [1, 2, 4, 8, 1], **options})


@register_student("text_transformer_small", description="2-layer pre-norm transformer, 128-d, 4 heads (~1.4M params)")
def text_transformer_small(num_labels: int, **options):
    return _text_transformer_class()(num_labels, **options)


@register_student("text_bag_tiny", description="masked-mean embedding bag + MLP (~0.5M params)")
def text_bag_tiny(num_labels: int, **options):
    return _bag_class()(num_labels, **options)


@register_student("test_text_tiny", description="for tests: 16-d embedding bag")
def test_text_tiny(num_labels: int, **options):
    options = {"embed_dim": 16, "hidden": 16, **options}
    return _bag_class()(num_labels, **options)
