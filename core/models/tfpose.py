"""TFPose (Mao et al., 2021, "TFPose: Direct Human Pose Estimation with Transformers").

The regression member of the Transformer pose family, beside TransPose: instead of
heatmaps, K learnable keypoint queries are decoded into K coordinates directly.

    image -> ResNet C2..C5 (strides 4, 8, 16, 32) -> 1x1 conv + GroupNorm to d_model each
          -> flattened and concatenated tokens F0 (+ level embedding + 2-D sine position)
          -> N_E encoder layers of multi-scale deformable attention (Deformable DETR)
          -> N_D decoder layers: query-to-query self-attention (joint dependencies),
             query-to-pixel deformable cross-attention, FFN, and a refinement MLP:
             y_d = sigmoid(inverse_sigmoid(y_{d-1}) + dy_d), y_0 a learned (K, 2) matrix
          -> coordinates normalised to the input crop, plus a per-keypoint score head.

Training adds the paper's auxiliary heatmap head: the C5 tokens of the encoder memory,
reshaped to a map, three stride-2 deconvolutions (x8, so 1/4 of the input) and a 1x1
conv to K heatmaps (see core.training.objectives).

Coordinates: (u, v) in [0, 1] with u = (x + 0.5) / W for x in input pixels (pixel
centres at integer x), so a horizontal flip of the crop is u -> 1 - u exactly.

Deformable attention is written in plain PyTorch (``F.grid_sample``), batched over the
images, heads and queries; the same code runs on a GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import BN_MOMENTUM, BasicBlock, Bottleneck, make_stage
from .config import ConfigDict
from .transformer import sine_position_embedding

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
NUM_LEVELS = 4          # C2, C3, C4, C5
STRIDES = (4, 8, 16, 32)


@dataclass(frozen=True)
class TFPoseConfig(ConfigDict):
    """Everything needed to build a TFPose network (a small frozen dataclass, like timm)."""

    name: str = "custom"
    input_size: tuple[int, int] = (192, 256)   # (width, height), multiples of 32
    num_joints: int = 17
    resnet_block: str = "basic"                # "basic" (ResNet-18/34) or "bottleneck" (-50)
    resnet_width: int = 64                     # stem and C2 width; doubled per stage
    resnet_blocks: tuple[int, int, int, int] = (2, 2, 2, 2)   # ResNet-18
    d_model: int = 256                         # the channel count c of every level
    n_heads: int = 8
    n_points: int = 4                          # deformable sampling points per head and level
    enc_layers: int = 6
    dec_layers: int = 6
    dim_feedforward: int = 1024
    dropout: float = 0.1
    aux_channels: int = 256                    # width of the auxiliary heatmap deconvolutions
    aux_weight: float = 50.0                   # lambda of L_reg + lambda * L_aux (paper: 50)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    arch: ClassVar[str] = "TFPose"
    tuple_fields: ClassVar[tuple[str, ...]] = ("input_size", "resnet_blocks")

    def __post_init__(self) -> None:
        if self.resnet_block not in BLOCKS:
            raise ValueError(f"resnet_block must be one of {tuple(BLOCKS)}, "
                             f"not {self.resnet_block!r}")
        if len(self.resnet_blocks) != 4:
            raise ValueError("TFPose needs four ResNet stages (C2..C5)")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.d_model % 4:
            raise ValueError("d_model must be a multiple of 4 (2-D sine position embedding)")
        if self.enc_layers < 0 or self.dec_layers < 1:
            raise ValueError("TFPose needs enc_layers >= 0 and dec_layers >= 1")
        w, h = self.input_size
        if w % 32 or h % 32:
            raise ValueError(f"input size {self.input_size} must be a multiple of 32 (C5)")
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "resnet_blocks", tuple(int(v) for v in self.resnet_blocks))

    @property
    def level_shapes(self) -> list[tuple[int, int]]:
        """(h, w) of the C2..C5 token grids."""
        w, h = self.input_size
        return [(h // s, w // s) for s in STRIDES]

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(width, height) of the auxiliary heatmaps (1/4 of the input), and the grid the
        estimator reports coordinates on, like TransPose's heatmaps."""
        w, h = self.input_size
        return w // 4, h // 4


# Named configurations, in one place. ``tfpose-r18-256x192`` is the paper's design on a
# ResNet-18 (6 + 6 layers, c = 256); ``tfpose-tiny`` costs about what tp-r-tiny costs per
# training image on a 2-core CPU (same 96x128 input), so the two compare on one budget.
TFPOSE_CONFIGS: dict[str, TFPoseConfig] = {
    "tfpose-r18-256x192": TFPoseConfig(name="tfpose-r18-256x192"),
    "tfpose-tiny": TFPoseConfig(
        name="tfpose-tiny", input_size=(96, 128), resnet_width=16, resnet_blocks=(1, 1, 1, 1),
        d_model=64, n_heads=4, n_points=4, enc_layers=1, dec_layers=3, dim_feedforward=128,
        dropout=0.0, aux_channels=32),
    "tfpose-micro": TFPoseConfig(
        name="tfpose-micro", input_size=(64, 64), resnet_width=8, resnet_blocks=(1, 1, 1, 1),
        d_model=16, n_heads=2, n_points=2, enc_layers=1, dec_layers=2, dim_feedforward=32,
        dropout=0.0, aux_channels=16),
}


# ------------------------------------------------------------------------------ maths
def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def deformable_sample(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor,
                      weights: Tensor) -> Tensor:
    """Multi-scale deformable attention core.

    value (N, S, H, Dh): the projected tokens of every level, concatenated;
    locations (N, Q, H, L, P, 2): sampling points, (u, v) in [0, 1] of each level's map;
    weights (N, Q, H, L, P): softmax-normalised over L * P.
    -> (N, Q, H * Dh): per head, the weighted sum of bilinear samples.
    """
    n, _, heads, dh = value.shape
    q, levels, points = locations.shape[1], locations.shape[3], locations.shape[4]
    per_level = value.split([h * w for h, w in shapes], dim=1)
    grids = (2 * locations - 1).to(value.dtype)    # grid_sample's [-1, 1], align_corners=False
    a = weights.transpose(1, 2).reshape(n * heads, 1, q, levels, points).to(value.dtype)
    out = None
    # Level by level, accumulating: 1.5x faster (forward + backward, CPU) than stacking
    # all levels' samples first.
    for lvl, (h, w) in enumerate(shapes):
        v = per_level[lvl].permute(0, 2, 3, 1).reshape(n * heads, dh, h, w)
        g = grids[:, :, :, lvl].transpose(1, 2).reshape(n * heads, q, points, 2)
        s = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        o = (s * a[..., lvl, :]).sum(-1)                          # (N*H, Dh, Q)
        out = o if out is None else out + o
    return out.reshape(n, heads * dh, q).transpose(1, 2)


class Sampling(NamedTuple):
    """Where a deformable attention looked: locations (N, Q, H, L, P, 2) in [0, 1] of the
    crop, and their weights (N, Q, H, L, P)."""

    locations: Tensor
    weights: Tensor


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Zhu et al., Deformable DETR), plain PyTorch."""

    def __init__(self, d_model: int, n_levels: int, n_heads: int, n_points: int) -> None:
        super().__init__()
        self.n_levels, self.n_heads, self.n_points = n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # Deformable DETR's start: offsets fan out from the reference point, one direction
        # per head, point i at distance i + 1 (in feature pixels); uniform weights.
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(self.n_heads, dtype=torch.float32) * (2 * math.pi / self.n_heads)
        grid = torch.stack([theta.cos(), theta.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values
        grid = grid.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: Tensor, reference: Tensor, value: Tensor,
                shapes: list[tuple[int, int]], need_sampling: bool = False
                ) -> tuple[Tensor, Sampling | None]:
        """query (N, Q, d); reference (N or 1, Q, 2) in [0, 1]; value (N, S, d)."""
        n, q, _ = query.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        v = self.value_proj(value).view(n, value.shape[1], heads, -1)
        offsets = self.sampling_offsets(query).view(n, q, heads, levels, points, 2)
        weights = self.attention_weights(query).view(n, q, heads, levels * points)
        weights = weights.softmax(-1).view(n, q, heads, levels, points)
        wh = torch.tensor([[w, h] for h, w in shapes], dtype=offsets.dtype, device=query.device)
        locations = reference[:, :, None, None, None, :] + offsets / wh[None, None, None, :, None]
        out = self.output_proj(deformable_sample(v, shapes, locations, weights))
        return out, (Sampling(locations, weights) if need_sampling else None)


def _ffn(d_model: int, dim_ff: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, dim_ff), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(dim_ff, d_model))


class EncoderLayer(nn.Module):
    """Post-norm: deformable self-attention over all levels, then the FFN."""

    def __init__(self, cfg: TFPoseConfig) -> None:
        super().__init__()
        self.attn = MSDeformAttn(cfg.d_model, NUM_LEVELS, cfg.n_heads, cfg.n_points)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.ffn = _ffn(cfg.d_model, cfg.dim_feedforward, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, src: Tensor, pos: Tensor, reference: Tensor,
                shapes: list[tuple[int, int]]) -> Tensor:
        out, _ = self.attn(src + pos, reference, src, shapes)
        src = self.norm1(src + self.dropout(out))
        return self.norm2(src + self.dropout(self.ffn(src)))


class DecoderLayer(nn.Module):
    """Query-to-query self-attention (joint dependencies), query-to-pixel deformable
    cross-attention into the encoder memory, FFN; post-norm."""

    def __init__(self, cfg: TFPoseConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, dropout=cfg.dropout,
                                               batch_first=True)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.cross_attn = MSDeformAttn(cfg.d_model, NUM_LEVELS, cfg.n_heads, cfg.n_points)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = _ffn(cfg.d_model, cfg.dim_feedforward, cfg.dropout)
        self.norm3 = nn.LayerNorm(cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, tgt: Tensor, query_pos: Tensor, reference: Tensor, memory: Tensor,
                shapes: list[tuple[int, int]], explain: bool = False
                ) -> tuple[Tensor, Tensor | None, Sampling | None]:
        q = tgt + query_pos
        out, joint_attn = self.self_attn(q, q, tgt, need_weights=explain,
                                         average_attn_weights=False)
        tgt = self.norm1(tgt + self.dropout(out))
        out, sampling = self.cross_attn(tgt + query_pos, reference, memory, shapes, explain)
        tgt = self.norm2(tgt + self.dropout(out))
        tgt = self.norm3(tgt + self.dropout(self.ffn(tgt)))
        return tgt, joint_attn, sampling


class MLP(nn.Sequential):
    def __init__(self, d_in: int, d_hidden: int, d_out: int, layers: int) -> None:
        mods: list[nn.Module] = []
        dims = [d_in] + [d_hidden] * (layers - 1)
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        mods.append(nn.Linear(dims[-1], d_out))
        super().__init__(*mods)


@dataclass
class TFPoseOutput:
    """Everything a forward pass can give.

    coords (D, N, K, 2): every decoder layer's prediction, (u, v) in [0, 1] of the crop
    (the last layer is the answer); score_logits (N, K); heatmaps (N, K, H/4, W/4) from the
    auxiliary head (training only); joint_attention: per decoder layer (N, heads, K, K)
    query-to-query attention; sampling: per decoder layer, the cross-attention's
    Sampling (locations in [0, 1] of the crop)."""

    coords: Tensor
    score_logits: Tensor
    heatmaps: Tensor | None = None
    joint_attention: list[Tensor] = field(default_factory=list)
    sampling: list[Sampling] = field(default_factory=list)

    @property
    def scores(self) -> Tensor:
        return self.score_logits.sigmoid()


def _groups(channels: int) -> int:
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)


class TFPose(nn.Module):
    """The TFPose network; see the module docstring."""

    def __init__(self, cfg: TFPoseConfig) -> None:
        super().__init__()
        self.config = cfg
        d, width, block = cfg.d_model, cfg.resnet_width, BLOCKS[cfg.resnet_block]
        # ResNet: stem to stride 4, then C2..C5.
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, channels, level_channels = [], width, []
        for i, blocks in enumerate(cfg.resnet_blocks):
            stage, channels = make_stage(block, channels, width * 2 ** i, blocks,
                                         stride=1 if i == 0 else 2)
            stages.append(stage)
            level_channels.append(channels)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, d, 1), nn.GroupNorm(_groups(d), d)) for c in level_channels)
        self.level_embed = nn.Parameter(torch.zeros(NUM_LEVELS, d))
        shapes = cfg.level_shapes
        pos = torch.cat([sine_position_embedding(h, w, d)[:, 0] for h, w in shapes])
        self.register_buffer("pixel_pos", pos, persistent=False)          # (S, d)
        refs = []
        for h, w in shapes:     # each token's own centre, (u, v) in [0, 1]
            ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w,
                                    indexing="ij")
            refs.append(torch.stack([xs.flatten(), ys.flatten()], -1))
        self.register_buffer("token_centres", torch.cat(refs), persistent=False)  # (S, 2)
        self.encoder = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.dec_layers))
        k = cfg.num_joints
        self.query_embed = nn.Parameter(torch.empty(k, d))   # content of each joint's query
        self.query_pos = nn.Parameter(torch.empty(k, d))     # its positional part
        self.initial_coords = nn.Parameter(torch.zeros(k, 2))   # y_0 = sigmoid(this)
        self.refine_heads = nn.ModuleList(MLP(d, d, 2, 3) for _ in range(cfg.dec_layers))
        self.score_head = MLP(d, d, 1, 2)
        aux: list[nn.Module] = []
        cin = d
        for _ in range(3):                       # x8: C5 (1/32) -> 1/4 of the input
            aux += [nn.ConvTranspose2d(cin, cfg.aux_channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cfg.aux_channels, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
            cin = cfg.aux_channels
        self.aux_deconv = nn.Sequential(*aux)
        self.aux_final = nn.Conv2d(cfg.aux_channels, k, 1)
        self._reset_parameters()

    @torch.no_grad()
    def _reset_parameters(self) -> None:
        nn.init.normal_(self.level_embed)
        nn.init.normal_(self.query_embed)
        nn.init.normal_(self.query_pos)
        for head in self.refine_heads:        # start every layer at "no change"
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight)
            nn.init.zeros_(proj[0].bias)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _levels(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [proj(c) for proj, c in zip(self.input_proj, (c2, c3, c4, c5))]

    def run(self, x: Tensor, *, heatmaps: bool = False, explain: bool = False) -> TFPoseOutput:
        """(N, 3, H, W) normalised RGB crops -> TFPoseOutput."""
        cfg = self.config
        levels = self._levels(x)
        shapes = [(f.shape[2], f.shape[3]) for f in levels]
        if shapes != cfg.level_shapes:
            raise ValueError(f"input of {x.shape[-1]}x{x.shape[-2]} (w x h) does not fit this "
                             f"model, built for {cfg.input_size[0]}x{cfg.input_size[1]}")
        n = x.shape[0]
        src = torch.cat([f.flatten(2).transpose(1, 2) for f in levels], 1)      # (N, S, d)
        level_ids = torch.repeat_interleave(
            torch.arange(NUM_LEVELS, device=x.device),
            torch.tensor([h * w for h, w in shapes], device=x.device))
        pos = (self.pixel_pos + self.level_embed[level_ids]).to(src.dtype)[None]
        ref = self.token_centres[None].to(src.dtype)
        for layer in self.encoder:
            src = layer(src, pos, ref, shapes)
        memory = src

        tgt = self.query_embed[None].expand(n, -1, -1).to(memory.dtype)
        query_pos = self.query_pos[None].to(memory.dtype)
        reference = self.initial_coords.sigmoid()[None].expand(n, -1, -1)
        coords, joint_attention, sampling = [], [], []
        for layer, refine in zip(self.decoder, self.refine_heads):
            tgt, attn, samp = layer(tgt, query_pos, reference.to(memory.dtype), memory, shapes,
                                    explain)
            y = (inverse_sigmoid(reference.float()) + refine(tgt).float()).sigmoid()
            coords.append(y)
            reference = y.detach()     # Deformable DETR: each layer refines, no gradient back
            if explain:
                joint_attention.append(attn)
                sampling.append(samp)
        logits = self.score_head(tgt).squeeze(-1).float()
        maps = None
        if heatmaps:
            h5, w5 = shapes[-1]
            c5 = memory[:, -h5 * w5:].transpose(1, 2).reshape(n, -1, h5, w5)
            maps = self.aux_final(self.aux_deconv(c5))
        return TFPoseOutput(torch.stack(coords), logits, maps, joint_attention, sampling)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, 3, H, W) -> (coords (N, K, 2) in [0, 1] of the crop, scores (N, K))."""
        out = self.run(x)
        return out.coords[-1], out.scores


def build_tfpose(config: TFPoseConfig | str) -> TFPose:
    if isinstance(config, str):
        key = config.strip().lower().replace("_", "-")
        if key not in TFPOSE_CONFIGS:
            raise ValueError(f"unknown TFPose config {config!r}; known: "
                             f"{', '.join(TFPOSE_CONFIGS)}")
        config = TFPOSE_CONFIGS[key]
    return TFPose(config)
