"""TransPose networks (Yang et al., ICCV 2021): CNN features -> Transformer -> heatmaps.

`TransPoseR` and `TransPoseH` are plain nn.Modules whose state-dict keys, shapes and
dtypes equal the official ones (pos_embedding first, then the backbone, reduce,
global_encoder, head), so an official checkpoint loads with strict=True.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import BN_MOMENTUM, Bottleneck, HighResolutionModule, make_stage, make_transition
from .config import TransPoseConfig, get_config
from .transformer import TransformerEncoder, sine_position_embedding


class TransPose(nn.Module):
    """Shared part: position embedding, 1x1 reduce, encoder, and the heatmap head."""

    config: TransPoseConfig

    def _build_encoder(self, cfg: TransPoseConfig, feature_channels: int) -> None:
        h, w = cfg.feature_hw
        # A Parameter (not a buffer), frozen, exactly as the official checkpoints store it.
        self.pos_embedding = nn.Parameter(sine_position_embedding(h, w, cfg.d_model),
                                          requires_grad=False)
        self.reduce = nn.Conv2d(feature_channels, cfg.d_model, 1, bias=False)
        self.global_encoder = TransformerEncoder(cfg.d_model, cfg.n_heads, cfg.dim_feedforward,
                                                 cfg.n_layers, cfg.dropout)

    def features(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        raise NotImplementedError

    def head(self, x: Tensor, skips: tuple[Tensor, ...] = ()) -> Tensor:
        raise NotImplementedError

    def to_heatmaps(self, head_out: Tensor) -> Tensor:
        """The head's output as heatmaps: itself, or for a cross-entropy-trained head
        (config.output "softmax") the per-joint softmax over positions x 2*pi*sigma^2."""
        if self.config.output != "softmax":
            return head_out
        n, k, h, w = head_out.shape
        p = torch.softmax(head_out.float().reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
        peak = 2 * math.pi * torch.tensor(self.config.sigmas(), device=p.device) ** 2
        return (p * peak.view(1, k, 1, 1)).to(head_out.dtype)

    def _forward(self, x: Tensor, need_weights: bool) -> tuple[Tensor, list[Tensor]]:
        out, attentions = self.head_from_features(self.features(x), need_weights)
        return self.to_heatmaps(out), attentions

    def head_from_features(self, feats: Tensor | tuple[Tensor, ...], need_weights: bool = False
                           ) -> tuple[Tensor, list[Tensor]]:
        """Backbone features -> the head's raw output (logits for a softmax head) and the
        encoder's attention; training on cached features starts here. A tuple is the
        tokens' features, then the finer levels a skip head fuses (TransPose-M)."""
        skips: tuple[Tensor, ...] = ()
        if isinstance(feats, (tuple, list)):
            feats, *rest = feats
            skips = tuple(rest)
        x = self.reduce(feats)
        n, c, h, w = x.shape
        if (h, w) != self.config.feature_hw:
            raise ValueError(f"input of {x.shape[-2] * self.config.stride}x... gives a {h}x{w} "
                             f"token grid; this model was built for {self.config.input_size} "
                             f"(w, h) inputs")
        tokens = x.flatten(2).transpose(1, 2)                     # (N, T, d)
        pos = self.pos_embedding.transpose(0, 1).to(tokens.dtype)  # (1, T, d)
        tokens, attentions = self.global_encoder(tokens, pos, need_weights)
        x = tokens.transpose(1, 2).reshape(n, c, h, w)
        return (self.head(x, skips) if skips else self.head(x)), attentions

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) normalised RGB -> (N, joints, H/4, W/4) heatmaps."""
        return self._forward(x, need_weights=False)[0]

    def forward_with_attention(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Heatmaps and every encoder layer's attention, each (N, heads, T, T).

        Row t of a layer's matrix is how token t (a query position on the feature grid)
        distributes its attention over all tokens; the head average is `.mean(1)`.
        """
        return self._forward(x, need_weights=True)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class TransPoseR(TransPose):
    """TransPose-R: ResNet stem + two Bottleneck stages (stride 8), deconv x2, 1x1 head."""

    def __init__(self, cfg: TransPoseConfig) -> None:
        super().__init__()
        self.config = cfg
        width = cfg.resnet_width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        stages = []
        for i, blocks in enumerate(cfg.resnet_blocks):
            stage, channels = make_stage(Bottleneck, channels, width * 2 ** i, blocks,
                                         stride=1 if i == 0 else 2)
            stages.append(stage)
        if len(stages) != 2:
            raise ValueError("TransPose-R uses exactly two ResNet stages (stride 8 features)")
        self.layer1, self.layer2 = stages
        self._build_encoder(cfg, channels)
        self.deconv_layers = nn.Sequential(
            nn.ConvTranspose2d(cfg.d_model, cfg.d_model, 4, 2, 1, output_padding=0, bias=False),
            nn.BatchNorm2d(cfg.d_model, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True))
        self.final_layer = nn.Conv2d(cfg.d_model, cfg.num_joints, 1)

    def features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer2(self.layer1(x))

    def head(self, x: Tensor) -> Tensor:
        return self.final_layer(self.deconv_layers(x))


class TransPoseH(TransPose):
    """TransPose-H: HRNet stem, stage 2 and stage 3 (stride 4 output), 1x1 head."""

    def __init__(self, cfg: TransPoseConfig) -> None:
        super().__init__()
        self.config = cfg
        w = cfg.hrnet_width
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, c1 = make_stage(Bottleneck, 64, 64, 4)
        stage2_ch, stage3_ch = [w, 2 * w], [w, 2 * w, 4 * w]
        self.transition1 = make_transition([c1], stage2_ch)
        self.stage2 = nn.Sequential(HighResolutionModule(stage2_ch, cfg.hrnet_blocks, True))
        self.transition2 = make_transition(stage2_ch, stage3_ch)
        m = cfg.hrnet_stage3_modules
        self.stage3 = nn.Sequential(*(
            HighResolutionModule(stage3_ch, cfg.hrnet_blocks, multi_scale_output=i < m - 1)
            for i in range(m)))
        self._build_encoder(cfg, w)
        self.final_layer = nn.Conv2d(cfg.d_model, cfg.num_joints, 1)

    def features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(self.relu(self.bn2(self.conv2(x))))
        xs = [x if t is None else t(x) for t in self.transition1]
        ys = self.stage2(xs)
        xs = [ys[i] if t is None else t(ys[-1]) for i, t in enumerate(self.transition2)]
        return self.stage3(xs)[0]

    def head(self, x: Tensor) -> Tensor:
        return self.final_layer(x)


class TransPoseM(TransPose):
    """TransPose-M (ours): MoveNet Thunder's pose-pretrained MobileNetV2-FPN as the CNN
    (stride 16 or 8), then the TransPose encoder; one 4x4 deconvolution (x2) per entry of
    ``head_channels``, a 1x1 head, and a bilinear upsampling of its maps for whatever
    stride is left down to 4. Every heatmap position still comes from the encoder's tokens
    at and next to it, so the last layer's attention explains it as in TransPose.

    With ``skip_levels`` each x2 step is followed by a 3x3 convolution over the step's
    output and the stem's FPN level of the same stride (a U-Net-style skip): the tokens
    still decide which joint is where (the skips are local, 3x3 at strides 8 and 4), the
    finer levels sharpen where exactly."""

    def __init__(self, cfg: TransPoseConfig) -> None:
        super().__init__()
        from .mobilenet_fpn import LEVEL_CHANNELS, MoveNetStem
        self.config = cfg
        self.stem = MoveNetStem(cfg.stem_level, cfg.skip_levels)   # type: ignore[arg-type]
        self._build_encoder(cfg, self.stem.out_channels)
        widths = tuple(cfg.head_channels)
        self.upsample = cfg.stride // 4 // 2 ** len(widths)
        if self.upsample < 1 or cfg.stride != 4 * self.upsample * 2 ** len(widths):
            raise ValueError(f"head_channels {widths}: too many x2 steps for stride "
                             f"{cfg.stride}")
        layers: list[nn.Module] = []
        cin = cfg.d_model
        for cout in widths:
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(cout, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
            cin = cout
        self.deconv_layers = nn.Sequential(*layers)
        # skip fusions, named apart so a model without skips keeps its state-dict keys
        self.skip_fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width + LEVEL_CHANNELS[level], width, 3, 1, 1, bias=False),
                          nn.BatchNorm2d(width, momentum=BN_MOMENTUM), nn.ReLU(inplace=True))
            for width, level in zip(widths, cfg.skip_levels))
        self.final_layer = nn.Conv2d(cin, cfg.num_joints, 1)

    def features(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        return self.stem(x)

    def head(self, x: Tensor, skips: tuple[Tensor, ...] = ()) -> Tensor:
        if len(skips) != len(self.skip_fuse):
            raise ValueError(f"this head fuses {len(self.skip_fuse)} finer levels, "
                             f"got {len(skips)}")
        if skips:
            for i, fuse in enumerate(self.skip_fuse):
                x = self.deconv_layers[3 * i:3 * i + 3](x)
                x = fuse(torch.cat([x, skips[i].to(x.dtype)], 1))
            x = self.deconv_layers[3 * len(self.skip_fuse):](x)
            x = self.final_layer(x)
        else:
            x = self.final_layer(self.deconv_layers(x))
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=float(self.upsample), mode="bilinear",
                              align_corners=False)
        return x


def build_model(config: TransPoseConfig | str) -> TransPose:
    """Build an (uninitialised-for-inference) TransPose from a config or a variant name."""
    cfg = get_config(config) if isinstance(config, str) else config
    classes = {"resnet": TransPoseR, "hrnet": TransPoseH, "movenet": TransPoseM}
    return classes[cfg.backbone](cfg)

