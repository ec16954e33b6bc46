"""TransPose-M by distillation on a 2-core CPU: frozen MoveNet stem, cached features.

The stem (MoveNet Thunder's MobileNetV2-FPN, converted from the ONNX file by
``core.models.convert_movenet``) is frozen, so its features are computed once per training
view and cached on disk; the Transformer encoder and the heatmap head train on the cache.

1. **Views** of every person (``render_sample``, the same crop as inference): view 0 plain,
   view 1 mirrored, views 2.. with the training augmentation (scale, rotation, flip, half
   body, colour, blur, occlusion), each seeded by (seed, view, person).
2. **Cache** (``FeatureCache``): shards of ``SHARD_SIZE`` views, each an ``.npz`` with the
   stem features (float16), the joints in heatmap pixels and their weights; ``index.json``
   records every shard's sha256 and the cache's key (stem weights, input size, views,
   people). A shard that is missing, unreadable or whose checksum differs is rebuilt, never
   trusted; a different key starts a new cache.
3. **Training** (``HeadTrainer``): cross-entropy over each joint's heatmap positions
   against the normalised Gaussian at the label (the loss that reaches the teacher in
   minutes where MSE crawls, ../shared/notes/movenet-stem.md), weighted by the label
   weight; AdamW, warm-up + cosine; ``last.ckpt`` after every epoch (resume continues
   from it), ``history.json`` with the learning curve, validation PCK on the held-out
   people's plain view.
4. **Export**: the whole network (stem + encoder + head) in a self-describing checkpoint,
   floating-point tensors stored as float16 (the stem's weights were float16 in MoveNet's
   files already), loadable everywhere with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, InputError
from ..models import TransPoseConfig, build_model, save_checkpoint
from ..models.mobilenet_fpn import stem_digest
from ..models.transpose import TransPose
from ..models.zoo import sha256_file
from .data import TrainPerson, read_bgr, render_sample, split_people
from .objectives import heatmap_argmax
from .transforms import NO_AUGMENT, AugmentConfig, normalise

SHARD_SIZE = 512
CACHE_VERSION = 1

# TransPose-M configurations (backbone "movenet"); the shipped model is tp-m-s16.
DISTILL_CONFIGS: dict[str, TransPoseConfig] = {
    # stride-16 tokens: 16 x 12 = 192 at 256x192; heatmaps 64 x 48 (stride 4). The five face
    # keypoints get sharper targets (sigma 1, the body 2): with sigma 2 the head put both
    # eyes of a whole-body crop (1-2 heatmap pixels apart) near their middle. It sees people
    # black outside their box x1.25 (crop_context "box"), as the MoveNet teacher saw them
    # when it labelled them: neighbours in the crop's aspect-fill strips no longer pull
    # joints away (+0.03 mean OKS where people stand close; docs/training-log.md 2026-12-06)
    "tp-m-s16": TransPoseConfig(
        name="tp-m-s16", backbone="movenet", stem_level="fpn16", input_size=(192, 256),
        d_model=128, dim_feedforward=256, n_heads=4, n_layers=2, head_channels=(64,),
        output="softmax", softmax_sigma=2.0, joint_sigma=(1.0,) * 5 + (2.0,) * 12,
        dropout=0.1, crop_context="box"),
    # the first shipped recipe: sigma 2 for every joint (where tp-m-s16's training began)
    "tp-m-s16-sigma2": TransPoseConfig(
        name="tp-m-s16-sigma2", backbone="movenet", stem_level="fpn16", input_size=(192, 256),
        d_model=128, dim_feedforward=256, n_heads=4, n_layers=2, head_channels=(64,),
        output="softmax", softmax_sigma=2.0, dropout=0.1),
    # the same tokens, and the stem's stride-8 and stride-4 levels fused into the head
    # (U-Net-style skips) for the precision the face keypoints need
    "tp-m-s16-skip4": TransPoseConfig(
        name="tp-m-s16-skip4", backbone="movenet", stem_level="fpn16",
        skip_levels=("fpn8", "fpn4"), input_size=(192, 256), d_model=128,
        dim_feedforward=256, n_heads=4, n_layers=2, head_channels=(64, 32),
        output="softmax", softmax_sigma=2.0, dropout=0.1),
    # for tests: the same stem, the smallest head
    "tp-m-micro-skip": TransPoseConfig(
        name="tp-m-micro-skip", backbone="movenet", stem_level="fpn16",
        skip_levels=("fpn8",), input_size=(192, 256), d_model=16, dim_feedforward=32,
        n_heads=2, n_layers=1, head_channels=(8,), output="softmax", softmax_sigma=2.0,
        dropout=0.0),
    "tp-m-micro": TransPoseConfig(
        name="tp-m-micro", backbone="movenet", stem_level="fpn16", input_size=(192, 256),
        d_model=16, dim_feedforward=32, n_heads=2, n_layers=1, head_channels=(8,),
        output="softmax", softmax_sigma=2.0, dropout=0.0),
}

# the same on the whole crop: what tp-m-s16 was until 2026-12-06 (its weights were trained
# so, stages 1-4 of docs/training-log.md)
DISTILL_CONFIGS["tp-m-s16-image"] = DISTILL_CONFIGS["tp-m-s16"].replace(
    name="tp-m-s16-image", crop_context="image")


@dataclass(frozen=True)
class DistillConfig:
    out: str
    model: str = "tp-m-s16"
    stem: str = ""                   # MoveNet Thunder .onnx (or a converted stem .pth)
    views: int = 3                   # plain, mirrored, then augmented
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.3
    seed: int = 0
    threads: int = 0                 # torch threads (0: all cores)
    val_fraction: float = 0.05
    resume: bool = False
    cache_dir: str = ""              # default: OUT/features
    init: str = ""                   # a TransPose-M .pth: start from its encoder (and head
                                     # layers of the same shape) instead of from scratch
    max_steps_per_epoch: int = 0
    progress: bool = True

    def model_config(self) -> TransPoseConfig:
        from ..models.config import normalise_name
        key = normalise_name(self.model)
        if key not in DISTILL_CONFIGS:
            raise InputError(f"unknown TransPose-M config {self.model!r}; choose one of "
                             f"{', '.join(DISTILL_CONFIGS)}")
        return DISTILL_CONFIGS[key]


# ---------------------------------------------------------------------------- stem
def load_stem_weights(path: str | os.PathLike, level: str) -> dict[str, torch.Tensor]:
    """The stem's state_dict from MoveNet's .onnx (converted now), a converted .pth, or a
    TransPose-M checkpoint (its stem.* weights)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such stem file (MoveNet Thunder .onnx or a converted "
                         f".pth)")
    if p.suffix.lower() == ".onnx":
        from ..models.convert_movenet import convert
        return convert(p, level)                        # type: ignore[arg-type]
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file gets the same message
        raise CheckpointError(f"{p}: not a readable stem state_dict") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        # a TransPose-M checkpoint (the shipped model): its stem.* weights
        sd = {k[len("stem."):]: v.float() for k, v in sd["state_dict"].items()
              if k.startswith("stem.")}
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{p}: holds no stem weights")
    return sd


def finest_level(cfg: TransPoseConfig) -> str:
    """The FPN level the stem must reach: its token level or the finest skip."""
    from ..models.mobilenet_fpn import LEVEL_STRIDE
    return min((cfg.stem_level, *cfg.skip_levels), key=LEVEL_STRIDE.__getitem__)


def build_student(cfg: TransPoseConfig, stem_sd: dict[str, torch.Tensor],
                  seed: int = 0) -> TransPose:
    """TransPose-M with the converted stem loaded and frozen, a fresh encoder and head."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    # a finer stem (one converted for skips, or a skip model's) also serves a coarser one
    wanted = model.stem.state_dict().keys()                 # type: ignore[union-attr]
    stem_sd = {k: v for k, v in stem_sd.items() if k in wanted}
    try:
        model.stem.load_state_dict(stem_sd, strict=True)   # type: ignore[union-attr]
    except RuntimeError as e:
        raise CheckpointError(f"the stem weights do not fit MoveNetStem({finest_level(cfg)}): "
                              f"{str(e).splitlines()[0]}") from None
    for p in model.stem.parameters():                      # type: ignore[union-attr]
        p.requires_grad_(False)
    for m in model.deconv_layers.modules():                # type: ignore[union-attr]
        if isinstance(m, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(m.weight, std=0.001)
    torch.nn.init.normal_(model.final_layer.weight, std=0.001)   # type: ignore[union-attr]
    torch.nn.init.zeros_(model.final_layer.bias)                 # type: ignore[union-attr]
    return model


def warm_start(model: TransPose, path: str | os.PathLike, log: Callable[[str], None]) -> None:
    """Load a TransPose-M checkpoint's encoder and every head tensor of the same name and
    shape (never the stem: it stays MoveNet's)."""
    from ..models.checkpoint import load_weights
    try:
        other = load_weights(str(path), progress=False).model
    except Exception as e:  # noqa: BLE001 - one clear message for any unreadable file
        raise CheckpointError(f"{path}: cannot start from it ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'unreadable'})") from None
    own = model.state_dict()
    taken = {k: v.float() for k, v in other.state_dict().items()
             if not k.startswith("stem.") and k in own and own[k].shape == v.shape}
    if not any(k.startswith("global_encoder.") for k in taken):
        raise CheckpointError(f"{path}: its encoder does not fit {model.config.name}")
    model.load_state_dict(taken, strict=False)
    log(f"started from {path}: {len(taken)} of {len(own)} tensors "
        f"({sum(1 for k in own if k.startswith('stem.'))} are the stem's)")


# ---------------------------------------------------------------------------- views
def view_augment(view: int) -> AugmentConfig:
    """View 0: the plain crop; 1: mirrored; 2..: the training augmentation."""
    if view == 0:
        return NO_AUGMENT
    if view == 1:
        return AugmentConfig(scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0,
                             flip_prob=1.0, half_body_prob=0.0, color_prob=0.0,
                             grayscale_prob=0.0, blur_prob=0.0, occlusion_prob=0.0)
    return AugmentConfig()


def render_view(person: TrainPerson, view: int, cfg: TransPoseConfig, seed: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> (normalised input (3, H, W) float32, joints in heatmap pixels (K, 2), weights)."""
    hm_size = (cfg.input_size[0] // 4, cfg.input_size[1] // 4)
    rng = np.random.default_rng([seed, view, int(hashlib.sha1(person.uid.encode())
                                                 .hexdigest()[:8], 16)])
    s = render_sample(read_bgr(person.image_path), person.box, person.joints, person.weights,
                      cfg.input_size, hm_size, cfg.softmax_sigma, view_augment(view), rng,
                      cfg.crop_context)
    return normalise(s.crop_rgb), s.joints_heatmap.astype(np.float32), s.target_weight


class _ViewDataset(torch.utils.data.Dataset):
    def __init__(self, items: Sequence[tuple[TrainPerson, int]], cfg: TransPoseConfig,
                 seed: int) -> None:
        self.items, self.cfg, self.seed = list(items), cfg, seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        person, view = self.items[i]
        x, j, w = render_view(person, view, self.cfg, self.seed)
        return torch.from_numpy(x), torch.from_numpy(j), torch.from_numpy(w)


# ---------------------------------------------------------------------------- cache
@dataclass
class CachedViews:
    """Everything training needs, in memory: stem features and labels of every view."""

    features: torch.Tensor          # (N, C, h, w) float16
    joints: torch.Tensor            # (N, K, 2) heatmap pixels
    weights: torch.Tensor           # (N, K)
    skips: tuple[torch.Tensor, ...] = ()    # finer FPN levels for a skip head, float16

    def inputs(self, idx: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """What ``head_from_features`` takes for these views, as float32."""
        if not self.skips:
            return self.features[idx].float()
        return (self.features[idx].float(), *(s[idx].float() for s in self.skips))


class FeatureCache:
    """Stem features of every (person, view), in checksummed shards (module docstring)."""

    def __init__(self, folder: str | os.PathLike, key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.key = key
        self.index_path = self.folder / "index.json"

    def _load_index(self) -> dict[str, Any]:
        try:
            index = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return {"key": self.key, "shards": {}}
        if index.get("key") != self.key:
            return {"key": self.key, "shards": {}}
        return index

    def _save_index(self, index: dict[str, Any]) -> None:
        tmp = self.index_path.with_name(f"index.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=1) + "\n")
        os.replace(tmp, self.index_path)

    def _valid(self, index: dict[str, Any], name: str, count: int) -> bool:
        rec = index["shards"].get(name)
        path = self.folder / name
        if not rec or rec.get("count") != count or not path.is_file():
            return False
        return sha256_file(path) == rec.get("sha256")

    def build(self, items: Sequence[tuple[TrainPerson, int]], cfg: TransPoseConfig,
              stem: torch.nn.Module, seed: int, log: Callable[[str], None],
              progress: bool = True) -> None:
        """Compute every shard that is not already valid on disk."""
        from tqdm import tqdm
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self._load_index()
        shards = [(f"shard_{i // SHARD_SIZE:05d}.npz", i, min(i + SHARD_SIZE, len(items)))
                  for i in range(0, len(items), SHARD_SIZE)]
        todo = []
        for name, a, b in shards:
            if self._valid(index, name, b - a):
                continue
            if name in index["shards"]:
                log(f"feature cache: {self.folder / name} is missing or corrupt; rebuilding it")
                del index["shards"][name]
            todo.append((name, a, b))
        if not todo:
            return
        log(f"feature cache: {len(todo)} of {len(shards)} shards to compute in {self.folder}")
        from .data import prepare_parent_for_workers
        prepare_parent_for_workers()
        runner = stem_runner(stem)
        bar = tqdm(total=sum(b - a for _, a, b in todo), desc="stem features", unit="view",
                   disable=not progress, file=sys.stderr)
        for name, a, b in todo:
            loader = torch.utils.data.DataLoader(_ViewDataset(items[a:b], cfg, seed),
                                                 batch_size=32, num_workers=1)
            levels: list[list[np.ndarray]] = []
            joints, weights = [], []
            for x, j, w in loader:
                for lv, f in enumerate(runner(x)):
                    if lv == len(levels):
                        levels.append([])
                    levels[lv].append(f.astype(np.float16))
                joints.append(j.numpy())
                weights.append(w.numpy())
                bar.update(len(x))
            path = self.folder / name
            tmp = path.with_name(f"{name}.{os.getpid()}.tmp.npz")
            arrays = {"features": np.concatenate(levels[0]),
                      **{f"skip{i}": np.concatenate(lv) for i, lv in enumerate(levels[1:])}}
            np.savez(tmp, **arrays, joints=np.concatenate(joints),
                     weights=np.concatenate(weights))
            os.replace(tmp, path)
            index["shards"][name] = {"count": b - a, "sha256": sha256_file(path)}
            self._save_index(index)
        bar.close()

    def load(self, n_items: int) -> CachedViews:
        """Every shard into one set of preallocated tensors (the stride-4 skip level of a
        full run is several GB: no concatenation copy)."""
        index = self._load_index()
        out: dict[str, torch.Tensor] = {}
        for i in range(0, n_items, SHARD_SIZE):
            name = f"shard_{i // SHARD_SIZE:05d}.npz"
            count = min(SHARD_SIZE, n_items - i)
            if not self._valid(index, name, count):
                raise CheckpointError(f"{self.folder / name}: missing or corrupt feature "
                                      f"shard; run again to rebuild it")
            with np.load(self.folder / name) as z:
                for key in z.files:
                    a = z[key]
                    if key not in out:
                        out[key] = torch.empty((n_items, *a.shape[1:]),
                                               dtype=torch.from_numpy(a[:0]).dtype)
                    out[key][i:i + count] = torch.from_numpy(a)
        skips = tuple(out[f"skip{i}"] for i in range(len(out)) if f"skip{i}" in out)
        return CachedViews(out["features"], out["joints"], out["weights"], skips)


def stem_runner(stem: torch.nn.Module) -> Callable[[torch.Tensor], tuple[np.ndarray, ...]]:
    """The fastest exact way to run the frozen stem here: onnxruntime on an export of our
    module (core.models.mobilenet_fpn.OnnxRuntimeStem, the estimator's CPU path) when onnx
    and onnxruntime are installed, else TorchScript (frozen, NHWC). It returns the token
    level's features, then each skip level's."""
    from ..models.mobilenet_fpn import OnnxRuntimeStem, onnxruntime_available

    def arrays(y: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
        return tuple(t.contiguous().numpy() for t in (y if isinstance(y, tuple) else (y,)))
    stem = stem.eval()
    if onnxruntime_available():
        try:
            fast = OnnxRuntimeStem(stem, threads=max(1, torch.get_num_threads()))
            return lambda t: arrays(fast(t))
        except Exception:  # noqa: BLE001 - any export/runtime problem: fall back to torch
            pass
    frozen = {}

    def run(t: torch.Tensor) -> tuple[np.ndarray, ...]:
        with torch.inference_mode():
            if t.shape[0] not in frozen:
                traced = torch.jit.trace(stem.to(memory_format=torch.channels_last), t)
                frozen[t.shape[0]] = torch.jit.freeze(traced)
            return arrays(frozen[t.shape[0]](t.contiguous(memory_format=torch.channels_last)))
    return run


# ---------------------------------------------------------------------------- training
def soft_targets(joints: torch.Tensor, weights: torch.Tensor, hw: tuple[int, int],
                 sigma: float | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised Gaussians (N, K, h*w) at the joints (heatmap pixels), of one sigma or one
    per joint; weight 0 where the joint is unlabelled or off the map."""
    h, w = hw
    ys = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    jx, jy = joints[..., 0, None, None], joints[..., 1, None, None]
    s = torch.as_tensor(sigma, dtype=torch.float32).reshape(1, -1, 1, 1)
    g = torch.exp(-((xs - jx) ** 2 + (ys - jy) ** 2) / (2 * s * s)).flatten(2)
    inside = (joints[..., 0] >= -0.5) & (joints[..., 0] <= w - 0.5) & \
             (joints[..., 1] >= -0.5) & (joints[..., 1] <= h - 0.5) & \
             torch.isfinite(joints).all(-1)
    g = g / g.sum(-1, keepdim=True).clamp_min(1e-12)
    return g, weights * inside


def heatmap_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy of each joint's softmax over positions (mean over weight)."""
    logp = F.log_softmax(logits.float().flatten(2), dim=-1)
    ce = -(target * logp).sum(-1)                                   # (N, K)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float | None
    val_pck: float | None          # PCK@0.05 of the heatmap's longer side, plain view
    seconds: float
    lr: float


@dataclass
class DistillResult:
    model_path: Path
    history: list[EpochRecord] = field(default_factory=list)


class HeadTrainer:
    """Trains the encoder and head of a TransPose-M on cached stem features."""

    def __init__(self, config: DistillConfig, model: TransPose, train: CachedViews,
                 val: CachedViews, log: Callable[[str], None]) -> None:
        self.config, self.model, self.train, self.val, self.log = config, model, train, val, log
        self.out = Path(config.out)
        self.cfg = model.config
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(len(train.features) / config.batch_size)
        if config.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, config.max_steps_per_epoch)
        total = self.steps_per_epoch * config.epochs
        warm = int(config.warmup_epochs * self.steps_per_epoch)
        from .trainer import lr_lambda
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(total, warm, 0.01))
        self.history: list[EpochRecord] = []
        self.epoch = 0
        self.hw = (self.cfg.heatmap_size[1], self.cfg.heatmap_size[0])

    def _head_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if not k.startswith("stem.")}

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "head": self._head_state(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(),
                "history": [asdict(r) for r in self.history],
                "config": json.loads(json.dumps(asdict(self.config)))}

    def resume(self) -> bool:
        path = self.out / "last.ckpt"
        if not path.is_file():
            return False
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(st["head"], strict=False)
            self.opt.load_state_dict(st["opt"])
            self.sched.load_state_dict(st["sched"])
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint must say so plainly
            raise CheckpointError(f"{path}: cannot resume from it ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else 'unreadable'}); "
                                  f"delete it to start over") from None
        self.epoch = int(st["epoch"])
        self.history = [EpochRecord(**r) for r in st["history"]]
        self.log(f"resumed from {path} after epoch {self.epoch}")
        return True

    def _batch_loss(self, idx: torch.Tensor, data: CachedViews) -> torch.Tensor:
        logits, _ = self.model.head_from_features(data.inputs(idx))
        target, weight = soft_targets(data.joints[idx], data.weights[idx], self.hw,
                                      self.cfg.sigmas())
        return heatmap_ce(logits, target, weight)

    @torch.no_grad()
    def validate(self) -> tuple[float | None, float | None]:
        if not len(self.val.features):
            return None, None
        self.model.eval()
        losses, hits, count = [], 0, 0
        h, w = self.hw
        for i in range(0, len(self.val.features), 128):
            idx = torch.arange(i, min(i + 128, len(self.val.features)))
            logits, _ = self.model.head_from_features(self.val.inputs(idx))
            target, weight = soft_targets(self.val.joints[idx], self.val.weights[idx],
                                          self.hw, self.cfg.sigmas())
            losses.append(float(heatmap_ce(logits, target, weight)) * len(idx))
            d = (heatmap_argmax(logits) - self.val.joints[idx]).norm(dim=-1)
            m = weight >= 0.5
            hits += int(((d <= 0.05 * max(h, w)) & m).sum())
            count += int(m.sum())
        self.model.train()
        self.model.stem.eval()                               # type: ignore[union-attr]
        return sum(losses) / len(self.val.features), hits / max(count, 1)

    def fit(self) -> list[EpochRecord]:
        from tqdm import tqdm
        c = self.config
        self.model.train()
        self.model.stem.eval()                               # type: ignore[union-attr]
        n = len(self.train.features)
        while self.epoch < c.epochs:
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(c.seed * 1000 + self.epoch)
            order = torch.randperm(n, generator=g)
            total, seen = 0.0, 0
            bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {self.epoch + 1}/{c.epochs}",
                       disable=not c.progress, file=sys.stderr, unit="step")
            for step in bar:
                idx = order[step * c.batch_size:(step + 1) * c.batch_size]
                loss = self._batch_loss(idx, self.train)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, 5.0)
                self.opt.step()
                self.sched.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                bar.set_postfix(loss=f"{total / seen:.3f}")
            bar.close()
            val_loss, val_pck = self.validate()
            self.epoch += 1
            rec = EpochRecord(self.epoch, total / max(seen, 1), val_loss, val_pck,
                              round(time.perf_counter() - t0, 1), self.sched.get_last_lr()[0])
            self.history.append(rec)
            tmp = self.out / "last.ckpt.tmp"
            torch.save(self.state(), tmp)
            os.replace(tmp, self.out / "last.ckpt")
            (self.out / "history.json").write_text(
                json.dumps([asdict(r) for r in self.history], indent=1) + "\n")
            self.log(f"epoch {rec.epoch}: train CE {rec.train_loss:.4f}, val CE "
                     f"{rec.val_loss if rec.val_loss is None else round(rec.val_loss, 4)}, "
                     f"val PCK@0.05 {rec.val_pck if rec.val_pck is None else round(rec.val_pck, 4)}"
                     f", {rec.seconds:.0f} s")
        return self.history


def export_fp16(model: TransPose, path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """A self-describing checkpoint with float tensors stored as float16 (the position
    embedding stays float32: it is exact sines)."""
    half = copy_half(model)
    return save_checkpoint(half, path, meta)


def copy_half(model: TransPose) -> TransPose:
    import copy
    m = copy.deepcopy(model).eval()
    for name, p in m.named_parameters():
        if name != "pos_embedding":
            p.data = p.data.half()
    for name, b in m.named_buffers():
        if b.is_floating_point():
            b.data = b.data.half()
    return m


def distill(config: DistillConfig, people: Sequence[TrainPerson], log: Callable[[str], None],
            run_info: dict[str, Any] | None = None) -> DistillResult:
    """The whole recipe (module docstring): cache, train, export OUT/model.pth."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "last.ckpt").is_file() and not config.resume:
        raise InputError(f"{out} already holds a run (last.ckpt); pass --resume to continue "
                         f"it or choose another --out")
    if config.threads:
        torch.set_num_threads(config.threads)
    cfg = config.model_config()
    if not config.stem:
        from .labels import default_movenet_path
        stem_path = str(default_movenet_path())
    else:
        stem_path = config.stem
    stem_sd = load_stem_weights(stem_path, finest_level(cfg))
    model = build_student(cfg, stem_sd, config.seed)
    if config.init and not (config.resume and (out / "last.ckpt").is_file()):
        warm_start(model, config.init, log)
    train_people, val_people = split_people(list(people), config.val_fraction)
    log(f"{len(train_people)} training people x {config.views} views, "
        f"{len(val_people)} validation people (plain view)")
    train_items = [(p, v) for v in range(config.views) for p in train_people]
    val_items = [(p, 0) for p in val_people]
    people_digest = hashlib.sha256("|".join(p.uid for p in people).encode()).hexdigest()[:16]
    base = Path(config.cache_dir) if config.cache_dir else out / "features"
    key = {"version": CACHE_VERSION, "stem": stem_digest(stem_sd)[:16], "level": cfg.stem_level,
           "skips": list(cfg.skip_levels),
           "input_size": list(cfg.input_size), "sigma": cfg.softmax_sigma,
           "seed": config.seed, "people": people_digest, "val_fraction": config.val_fraction}
    if cfg.crop_context != "image":         # caches made before the option stay valid
        key["context"] = cfg.crop_context
    caches = {"val": (FeatureCache(base / "val", {**key, "views": 1}), val_items),
              "train": (FeatureCache(base / "train", {**key, "views": config.views}),
                        train_items)}
    t0 = time.perf_counter()
    for cache, items in caches.values():
        cache.build(items, cfg, model.stem, config.seed, log, config.progress)
    data = {name: cache.load(len(items)) for name, (cache, items) in caches.items()}
    log(f"features ready ({time.perf_counter() - t0:.0f} s): "
        f"{len(data['train'].features)} training views, "
        f"{sum(t.numel() for t in (data['train'].features, *data['train'].skips)) * 2 / 1e6:.0f}"
        f" MB")
    trainer = HeadTrainer(config, model, data["train"], data["val"], log)
    if config.resume:
        trainer.resume()
    history = trainer.fit()
    meta = {"recipe": "tp-m distillation (frozen MoveNet stem, cross-entropy)",
            "epochs": trainer.epoch, "history": [asdict(r) for r in history],
            "train_people": len(train_people), "views": config.views,
            **(run_info or {})}
    path = export_fp16(model, out / "model.pth", json.loads(json.dumps(meta, default=str)))
    log(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return DistillResult(path, history)


def export_from_checkpoint(run: str | os.PathLike, to: str | os.PathLike | None = None
                           ) -> Path:
    """OUT/last.ckpt (the last finished epoch of a run, finished or not) -> a shippable
    fp16 model file (default OUT/model-epochN.pth)."""
    run = Path(run)
    path = run / "last.ckpt"
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint (has an epoch finished yet?)")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
        conf = DistillConfig(**{k: v for k, v in st["config"].items()
                                if k in DistillConfig.__dataclass_fields__})
    except Exception as e:  # noqa: BLE001 - a damaged checkpoint gets one clear message
        raise CheckpointError(f"{path}: unreadable run checkpoint ({type(e).__name__})") from None
    cfg = conf.model_config()
    stem = conf.stem
    if not stem:
        from .labels import default_movenet_path
        stem = str(default_movenet_path())
    model = build_student(cfg, load_stem_weights(stem, finest_level(cfg)), conf.seed)
    model.load_state_dict(st["head"], strict=False)
    meta = {"recipe": "tp-m distillation (frozen MoveNet stem, cross-entropy)",
            "epochs": int(st["epoch"]), "history": st["history"], "views": conf.views}
    out = Path(to) if to else run / f"model-epoch{int(st['epoch'])}.pth"
    return export_fp16(model.eval(), out, meta)


def publish_as(model_path: str | os.PathLike, name: str, to: str | os.PathLike) -> Path:
    """A finished model file saved under a registered config's name (how a run made under
    an experimental name becomes tp-m-s16): the architecture and the targets must be the
    registered ones; the weights are untouched and meta records the name it was trained as.
    The crop context may differ (how inference cuts people out, not what was learnt: the
    whole-crop tp-m-s16 weights score better cut black outside the box, see
    docs/training-log.md 2026-12-06); meta then records the one it was trained with."""
    from ..io_utils import atomic_write_bytes
    path = Path(model_path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        trained = TransPoseConfig.from_dict(raw["config"])
    except Exception as e:  # noqa: BLE001 - one clear message for any unreadable file
        raise CheckpointError(f"{path}: not a TransPose Studio model file "
                              f"({type(e).__name__})") from None
    target = DistillConfig(out="", model=name).model_config()
    if trained.replace(name=target.name, crop_context=target.crop_context) != target:
        raise InputError(f"{path}: its config ({trained.name}) differs from {target.name} in "
                         f"more than the name and the crop context")
    raw["config"] = target.to_dict()
    raw["meta"] = {**raw.get("meta", {}), "trained_as": trained.name}
    if trained.crop_context != target.crop_context:
        raw["meta"]["trained_crop_context"] = trained.crop_context
    buf = io.BytesIO()
    torch.save(raw, buf)
    return atomic_write_bytes(to, buf.getvalue())


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="export a TransPose-M run's last finished epoch, "
                                            "or (--as) publish a model under a config's name")
    p.add_argument("run", help="the run's --out folder (or, with --as, a model .pth)")
    p.add_argument("--to", help="output .pth (default RUN/model-epochN.pth)")
    p.add_argument("--as", dest="name", metavar="CONFIG",
                   help="save the model file RUN as config CONFIG (same architecture and "
                        "targets), to --to")
    a = p.parse_args()
    try:
        if a.name:
            if not a.to:
                raise InputError("--as needs --to")
            print(publish_as(a.run, a.name, a.to))
        else:
            print(export_from_checkpoint(a.run, a.to))
    except (InputError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1)
