"""The TransPose Transformer encoder, with opt-in attention capture.

Parameter names and shapes follow `nn.MultiheadAttention` / the official DETR-style
post-norm layer, so official checkpoints load strictly. Internally tokens are batch
first (N, T, d). Without a request for attention weights the layer calls
`scaled_dot_product_attention` (fused kernels; nothing is materialised), so capture
costs nothing when it is off.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """Multi-head self-attention laid out like nn.MultiheadAttention (in_proj + out_proj).

    The position embedding is added to queries and keys only, never to values, in every
    layer, as in the official code (pe_only_at_begin=False).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, pos: Tensor | None, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        n, t, d = x.shape
        w, b = self.in_proj_weight, self.in_proj_bias
        qk_in = x if pos is None else x + pos
        # q and k share their input: one matmul for both.
        qk = F.linear(qk_in, w[: 2 * d], b[: 2 * d])
        v = F.linear(x, w[2 * d:], b[2 * d:])
        q, k = qk.split(d, dim=-1)
        q = q.view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = v.view(n, t, self.n_heads, self.head_dim).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            logits = torch.matmul(q * (1.0 / math.sqrt(self.head_dim)), k.transpose(-2, -1))
            weights = logits.softmax(dim=-1)                       # (N, heads, T, T)
            out = torch.matmul(F.dropout(weights, p) if p else weights, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = out.transpose(1, 2).reshape(n, t, d)
        return self.out_proj(out), weights


class EncoderLayer(nn.Module):
    """Post-norm encoder layer (DETR style): attention, add & norm, FFN, add & norm."""

    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor | None, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        a, weights = self.self_attn(x, pos, need_weights)
        x = self.norm1(x + self.dropout1(a))
        f = self.linear2(self.dropout(F.relu(self.linear1(x))))
        x = self.norm2(x + self.dropout2(f))
        return x, weights


class TransformerEncoder(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dim_feedforward: int, n_layers: int,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, dim_feedforward, dropout) for _ in range(n_layers))
        for p in self.parameters():           # the official initialisation
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x: Tensor, pos: Tensor | None, need_weights: bool = False
                ) -> tuple[Tensor, list[Tensor]]:
        attentions: list[Tensor] = []
        for layer in self.layers:
            x, w = layer(x, pos, need_weights)
            if w is not None:
                attentions.append(w)
        return x, attentions


def sine_position_embedding(h: int, w: int, d_model: int, temperature: float = 10000.0
                            ) -> Tensor:
    """Fixed 2-D sine embedding, shape (h*w, 1, d_model), row-major tokens.

    The first half of the channels encode the row, the second the column; sin on even
    and cos on odd channels. Computed in float32 in the same order of operations as the
    official constructor so the buffer is bit-identical to the one in its checkpoints.
    """
    half = d_model // 2
    ones = torch.ones(1, h, w)
    ys = ones.cumsum(1, dtype=torch.float32)
    xs = ones.cumsum(2, dtype=torch.float32)
    eps, two_pi = 1e-6, 2 * math.pi
    ys = ys / (ys[:, -1:, :] + eps) * two_pi
    xs = xs / (xs[:, :, -1:] + eps) * two_pi
    j = torch.arange(half, dtype=torch.float32)
    freq = temperature ** (2 * (j // 2) / half)
    px = xs[:, :, :, None] / freq
    py = ys[:, :, :, None] / freq
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).flatten(3)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).flatten(3)
    pos = torch.cat((py, px), dim=3).permute(0, 3, 1, 2)     # (1, d, h, w)
    return pos.flatten(2).permute(2, 0, 1).contiguous()       # (h*w, 1, d)
