"""Named TransPose configurations for training our own weights, and a cost probe.

The official variants (``tp-r-a3`` ... ``tp-h-a6``, see core.models.OFFICIAL_CONFIGS) are
far too slow to train on a CPU. The ``tp-r-*`` configs below keep the TransPose-R design
(ResNet Bottleneck stem at stride 8 -> 1x1 reduce -> post-norm Transformer encoder with
2-D sine positions -> one 4x4 deconvolution to stride 4 -> 1x1 heatmap head) with fewer
channels, blocks and layers and a smaller 3:4 input (the official aspect, 192x256).

Measured forward + backward + AdamW step on this project's CPU (2 shared cores, torch
2.13, batch 32, fp32, ``python -m core.training.configs``); see the module README notes
in the training report. ``tp-r-tiny`` is the default: 10,000 people x 10 epochs fit in
about an hour there.
"""
from __future__ import annotations

import argparse
import time

from ..models.config import OFFICIAL_CONFIGS, TransPoseConfig, normalise_name
from ..models.tfpose import TFPOSE_CONFIGS, TFPoseConfig

TRAIN_CONFIGS: dict[str, TransPoseConfig] = {
    # 96x128 input, 12x16 = 192 tokens, 24x32 heatmaps.
    "tp-r-tiny": TransPoseConfig(
        name="tp-r-tiny", backbone="resnet", input_size=(96, 128), resnet_width=32,
        resnet_blocks=(2, 2), d_model=96, dim_feedforward=192, n_heads=4, n_layers=2,
        dropout=0.0),
    # 120x160 input, 15x20 = 300 tokens, 30x40 heatmaps.
    "tp-r-small": TransPoseConfig(
        name="tp-r-small", backbone="resnet", input_size=(120, 160), resnet_width=32,
        resnet_blocks=(2, 3), d_model=128, dim_feedforward=256, n_heads=4, n_layers=3,
        dropout=0.0),
    # 144x192 input, 18x24 = 432 tokens, 36x48 heatmaps (for a GPU).
    "tp-r-base": TransPoseConfig(
        name="tp-r-base", backbone="resnet", input_size=(144, 192), resnet_width=48,
        resnet_blocks=(3, 4), d_model=192, dim_feedforward=384, n_heads=6, n_layers=3),
    # A minimal network for tests and smoke runs.
    "tp-r-micro": TransPoseConfig(
        name="tp-r-micro", backbone="resnet", input_size=(48, 64), resnet_width=8,
        resnet_blocks=(1, 1), d_model=16, dim_feedforward=32, n_heads=2, n_layers=1,
        dropout=0.0),
}
DEFAULT_TRAIN_CONFIG = "tp-r-tiny"


def get_train_config(name: str) -> TransPoseConfig | TFPoseConfig:
    """A training config by name: ours (above), an official TransPose variant, or a TFPose
    config (core.models.tfpose.TFPOSE_CONFIGS)."""
    key = normalise_name(name)
    for table in (TRAIN_CONFIGS, OFFICIAL_CONFIGS, TFPOSE_CONFIGS):
        if key in table:
            return table[key]
    from ..errors import InputError
    raise InputError(f"unknown model config {name!r}; choose one of "
                     f"{', '.join([*TRAIN_CONFIGS, *OFFICIAL_CONFIGS, *TFPOSE_CONFIGS])}")


def measure_step(config: TransPoseConfig | TFPoseConfig, batch_size: int = 32, steps: int = 5,
                 warmup: int = 2, device: str = "cpu") -> dict[str, float]:
    """Seconds per image of one training step (forward, the architecture's loss, backward,
    AdamW), on random inputs."""
    import torch
    from ..models import build_network
    from .objectives import objective_for
    model = build_network(config).to(device).train()
    objective = objective_for(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    w, h = config.input_size
    x = torch.randn(batch_size, 3, h, w, device=device)
    hw, hh = config.heatmap_size
    y = torch.rand(batch_size, config.num_joints, hh, hw, device=device)
    wt = torch.ones(batch_size, config.num_joints, device=device)
    uv = torch.rand(batch_size, config.num_joints, 2, device=device)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = objective(model, x, y, wt, uv).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    return {"s_per_image": med / batch_size, "s_per_step": med,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="measure the training cost of configs")
    p.add_argument("names", nargs="*",
                   default=[n for n in [*TRAIN_CONFIGS, *TFPOSE_CONFIGS] if "micro" not in n])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    for name in args.names:
        cfg = get_train_config(name)
        r = measure_step(cfg, args.batch_size, args.steps, device=args.device)
        hours = r["s_per_image"] * 100_000 / 3600
        print(f"{name:12s} input {cfg.input_size[0]}x{cfg.input_size[1]}  "
              f"{r['params_m']:.2f} M params  {r['s_per_image'] * 1000:.1f} ms/image "
              f"(fwd+bwd+step, batch {args.batch_size})  100k images: {hours:.2f} h", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
