"""Compare TransPose-M head sizes on an existing feature cache (how tp-m-s16 was chosen).

    python -m core.training.head_sweep out/distill/tp-m-s16 --views 6000 --epochs 2

Reads the run's cached stem features (OUT/features, built by ``main.py train --config
tp-m-s16``), trains each candidate encoder + head on the first ``--views`` training views
for ``--epochs`` epochs with the run's recipe (cross-entropy, AdamW, warm-up + cosine), and
prints per candidate: parameters, validation cross-entropy and PCK@0.05 (plain view of the
held-out people), training ms per view, and the head's inference ms per crop (batch 1, the
stem excluded: it is the same for all). Same seed, data and order for every candidate.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from ..models import TransPoseConfig
from .distill import (DISTILL_CONFIGS, CachedViews, DistillConfig, FeatureCache, HeadTrainer,
                      build_student)

CANDIDATES: dict[str, dict] = {
    "d96-L2": dict(d_model=96, dim_feedforward=192, n_layers=2),
    "d128-L2": dict(d_model=128, dim_feedforward=256, n_layers=2),
    "d128-L3": dict(d_model=128, dim_feedforward=256, n_layers=3),
    "d192-L3": dict(d_model=192, dim_feedforward=384, n_layers=3, n_heads=6),
}


def _load(run: Path, part: str) -> CachedViews:
    folder = run / "features" / part
    index = json.loads((folder / "index.json").read_text())
    n = sum(s["count"] for s in index["shards"].values())
    return FeatureCache(folder, index["key"]).load(n)


def _head_ms(model: torch.nn.Module, feats: torch.Tensor, repeats: int = 20) -> float:
    model.eval()
    x = feats[:1].float()
    with torch.inference_mode():
        for _ in range(3):
            model.head_from_features(x)
        t = time.perf_counter()
        for _ in range(repeats):
            model.head_from_features(x)
    return (time.perf_counter() - t) / repeats * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a tp-m-s16 training run's --out folder")
    p.add_argument("--views", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train, val = _load(args.run, "train"), _load(args.run, "val")
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(len(train.features), generator=g)[: args.views]
    train = CachedViews(train.features[pick], train.joints[pick], train.weights[pick])
    stem_sd = {k[len("stem."):]: v for k, v in torch.load(
        args.run / "model.pth", weights_only=True)["state_dict"].items()
        if k.startswith("stem.")} if (args.run / "model.pth").is_file() else None
    base = DISTILL_CONFIGS["tp-m-s16"]
    print(f"{'candidate':<10}{'params':>9}{'val CE':>9}{'val PCK':>9}{'train ms/view':>15}"
          f"{'head ms':>9}")
    for name in args.candidates:
        cfg: TransPoseConfig = dataclasses.replace(base, name=name, **CANDIDATES[name])
        if stem_sd is None:
            raise SystemExit(f"{args.run}/model.pth is missing: the stem weights come from it")
        model = build_student(cfg, {k: v.float() for k, v in stem_sd.items()}, seed=0)
        conf = DistillConfig(out=str(args.run / "sweep" / name), epochs=args.epochs,
                             progress=False)
        (args.run / "sweep" / name).mkdir(parents=True, exist_ok=True)
        trainer = HeadTrainer(conf, model, train, val, log=lambda m: None)
        t0 = time.perf_counter()
        history = trainer.fit()
        per_view = (time.perf_counter() - t0) / (args.epochs * len(train.features)) * 1e3
        params = sum(q.numel() for k, q in model.named_parameters() if not k.startswith("stem"))
        last = history[-1]
        print(f"{name:<10}{params / 1e6:>8.2f}M{last.val_loss:>9.3f}{last.val_pck:>9.3f}"
              f"{per_view:>15.1f}{_head_ms(model, val.features):>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
