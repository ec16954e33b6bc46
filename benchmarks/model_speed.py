#!/usr/bin/env python
"""Forward-pass speed of our TransPose models, beside the official implementation.

Usage (from the repository root):

    .venv/bin/python benchmarks/model_speed.py                      # all five, CPU
    .venv/bin/python benchmarks/model_speed.py --variants tp-r-a3 --json out.json
    .venv/bin/python benchmarks/model_speed.py --official official  # time official too
    .venv/bin/python benchmarks/model_speed.py --device cuda --compile
    .venv/bin/python benchmarks/model_speed.py --official official --keep-freed-memory

Every model gets the deterministic reference weights (make_weights.py + keys.json, from
tests/data/reference or ../shared/reference). Forms timed:

* ``ours``: the model as built by core.models.build_model;
* ``ours-fused``: after core.models.fuse.fuse_for_inference (BatchNorm folded into convs);
* ``ours-fused-cl``: the same with ``channels_last=True`` (NHWC weights and activations);
* ``official``: the official TransPoseR/TransPoseH, built from ``--official DIR``
  (DIR/lib/models/transpose_{r,h}.py, never part of this repository). It is timed in the
  same run, interleaved with ours repeat by repeat (the order rotates every repeat), so
  machine noise hits every form alike. Without DIR the published figures from
  official_cpu_latency.md are shown instead, as a noisy baseline from another run.

Before timing, each form's heatmaps are compared with the official model's on the same
input and weights (without DIR: with the saved official heatmaps for the saved input,
when <variant>.npz is available). Tolerances: 1e-4 unfused, 1e-3 fused.

Only the forward pass is timed (time.perf_counter; on CUDA with a synchronize), in eval
mode under torch.inference_mode, with a fixed random input. Needs stdlib, torch, numpy.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.models import OFFICIAL_CONFIGS, build_model  # noqa: E402
from core.models.fuse import fuse_for_inference  # noqa: E402

REFERENCE_DIRS = (ROOT / "tests" / "data" / "reference",
                  Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared")) / "reference")
TOL = {"ours": 1e-4, "ours-fused": 1e-3, "ours-fused-cl": 1e-3}
INPUT_SHAPE = (3, 256, 192)

# ------------------------------------------------------------------ reference data


def reference_file(name: str, required: bool = True) -> Path | None:
    for base in REFERENCE_DIRS:
        if (base / name).exists():
            return base / name
    if required:
        sys.exit(f"error: {name} is in neither of {', '.join(map(str, REFERENCE_DIRS))}")
    return None


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reference_weights(variant: str) -> dict[str, torch.Tensor]:
    make_weights = _load_module("make_weights", reference_file("make_weights.py"))
    return make_weights.build_state_dict(str(reference_file(f"{variant}.keys.json")))


def published_official_latency() -> dict[tuple[str, int], dict[str, float]]:
    """The table of official_cpu_latency.md: (variant, batch) -> pass medians and mins."""
    path = reference_file("official_cpu_latency.md", required=False)
    if path is None:
        return {}
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in OFFICIAL_CONFIGS and cells[1].isdigit():
            m1, n1, m2, n2 = (float(c) for c in cells[2:6])
            rows[(cells[0], int(cells[1]))] = dict(pass1_median_ms=m1, pass1_min_ms=n1,
                                                   pass2_median_ms=m2, pass2_min_ms=n2)
    return rows

# ------------------------------------------------------------------ official model


class AttrDict(dict):
    """A dict that also allows attribute access, as the official constructors expect."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    @classmethod
    def wrap(cls, obj: Any) -> Any:
        if isinstance(obj, dict):
            return cls({k: cls.wrap(v) for k, v in obj.items()})
        return obj


def official_cfg(variant: str) -> AttrDict:
    """The MODEL section of the variant's official YAML (experiments/coco/transpose_*/)."""
    c = OFFICIAL_CONFIGS[variant]
    model: dict[str, Any] = dict(
        DIM_MODEL=c.d_model, DIM_FEEDFORWARD=c.dim_feedforward, N_HEAD=c.n_heads,
        ENCODER_LAYERS=c.n_layers, ATTENTION_ACTIVATION="relu", POS_EMBEDDING="sine",
        IMAGE_SIZE=list(c.input_size), HEATMAP_SIZE=list(c.heatmap_size),
        NUM_JOINTS=c.num_joints, INIT_WEIGHTS=False, PRETRAINED="")
    if c.backbone == "resnet":   # TP_R_256x192_d256_h1024_enc{3,4}_mh8.yaml
        model.update(NAME="transpose_r", EXTRA=dict(
            FINAL_CONV_KERNEL=1, DECONV_WITH_BIAS=False, NUM_DECONV_LAYERS=1,
            NUM_DECONV_FILTERS=[c.d_model], NUM_DECONV_KERNELS=[4], NUM_LAYERS=50))
    else:                        # TP_H_w{32,48}_256x192_stage3_1_4_d*_h*_relu_enc*_mh1.yaml
        w, nb = c.hrnet_width, c.hrnet_blocks
        model.update(NAME="transpose_h", EXTRA=dict(
            PRETRAINED_LAYERS=["conv1", "bn1", "conv2", "bn2", "layer1", "transition1",
                               "stage2", "transition2", "stage3"],
            FINAL_CONV_KERNEL=1,
            STAGE2=dict(NUM_MODULES=1, NUM_BRANCHES=2, BLOCK="BASIC", NUM_BLOCKS=[nb] * 2,
                        NUM_CHANNELS=[w, 2 * w], FUSE_METHOD="SUM"),
            STAGE3=dict(NUM_MODULES=c.hrnet_stage3_modules, NUM_BRANCHES=3, BLOCK="BASIC",
                        NUM_BLOCKS=[nb] * 3, NUM_CHANNELS=[w, 2 * w, 4 * w],
                        FUSE_METHOD="SUM")))
    return AttrDict.wrap({"MODEL": model})


def build_official(official_dir: Path, variant: str) -> nn.Module:
    kind = "r" if OFFICIAL_CONFIGS[variant].backbone == "resnet" else "h"
    path = official_dir / "lib" / "models" / f"transpose_{kind}.py"
    if not path.exists():
        sys.exit(f"error: {path} not found (--official expects the official repository root)")
    mod = _load_module(f"official_transpose_{kind}", path)
    return mod.get_pose_net(official_cfg(variant), is_train=False)

# ------------------------------------------------------------------ timing


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if self.cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3


def time_interleaved(forms: dict[str, Callable[[], Any]], warmup: int, repeats: int,
                     timer: Timer) -> dict[str, list[float]]:
    """Warm every form up, then time them in turn; the order rotates every repeat."""
    names = list(forms)
    for name in names:
        for _ in range(warmup):
            forms[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(timer(forms[name]))
    return times


def summarise(times_ms: list[float], batch: int) -> dict[str, Any]:
    med = statistics.median(times_ms)
    return dict(median_ms=med, min_ms=min(times_ms), crops_per_s=batch / (med / 1e3),
                times_ms=[round(t, 3) for t in times_ms])

# ------------------------------------------------------------------ environment


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"

# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(OFFICIAL_CONFIGS),
                   choices=list(OFFICIAL_CONFIGS), metavar="VARIANT",
                   help=f"variants to time (default: all of {', '.join(OFFICIAL_CONFIGS)})")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--repeats", type=int, default=15,
                   help="timed runs at batch 1 (default 15; batch 16 always uses 5)")
    default_official = ROOT / "official"
    p.add_argument("--official", type=Path,
                   default=default_official if default_official.is_dir() else None,
                   help="official TransPose checkout (DIR/lib/models); default: official/ "
                        "in the repository root when it exists")
    p.add_argument("--no-official", action="store_true", help="do not build the official model")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--compile", action="store_true",
                   help="cuda only: also time torch.compile(ours-fused)")
    p.add_argument("--profile", nargs="*", metavar="VARIANT", choices=list(OFFICIAL_CONFIGS),
                   help="cpu: after timing, profile our forms at batch 1 (top ops by self "
                        "CPU time) for these variants (no names: every timed variant)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="glibc: keep freed memory in the process (mallopt: no mmap below 256 "
                        "MB, no trim below 1 GB). The official encoder builds 19-38 MB "
                        "attention matrices; by default every forward pays the page faults "
                        "of fresh pages for them, more or fewer with what ran before, which "
                        "moves its batch-1 time by up to 1.6x (docs/performance.md)")
    args = p.parse_args(argv)
    if args.no_official:
        args.official = None
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available to this torch build")
    if args.compile and args.device != "cuda":
        p.error("--compile is only timed with --device cuda")
    return args


def check_outputs(variant: str, models: dict[str, nn.Module], x: torch.Tensor,
                  official: nn.Module | None, device: torch.device) -> list[dict[str, Any]]:
    """Max |heatmap difference| of each of our forms against the official model."""
    if official is not None:
        against, ref_input = "official model, same input", x
        with torch.inference_mode():
            ref = official(ref_input).float().cpu()
    else:
        npz = reference_file(f"{variant}.npz", required=False)
        if npz is None:
            print(f"  [{variant}] no official model and no {variant}.npz: the fused model is "
                  f"checked against the unfused one only")
            checks = []
            with torch.inference_mode():
                ref = models["ours"](x).float().cpu()
                for name in ("ours-fused", "ours-fused-cl"):
                    out = models[name](x).float().cpu()
                    checks.append(dict(variant=variant, form=name, against="ours",
                                       max_abs_diff=float((out - ref).abs().max()),
                                       tol=TOL[name]))
            return checks
        against = f"saved official heatmaps ({npz.name}) on the saved input"
        with np.load(npz) as z:
            ref = torch.from_numpy(z["heatmaps"])
        with np.load(reference_file("input.npz")) as z:
            ref_input = torch.from_numpy(z["input"]).to(device)
    checks = []
    for name in ("ours", "ours-fused", "ours-fused-cl"):
        with torch.inference_mode():
            out = models[name](ref_input).float().cpu()
        checks.append(dict(variant=variant, form=name, against=against,
                           max_abs_diff=float((out - ref).abs().max()), tol=TOL[name]))
    return checks


def profile_batch1(variant: str, forms: dict[str, Callable[[], Any]], rows: int = 12
                   ) -> dict[str, list[dict[str, Any]]]:
    from torch.profiler import ProfilerActivity, profile
    out = {}
    for name in ("ours", "ours-fused", "ours-fused-cl"):
        fn = forms[name]
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                fn()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        top = [dict(op=e.key, self_cpu_ms_per_run=e.self_cpu_time_total / 1e3 / 3,
                    share=e.self_cpu_time_total / total, calls_per_run=e.count // 3)
               for e in events[:rows]]
        out[name] = top
        print(f"\n  profile {variant} {name} batch 1 (self CPU time per forward, 3 runs):")
        for t in top:
            print(f"    {t['op']:<52} {t['self_cpu_ms_per_run']:8.2f} ms {t['share']:6.1%}"
                  f"  x{t['calls_per_run']}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from app.memory import keep_freed_memory        # glibc's mallopt (no Qt import)
    if args.keep_freed_memory and not keep_freed_memory():
        print("--keep-freed-memory: no glibc mallopt here; timing with the default allocator",
              file=sys.stderr)
        args.keep_freed_memory = False
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        # Exact fp32 for the fp32 forms (cuDNN would otherwise use TF32 for convolutions).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    timer = Timer(device)

    meta = dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=cpu_model(),
                device=torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                python=platform.python_version(), load_average=load_average(),
                started=datetime.datetime.now().isoformat(timespec="seconds"),
                official=str(args.official) if args.official else None,
                keep_freed_memory=args.keep_freed_memory)
    print(f"torch {meta['torch']}, {meta['threads']} threads, CPU: {meta['cpu']}, "
          f"device: {meta['device']}, load average {meta['load_average']}"
          + (", freed memory kept (mallopt)" if args.keep_freed_memory else ""))

    published = {} if args.official else published_official_latency()
    if args.official:
        print(f"official model: built from {args.official}, timed in this run, interleaved "
              f"with ours")
    else:
        print("official model: not available here (no --official DIR); its figures below are "
              "the published ones from official_cpu_latency.md: another run, heavy "
              "contention, noisy" if published else "official model: not available")

    if device.type == "cuda":
        plan = [(b, 3, args.repeats) if b == 1 else (b, 2, 10) for b in (1, 16, 64, 256)]
    else:
        plan = [(1, 3, args.repeats), (16, 1, 5)]

    results: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(args.seed)
    inputs = {b: torch.randn(b, *INPUT_SHAPE, generator=gen).to(device) for b, _, _ in plan}

    for variant in args.variants:
        sd = reference_weights(variant)
        ours = build_model(variant)
        ours.load_state_dict(sd, strict=True)
        ours = ours.eval().to(device)
        models: dict[str, nn.Module] = {
            "ours": ours, "ours-fused": fuse_for_inference(ours),
            "ours-fused-cl": fuse_for_inference(ours, channels_last=True)}
        official = None
        if args.official:
            official = build_official(args.official, variant)
            official.load_state_dict(sd, strict=True)
            official = official.eval().to(device)
            models["official"] = official

        for c in check_outputs(variant, models, inputs[1], official, device):
            c["ok"] = c["max_abs_diff"] < c["tol"]
            checks.append(c)
            print(f"  [{variant}] {c['form']:<10} max |heatmap diff| vs {c['against']}: "
                  f"{c['max_abs_diff']:.2e} (tol {c['tol']:.0e}) {'ok' if c['ok'] else 'FAIL'}")

        def forms_at(batch: int) -> dict[str, Callable[[], Any]]:
            x = inputs[batch]
            forms = {name: (lambda m=m: m(x)) for name, m in models.items()}
            if device.type == "cuda":
                for name in ("ours", "ours-fused", "ours-fused-cl"):
                    m = models[name]
                    forms[f"{name}-bf16"] = (
                        lambda m=m: _autocast_bf16(m, x))
                if args.compile:
                    forms["ours-fused-compiled"] = _compiled(models["ours-fused"], x)
                if batch == 1:
                    graphed = _cuda_graph(models["ours-fused"], x)
                    if graphed is not None:
                        forms["ours-fused-cudagraph"] = graphed
            return forms

        for batch, warmup, repeats in plan:
            with torch.inference_mode():
                try:
                    times = time_interleaved(forms_at(batch), warmup, repeats, timer)
                except torch.OutOfMemoryError as e:          # cuda, large batches
                    print(f"  [{variant}] batch {batch}: out of memory ({e.__class__.__name__})")
                    torch.cuda.empty_cache()
                    continue
            ref = summarise(times["official"], batch) if "official" in times else None
            pub = published.get((variant, batch))
            for form, ts in times.items():
                row = dict(variant=variant, batch=batch, form=form, **summarise(ts, batch))
                if ref is not None and form != "official":
                    row["ratio_median_vs_official"] = row["median_ms"] / ref["median_ms"]
                    row["ratio_min_vs_official"] = row["min_ms"] / ref["min_ms"]
                elif pub is not None and not form.startswith("official"):
                    # Against the other run's best median / best min (noisy; see the note).
                    row["ratio_median_vs_published"] = row["median_ms"] / min(
                        pub["pass1_median_ms"], pub["pass2_median_ms"])
                    row["ratio_min_vs_published"] = row["min_ms"] / min(
                        pub["pass1_min_ms"], pub["pass2_min_ms"])
                results.append(row)
            if pub is not None:
                results.append(dict(variant=variant, batch=batch, form="official (published)",
                                    median_ms=min(pub["pass1_median_ms"], pub["pass2_median_ms"]),
                                    min_ms=min(pub["pass1_min_ms"], pub["pass2_min_ms"]),
                                    source="official_cpu_latency.md", **pub))
            _print_rows([r for r in results if r["variant"] == variant and r["batch"] == batch])

        if (args.profile is not None and device.type == "cpu"
                and (not args.profile or variant in args.profile)):
            with torch.inference_mode():
                profiles[variant] = profile_batch1(variant, forms_at(1))
        del models, ours, official

    meta["load_average_end"] = load_average()
    _print_table(results, checks, bool(args.official))
    print(f"load average at start {meta['load_average']}, at end {meta['load_average_end']}")
    failed = [c for c in checks if not c["ok"]]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(meta=meta, results=results, checks=checks,
                                             profiles=profiles), indent=1))
        print(f"\nwrote {args.json}")
    if failed:
        print(f"\nFAILED output checks: {', '.join(c['variant'] + ' ' + c['form'] for c in failed)}")
        return 1
    return 0


# ------------------------------------------------------------------ cuda-only helpers


def _autocast_bf16(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cuda", dtype=torch.bfloat16):
        return model(x)


def _compiled(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    compiled = torch.compile(model)
    return lambda: compiled(x)


def _cuda_graph(model: nn.Module, x: torch.Tensor) -> Callable[[], Any] | None:
    """Capture one forward of `model` on a static copy of `x`; replay it. None on failure."""
    try:
        static_x = x.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                model(static_x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            model(static_x)
        return graph.replay
    except Exception as e:  # noqa: BLE001 -- optional form; report and go on
        print(f"  CUDA graph capture failed: {e}")
        return None

# ------------------------------------------------------------------ output


def _fmt_ratio(row: dict[str, Any], key: str) -> str:
    for k in (key, key.replace("official", "published")):
        if k in row:
            return f"{row[k]:.2f}x" + ("" if k == key else "*")
    return ""


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        crops = f"{r['crops_per_s']:8.2f} crops/s" if "crops_per_s" in r else ""
        print(f"  {r['variant']:<8} b{r['batch']:<4} {r['form']:<22} median {r['median_ms']:9.1f} ms"
              f"  min {r['min_ms']:9.1f} ms  {crops:<16} {_fmt_ratio(r, 'ratio_median_vs_official')}")


def _print_table(results: list[dict[str, Any]], checks: list[dict[str, Any]],
                 live_official: bool) -> None:
    diff = {(c["variant"], c["form"]): c["max_abs_diff"] for c in checks}
    head = (f"{'variant':<8} {'batch':>5} {'form':<22} {'median ms':>10} {'min ms':>9} "
            f"{'crops/s':>8} {'med/off':>8} {'min/off':>8} {'max|diff|':>9}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        crops = f"{r['crops_per_s']:8.2f}" if "crops_per_s" in r else ""
        d = diff.get((r["variant"], r["form"]))
        print(f"{r['variant']:<8} {r['batch']:>5} {r['form']:<22} {r['median_ms']:>10.1f} "
              f"{r['min_ms']:>9.1f} {crops:>8} {_fmt_ratio(r, 'ratio_median_vs_official'):>8} "
              f"{_fmt_ratio(r, 'ratio_min_vs_official'):>8} "
              f"{'' if d is None else format(d, '.1e'):>9}")
    if live_official:
        print("ratios: our time / official time in this run (below 1 = faster than official)")
    elif any("source" in r for r in results):
        print("official (published): best median / best min of the two passes in "
              "official_cpu_latency.md; ratios marked * are against those figures from "
              "another run under heavy contention: rough only")


if __name__ == "__main__":
    sys.exit(main())
