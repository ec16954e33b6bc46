"""TransPose configurations: the five official variants by name, and custom ones.

Like timm, a model is built from a small frozen dataclass; every official
configuration lives here, in one place, mirroring the official experiments/coco YAMLs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

BACKBONES = ("resnet", "hrnet", "movenet")
OUTPUTS = ("heatmap", "softmax")


class ConfigDict:
    """to_dict / from_dict / replace for the frozen model-config dataclasses: tuples are
    stored as lists (JSON and torch.load(weights_only=True) friendly) and read back as
    tuples; unknown fields are refused."""

    arch: ClassVar[str] = ""
    tuple_fields: ClassVar[tuple[str, ...]] = ("input_size",)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)   # type: ignore[call-overload]
        for k in self.tuple_fields:
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        known = {f.name for f in dataclasses.fields(cls)}   # type: ignore[arg-type]
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown {cls.arch} config fields: {sorted(unknown)}")
        d = dict(d)
        for k in cls.tuple_fields:
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)   # type: ignore[type-var]


@dataclass(frozen=True)
class TransPoseConfig(ConfigDict):
    """Everything needed to build a TransPose network.

    backbone "resnet" (TransPose-R): ResNet stem + `resnet_blocks` Bottleneck stages,
    features at stride 8, one 4x4 deconvolution up to stride 4, then a 1x1 head.
    backbone "hrnet" (TransPose-H): HRNet stem, stage 2 and stage 3 (multi-resolution,
    only the highest-resolution output kept), features at stride 4, 1x1 head.
    backbone "movenet" (ours, TransPose-M): MoveNet Thunder's pose-pretrained MobileNetV2-FPN
    (core.models.mobilenet_fpn) at `stem_level` (stride 16 or 8), deconvolutions of
    `head_channels` up to stride 4, 1x1 head. `skip_levels` (optional, one per
    deconvolution, e.g. ("fpn8", "fpn4")): after each x2 step the stem's finer FPN level of
    that stride is concatenated and fused by a 3x3 convolution, so the tokens say which
    joint is where and the fine levels place it (the face keypoints need better than 16 px).

    output "heatmap": the head's maps are the heatmaps (official, trained with MSE);
    "softmax": the head gives logits trained with cross-entropy over each joint's positions,
    and the heatmaps are the softmax times 2*pi*sigma^2 (`softmax_sigma`, heatmap pixels),
    so a confident joint peaks near 1 like an MSE-trained map. `joint_sigma` (optional, one
    per joint) overrides it per joint: the eyes of a whole-body crop are 1-2 heatmap pixels
    apart, and a sigma-2 target lets a head that hesitates between them put one peak in the
    middle, so sharper face targets keep them apart.

    `crop_context` is how the model was trained to see a person, so inference cuts them out
    the same way: "image" (official) fills the whole crop from the image; "box" blacks out
    the crop outside the person box x1.25 (core.pose.preprocess.black_outside), as MoveNet's
    teacher labels were made, so that a neighbour beside a narrow box is not followed.
    """

    name: str = "custom"
    backbone: str = "resnet"
    d_model: int = 256
    dim_feedforward: int = 1024
    n_heads: int = 8
    n_layers: int = 3
    input_size: tuple[int, int] = (192, 256)   # (width, height), as the official IMAGE_SIZE
    num_joints: int = 17
    # TransPose-R: stem width (official 64); layer1 uses it, layer2 twice it (Bottleneck x4).
    resnet_width: int = 64
    resnet_blocks: tuple[int, ...] = (3, 4)
    # TransPose-H: HRNet width W; stage 2 has [W, 2W], stage 3 [W, 2W, 4W] channels.
    hrnet_width: int = 32
    hrnet_stage3_modules: int = 4
    hrnet_blocks: int = 4
    # TransPose-M: the MoveNet stem's FPN level and the upsampling head's widths.
    stem_level: str = "fpn16"
    head_channels: tuple[int, ...] = ()
    skip_levels: tuple[str, ...] = ()
    output: str = "heatmap"
    softmax_sigma: float = 2.0
    joint_sigma: tuple[float, ...] = ()
    dropout: float = 0.1
    crop_context: str = "image"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    arch: ClassVar[str] = "TransPose"
    tuple_fields: ClassVar[tuple[str, ...]] = ("input_size", "resnet_blocks", "head_channels",
                                               "skip_levels", "joint_sigma")

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, not {self.backbone!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {self.output!r}")
        if self.crop_context not in ("image", "box"):
            raise ValueError(f"crop_context must be 'image' or 'box', not {self.crop_context!r}")
        if self.backbone == "movenet" and self.stem_level not in ("fpn16", "fpn8"):
            raise ValueError(f"stem_level must be fpn16 or fpn8, not {self.stem_level!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.d_model % 4:
            raise ValueError("d_model must be a multiple of 4 (2-D sine position embedding)")
        w, h = self.input_size
        multiple = 32 if self.backbone == "movenet" else self.stride   # MobileNet reaches 32
        if w % multiple or h % multiple:
            raise ValueError(f"input size {self.input_size} must be a multiple of {multiple}")
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "resnet_blocks", tuple(int(v) for v in self.resnet_blocks))
        object.__setattr__(self, "head_channels", tuple(int(v) for v in self.head_channels))
        object.__setattr__(self, "skip_levels", tuple(str(v) for v in self.skip_levels))
        object.__setattr__(self, "joint_sigma", tuple(float(v) for v in self.joint_sigma))
        if self.joint_sigma and (len(self.joint_sigma) != self.num_joints
                                 or min(self.joint_sigma) <= 0):
            raise ValueError(f"joint_sigma needs {self.num_joints} positive values, not "
                             f"{self.joint_sigma}")
        if self.skip_levels:
            steps = [f"fpn{self.stride >> (i + 1)}" for i in range(len(self.head_channels))]
            if self.backbone != "movenet" or tuple(steps[:len(self.skip_levels)]) != \
                    self.skip_levels:
                raise ValueError(f"skip_levels {self.skip_levels} must follow the head's x2 "
                                 f"steps ({', '.join(steps) or 'none'}) of a movenet backbone")

    @property
    def stride(self) -> int:
        """Stride of the feature map the Transformer sees (8 for R, 4 for H, 16 or 8 for M)."""
        if self.backbone == "movenet":
            return 16 if self.stem_level == "fpn16" else 8
        return 8 if self.backbone == "resnet" else 4

    def sigmas(self) -> tuple[float, ...]:
        """The softmax head's target sigma of each joint (heatmap pixels)."""
        return self.joint_sigma or (self.softmax_sigma,) * self.num_joints

    @property
    def feature_hw(self) -> tuple[int, int]:
        """(h, w) of the token grid."""
        w, h = self.input_size
        return h // self.stride, w // self.stride

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(width, height) of the output heatmaps: always 1/4 of the input."""
        w, h = self.input_size
        return w // 4, h // 4

# The five official variants (experiments/coco/transpose_{r,h}/*.yaml).
OFFICIAL_CONFIGS: dict[str, TransPoseConfig] = {
    "tp-r-a3": TransPoseConfig(name="tp-r-a3", backbone="resnet", d_model=256,
                               dim_feedforward=1024, n_heads=8, n_layers=3),
    "tp-r-a4": TransPoseConfig(name="tp-r-a4", backbone="resnet", d_model=256,
                               dim_feedforward=1024, n_heads=8, n_layers=4),
    "tp-h-s": TransPoseConfig(name="tp-h-s", backbone="hrnet", hrnet_width=32, d_model=64,
                              dim_feedforward=128, n_heads=1, n_layers=4),
    "tp-h-a4": TransPoseConfig(name="tp-h-a4", backbone="hrnet", hrnet_width=48, d_model=96,
                               dim_feedforward=192, n_heads=1, n_layers=4),
    "tp-h-a6": TransPoseConfig(name="tp-h-a6", backbone="hrnet", hrnet_width=48, d_model=96,
                               dim_feedforward=192, n_heads=1, n_layers=6),
}


def normalise_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def get_config(name: str) -> TransPoseConfig:
    """Config of an official variant by name (case and '_'/'-' insensitive)."""
    key = normalise_name(name)
    if key not in OFFICIAL_CONFIGS:
        raise ValueError(f"unknown TransPose variant {name!r}; known: {', '.join(OFFICIAL_CONFIGS)}")
    return OFFICIAL_CONFIGS[key]
