"""Training loop: AdamW + warmup/cosine, checkpoints, resume, history; TransPose (weighted
heatmap MSE) or TFPose (coordinate L1 + auxiliary heatmaps + scores), see objectives.py.

Files written to ``TrainConfig.out`` (all atomically, through a temporary file):

* ``last.ckpt``: everything needed to resume (model, optimizer, scheduler, epoch, best
  validation loss, history, configs), after every epoch;
* ``best.pth``: the weights with the lowest validation loss so far, as a self-describing
  ``core.models.save_checkpoint`` file (config + weights + meta);
* ``last.pth``: the latest epoch's weights, same format;
* ``model.pth``: at the end, the exported model (the best by validation loss; the last
  epoch when there is no validation slice); ``main.py predict --weights OUT/model.pth``;
* ``history.json``: per epoch train/val loss, val PCK, learning rate, time, s/image, and
  ``curve``: about 20 [epoch (fractional), mean training loss since the last point, lr]
  points per epoch, for learning curves;
* ``run.json``: the configuration, the data summary and the labelling statistics.

The validation slice is held out of the TRAINING people (data.split_people); the public
evaluation set never enters training (sources.guard_not_evaluation).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import InputError
from ..models import TFPoseConfig, TransPoseConfig, build_network, save_checkpoint
from ..pose.preprocess import model_crop_context
from .configs import DEFAULT_TRAIN_CONFIG, get_train_config
from .objectives import JointsMSELoss, objective_for
from .data import (PoseTrainDataset, TrainPerson, prepare_parent_for_workers, split_people,
                   worker_init)
from .transforms import NO_AUGMENT, AugmentConfig

STATE_FORMAT = "transpose-studio-train"


@dataclass
class TrainConfig:
    out: str
    model: str | TransPoseConfig | TFPoseConfig = DEFAULT_TRAIN_CONFIG   # a name
                                               # (configs.TRAIN_CONFIGS, OFFICIAL_CONFIGS) or a config
    model_overrides: dict[str, Any] = field(default_factory=dict)   # config fields
    init: str = ""                             # start from these weights (a .pth); its
                                               # configuration replaces `model`
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3                          # peak learning rate (AdamW)
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5                 # linear warmup from lr * 0.01
    min_lr_ratio: float = 0.01                 # cosine decay down to lr * min_lr_ratio
    grad_clip: float = 5.0                     # max gradient norm (0: off)
    sigma: float = 0.0                         # target Gaussian sigma in heatmap pixels;
                                               # 0: 2.0 scaled to the heatmap (official 2 at 48x64)
    device: str = "auto"                       # auto (CUDA when present), cpu, cuda, cuda:N
    precision: str = "auto"                    # auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16
    seed: int = 0
    workers: int = -1                          # DataLoader workers; -1: min(4, cpus - 1)
    threads: int = 0                           # torch CPU threads; 0: cpus - workers
    val_fraction: float = 0.05
    resume: bool = False
    max_steps_per_epoch: int = 0               # 0: all (a cap for smoke runs)
    progress: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def model_config(self) -> TransPoseConfig | TFPoseConfig:
        if self.init:
            from ..models import load_weights
            cfg = load_weights(self.init).config
            return cfg.replace(**self.model_overrides) if self.model_overrides else cfg
        cfg = self.model if isinstance(self.model, (TransPoseConfig, TFPoseConfig)) else \
            get_train_config(self.model)
        if self.model_overrides:
            try:
                cfg = cfg.replace(**self.model_overrides)
            except (TypeError, ValueError) as e:
                raise InputError(f"invalid model config override: {e}") from None
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v
                        for k, v in dataclasses.asdict(self.augment).items()}
        return d


@dataclass
class TrainResult:
    out: Path
    model_path: Path
    best_val_loss: float | None
    history: list[dict[str, Any]]
    epochs_run: int


# ---------------------------------------------------------------------------- pieces
def init_weights(model: nn.Module) -> None:
    """From-scratch initialisation: He (fan-out) convolutions, BatchNorm 1/0 with the last
    BN of each residual block at 0, the official N(0, 0.001) deconvolutions and heatmap
    heads; the Transformers (and TFPose's input projections) keep their own initialisation."""
    from ..models.backbones import BasicBlock, Bottleneck
    for name, m in model.named_modules():
        if name.startswith(("global_encoder", "input_proj", "encoder", "decoder")):
            continue
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, std=0.001)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, Bottleneck):
            nn.init.zeros_(m.bn3.weight)
        elif isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)
    for head in ("final_layer", "aux_final"):
        final = getattr(model, head, None)
        if isinstance(final, nn.Conv2d):
            nn.init.normal_(final.weight, std=0.001)
            if final.bias is not None:
                nn.init.zeros_(final.bias)


def lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup (from 1% of the peak), then cosine decay to min_ratio."""
    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return 0.01 + 0.99 * step / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        t = min(max(t, 0.0), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def resolve_device(device: str) -> torch.device:
    from ..pose.estimator import resolve_device as rd
    return rd(device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    raise InputError(f"precision must be auto, fp32 or bf16, not {precision!r}")


def default_sigma(heatmap_size: tuple[int, int]) -> float:
    """The official sigma 2 at 48x64 heatmaps, scaled to this heatmap's height (min 1)."""
    return max(1.0, 2.0 * heatmap_size[1] / 64.0)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _plain(obj: Any) -> Any:
    """JSON-plain copy (what torch.load(weights_only=True) accepts in a checkpoint)."""
    return json.loads(json.dumps(obj, default=str))


def _fmt_time(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60:02d}:{s % 60:02d}"


def pck_hits(pred_hm: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
             threshold: float = 0.05) -> tuple[int, int]:
    """(hits, count): joints (weight >= 0.5) whose prediction (N, K, 2) in heatmap pixels
    (TransPose: its heatmap peak; TFPose: its coordinates) lies within threshold x the
    heatmap's longer side of the target heatmap's peak."""
    from .objectives import heatmap_argmax
    h, w = target.shape[2:]
    d = (pred_hm.float() - heatmap_argmax(target)).norm(dim=-1)
    m = weight >= 0.5
    return int(((d <= threshold * max(h, w)) & m).sum()), int(m.sum())


# ---------------------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, config: TrainConfig, train_people: Sequence[TrainPerson],
                 val_people: Sequence[TrainPerson], log: Callable[[str], None] | None = None,
                 run_info: dict[str, Any] | None = None) -> None:
        self.config = config
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.model_config = config.model_config()
        self.device = resolve_device(config.device)
        self.amp = autocast_dtype(config.precision, self.device)
        cpus = os.cpu_count() or 1
        self.workers = config.workers if config.workers >= 0 else max(0, min(4, cpus - 1))
        if self.device.type == "cpu":
            threads = config.threads or max(1, cpus - self.workers)
            torch.set_num_threads(threads)
        else:
            torch.backends.cudnn.benchmark = True      # fixed input size: pick the fastest convs
        hm = self.model_config.heatmap_size
        self.sigma = config.sigma or default_sigma(hm)
        if not train_people:
            raise InputError("no training people: give at least one data source with people")
        context = model_crop_context(self.model_config)
        self.train_set = PoseTrainDataset(train_people, self.model_config.input_size, self.sigma,
                                          config.augment, config.seed, context)
        self.val_set = PoseTrainDataset(val_people, self.model_config.input_size, self.sigma,
                                        NO_AUGMENT, config.seed, context) if val_people else None
        self.run_info = dict(run_info or {})

        torch.manual_seed(config.seed)
        self.model = build_network(self.model_config)
        init_weights(self.model)
        if config.init:
            from ..models.checkpoint import load_state_dict_strict, load_weights
            load_state_dict_strict(self.model, load_weights(config.init).model.state_dict(),
                                   config.init)
        self.model.to(self.device)
        self.objective = objective_for(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
        self.steps_per_epoch = self._steps_per_epoch()
        total = self.steps_per_epoch * config.epochs
        warm = int(round(config.warmup_epochs * self.steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(total, warm, config.min_lr_ratio))
        self.start_epoch = 0
        self.best_val: float | None = None
        self.history: list[dict[str, Any]] = []

    # -- data ------------------------------------------------------------------------------
    def _steps_per_epoch(self) -> int:
        n = len(self.train_set)
        bs = self.config.batch_size
        steps = n // bs if n >= bs else 1
        if self.config.max_steps_per_epoch:
            steps = min(steps, self.config.max_steps_per_epoch)
        return max(1, steps)

    def _loader(self, dataset: PoseTrainDataset, epoch: int, train: bool
                ) -> torch.utils.data.DataLoader:
        dataset.set_epoch(epoch)
        g = torch.Generator()
        g.manual_seed(self.config.seed * 100_003 + epoch)
        bs = self.config.batch_size
        kw: dict[str, Any] = dict(batch_size=bs, num_workers=self.workers,
                                  pin_memory=self.device.type == "cuda",
                                  worker_init_fn=worker_init if self.workers else None)
        if self.workers:
            prepare_parent_for_workers()
            kw["prefetch_factor"] = 4
        if train:
            sampler = torch.utils.data.RandomSampler(dataset, generator=g)
            return torch.utils.data.DataLoader(dataset, sampler=sampler,
                                               drop_last=len(dataset) >= bs, **kw)
        return torch.utils.data.DataLoader(dataset, shuffle=False, **kw)

    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    # -- checkpoints -----------------------------------------------------------------------
    def _meta(self, epoch: int, val_loss: float | None) -> dict[str, Any]:
        return _plain({"trained_by": "transpose-studio core.training", "epoch": epoch + 1,
                "val_loss": val_loss, "train_config": self.config.to_dict(),
                "sigma": self.sigma, "data": self.run_info.get("data", {}),
                "teacher": self.run_info.get("teacher", ""),
                "torch": str(torch.__version__), "time": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _state(self, epoch: int) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "epoch": epoch, "model": self.model.state_dict(),
                "model_config": self.model_config.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "best_val": self.best_val, "history": _plain(self.history),
                "train_config": _plain(self.config.to_dict()),
                "torch_rng": torch.get_rng_state()}

    def resume(self) -> bool:
        path = self.out / "last.ckpt"
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
            raise InputError(f"{path}: cannot resume from it ({str(e).splitlines()[0][:160]})"
                             ) from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise InputError(f"{path}: not a training state written by this trainer")
        if state["model_config"] != self.model_config.to_dict():
            raise InputError(f"{path}: was trained with model config "
                             f"{state['model_config'].get('name')} {state['model_config']}, "
                             f"not {self.model_config.name}; resume with the same --config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best_val = state.get("best_val")
        self.history = list(state.get("history") or [])
        self.start_epoch = int(state["epoch"]) + 1
        if isinstance(state.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(state["torch_rng"])
        return True

    def _save_epoch(self, epoch: int, val_loss: float | None) -> bool:
        improved = val_loss is None or self.best_val is None or val_loss < self.best_val
        if val_loss is not None and improved:
            self.best_val = val_loss
        model = self.model
        save_checkpoint(model, self.out / "last.pth", self._meta(epoch, val_loss))
        if improved:
            save_checkpoint(model, self.out / "best.pth", self._meta(epoch, val_loss))
        _atomic_torch_save(self._state(epoch), self.out / "last.ckpt")
        _atomic_json(self.history, self.out / "history.json")
        return improved

    # -- loops -----------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, t_start: float, epochs_done_before: int
                     ) -> tuple[float, int, list[list[float]]]:
        from tqdm import tqdm
        self.model.train()
        loader = self._loader(self.train_set, epoch, train=True)
        steps = self.steps_per_epoch
        total_loss, seen = 0.0, 0
        parts_sum: dict[str, float] = {}
        every = max(1, steps // 20)              # ~20 points of the loss curve per epoch
        curve: list[list[float]] = []
        win_loss, win_n = 0.0, 0
        bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batch",
                   disable=not self.config.progress, file=sys.stderr, dynamic_ncols=True,
                   leave=True)
        nb = self.device.type == "cuda"
        try:
            for step, batch in enumerate(loader):
                if step >= steps:
                    break
                x, y, w, uv = (t.to(self.device, non_blocking=nb) for t in batch)
                with self._autocast():
                    result = self.objective(self.model, x, y, w, uv)
                loss = result.loss
                for k, v in result.parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v * len(x)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                if not torch.isfinite(loss):
                    raise InputError(f"the loss became {loss.item()} at epoch {epoch + 1} step "
                                     f"{step + 1}; lower --lr")
                value = float(loss.detach())
                total_loss += value * len(x)
                seen += len(x)
                win_loss, win_n = win_loss + value * len(x), win_n + len(x)
                if (step + 1) % every == 0 or step + 1 == steps:
                    curve.append([epoch + (step + 1) / steps, win_loss / win_n,
                                  self.scheduler.get_last_lr()[0]])
                    win_loss, win_n = 0.0, 0
                done = epochs_done_before * steps + step + 1
                left = (self.config.epochs - self.start_epoch) * steps - done
                rate = (time.perf_counter() - t_start) / max(1, done)
                bar.set_postfix_str(f"loss {total_loss / seen * 1e3:.3f}e-3 "
                                    f"lr {self.scheduler.get_last_lr()[0]:.2e} "
                                    f"total ETA {_fmt_time(left * rate)}", refresh=False)
                bar.update(1)
        finally:
            bar.close()
        self._last_parts = {k: v / max(1, seen) for k, v in parts_sum.items()}
        return total_loss / max(1, seen), seen, curve

    @torch.no_grad()
    def validate(self) -> tuple[float | None, float | None]:
        if self.val_set is None:
            return None, None
        self.model.eval()
        loader = self._loader(self.val_set, 0, train=False)
        total, n, hits, count = 0.0, 0, 0, 0
        for batch in loader:
            x, y, w, uv = (t.to(self.device) for t in batch)
            with self._autocast():
                result = self.objective(self.model, x, y, w, uv)
            total += float(result.loss) * len(x)
            n += len(x)
            h, c = pck_hits(result.coords_hm, y, w)
            hits, count = hits + h, count + c
        return total / max(1, n), (hits / count if count else None)

    def fit(self) -> TrainResult:
        cfg = self.config
        if (self.out / "last.ckpt").is_file() and not cfg.resume:
            raise InputError(f"{self.out} already holds a training run (last.ckpt); pass "
                             f"--resume to continue it or choose another --out")
        if cfg.resume:
            if self.resume():
                self.log(f"resuming {self.out / 'last.ckpt'} after epoch {self.start_epoch} "
                         f"(best val loss {self.best_val})")
            else:
                self.log(f"--resume: no last.ckpt in {self.out} yet; starting from scratch")
        mc = self.model_config
        self.log(f"model {mc.name}: input {mc.input_size[0]}x{mc.input_size[1]}, "
                 f"{self.model.num_parameters / 1e6:.2f} M parameters, on {self.device}"
                 f"{' (bf16 autocast)' if self.amp is not None else ''}; "
                 f"{len(self.train_set)} training / {len(self.val_set or [])} validation "
                 f"people, {self.steps_per_epoch} steps of {cfg.batch_size} per epoch, "
                 f"sigma {self.sigma:g}, workers {self.workers}, "
                 f"threads {torch.get_num_threads()}")
        info = {"train_config": cfg.to_dict(), "model_config": mc.to_dict(), "sigma": self.sigma,
                "train_people": len(self.train_set), "val_people": len(self.val_set or []),
                "device": str(self.device), "platform": platform.platform(),
                "torch": torch.__version__, **self.run_info}
        _atomic_json(info, self.out / "run.json")
        t_start = time.perf_counter()
        for i, epoch in enumerate(range(self.start_epoch, cfg.epochs)):
            t0 = time.perf_counter()
            train_loss, seen, curve = self._train_epoch(epoch, t_start, i)
            t_train = time.perf_counter() - t0
            val_loss, val_pck = self.validate()
            elapsed = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                   "val_pck05": val_pck, "lr": self.scheduler.get_last_lr()[0],
                   "images": seen, "time_s": round(elapsed, 2),
                   "train_s_per_image": round(t_train / max(1, seen), 5),
                   "train_parts": getattr(self, "_last_parts", {}),
                   "curve": curve}
            self.history.append(row)
            improved = self._save_epoch(epoch, val_loss)
            val_txt = f", val loss {val_loss * 1e3:.3f}e-3, val PCK@0.05 " \
                      f"{val_pck if val_pck is not None else float('nan'):.3f}" \
                if val_loss is not None else ""
            self.log(f"epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss * 1e3:.3f}e-3"
                     f"{val_txt}, {elapsed:.0f} s ({t_train / max(1, seen) * 1e3:.1f} ms/image)"
                     f"{' *best*' if improved and val_loss is not None else ''}")
        model_path = self.out / "model.pth"
        src = self.out / ("best.pth" if (self.out / "best.pth").is_file() else "last.pth")
        if src.is_file():
            tmp = model_path.with_name(model_path.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, model_path)
        return TrainResult(out=self.out, model_path=model_path, best_val_loss=self.best_val,
                           history=self.history, epochs_run=cfg.epochs - self.start_epoch)


def train(config: TrainConfig, people: Sequence[TrainPerson],
          log: Callable[[str], None] | None = None,
          run_info: dict[str, Any] | None = None) -> TrainResult:
    """Split `people` (a held-out validation slice of them) and train."""
    train_people, val_people = split_people(people, config.val_fraction)
    info = dict(run_info or {})
    info.setdefault("data", {})
    info["data"] = {**info["data"], "train": len(train_people), "val": len(val_people)}
    return Trainer(config, train_people, val_people, log, info).fit()
