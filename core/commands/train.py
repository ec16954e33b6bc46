"""`main.py train`: train our own TransPose weights by distillation from teacher models.

    main.py train --out runs/tiny --lspet ../shared/datasets/lspet \\
        --teacher movenet:../shared/models/movenet_thunder.onnx --epochs 10

People come from LSPET (human limb labels, teacher fills the face and unlabelled joints),
coco128 person boxes and footage (teacher only), and COCO keypoint JSON files (human
labels, teacher fills). The public evaluation set (coco8-pose, coco-mini-train) is
refused. The result, OUT/model.pth, loads anywhere weights are accepted
(``main.py predict IMAGE --weights OUT/model.pth``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from ..errors import InputError
from ..io_utils import log
from .. import catalogue


class _PairAction(argparse.Action):
    """--coco-json FILE [--coco-images DIR]: pairs them in order."""

    def __call__(self, parser, namespace, values, option_string=None):
        pairs = list(getattr(namespace, "coco", None) or [])
        if option_string == "--coco-json":
            pairs.append([values, None])
        else:
            if not pairs or pairs[-1][1] is not None:
                parser.error("--coco-images must follow the --coco-json it belongs to")
            pairs[-1][1] = values
        namespace.coco = pairs


# The configurations live beside their torch modules; the parser is built for every
# command (main.py --help, annotate with MediaPipe), so it names none of them but this one.
# (tests/test_models_command.py checks it is core.training.configs.DEFAULT_TRAIN_CONFIG.)
HELP_DEFAULT_CONFIG = "tp-r-tiny"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: model.pth (the exported model), best.pth, last.pth, "
                   "last.ckpt (resume state), history.json, run.json, labels.json")
    p.add_argument("--config", metavar="NAME",
                   help="model configuration: a TransPose or TFPose configuration to train "
                   "(main.py models lists them) or an official variant (tp-r-a3 ...); "
                   f"default {HELP_DEFAULT_CONFIG}")
    p.add_argument("--init", metavar="WEIGHTS.pth",
                   help="start from these weights (fine-tuning, or a second schedule after a "
                   "finished run) instead of from scratch; the model takes the file's "
                   "configuration, so --config is not needed")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.5, metavar="EPOCHS",
                   help="linear warmup length in epochs (then cosine decay)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast on CUDA, fp32 on the CPU")
    p.add_argument("--teacher", default="movenet",
                   help="blazepose, movenet[:PATH] (MoveNet Thunder ONNX; default: the shared "
                   "movenet_thunder.onnx), both[:PATH] (both, per keypoint by confidence) or "
                   "none (human labels only)")
    p.add_argument("--lspet", metavar="DIR", help="LSPET folder (person_keypoints_lspet.json)")
    p.add_argument("--coco128", metavar="DIR",
                   help="coco128 folder: person boxes, teacher labels (coco8-pose ids excluded)")
    p.add_argument("--frames", nargs="+", action="extend", metavar="DIR_OR_VIDEO", default=[],
                   help="videos, images or folders: sampled frames, people found by --detector, "
                   "teacher labels")
    p.add_argument("--coco-json", action=_PairAction, metavar="FILE", dest="coco_json_",
                   help="COCO keypoint JSON of training people (repeatable)")
    p.add_argument("--coco-images", action=_PairAction, metavar="DIR", dest="coco_images_",
                   help="the images folder of the preceding --coco-json")
    p.add_argument("--max-people", type=int, default=0, metavar="N",
                   help="at most N people from each source (a seeded random subset)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=-1,
                   help="data loader processes (default: min(4, CPUs - 1))")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: CPUs - workers)")
    p.add_argument("--val-fraction", type=float, default=0.05,
                   help="held-out share of the training people for validation")
    p.add_argument("--floor", type=float, default=0.3,
                   help="teacher confidence below which a keypoint gets no weight")
    p.add_argument("--swap-policy", choices=("swap", "drop", "keep"), default="swap",
                   help="human labels whose whole-body left/right disagrees with a confident "
                   "teacher: swap their sides (default), drop them, or keep them")
    p.add_argument("--label-cache", metavar="DIR",
                   help="teacher label cache (default: ~/.cache/transpose-studio/teacher-labels)")
    p.add_argument("--detector", default="auto",
                   help="--frames: " + catalogue.help_text("detector"))
    p.add_argument("--every", type=float, default=1.0, metavar="SECONDS",
                   help="--frames: one video frame every SECONDS")
    p.add_argument("--max-frames", type=int, default=100, help="--frames: at most this many "
                   "frames per video")
    p.add_argument("--sigma", type=float, default=0.0,
                   help="target Gaussian sigma in heatmap pixels (default: 2 at 64 rows, scaled)")
    p.add_argument("--max-steps", type=int, default=0, help="cap on steps per epoch (smoke runs)")
    p.add_argument("--stem", metavar="MOVENET.onnx",
                   help="TransPose-M (--config tp-m-s16): MoveNet Thunder's ONNX file whose "
                   "feature extractor becomes the frozen stem (default: the shared "
                   "movenet_thunder.onnx)")
    p.add_argument("--views", type=int, default=3,
                   help="TransPose-M: cached views per person (plain, mirrored, then "
                   "augmented)")
    p.add_argument("--feature-cache", metavar="DIR",
                   help="TransPose-M: where the stem features are cached (default OUT/features)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def gather_people(args: argparse.Namespace, cache_root: Path) -> dict[str, list]:
    from ..training import sources
    n = args.max_people or None
    found: dict[str, list] = {}
    if args.lspet:
        found["lspet"] = sources.lspet_people(args.lspet, max_people=n, seed=args.seed)
    if args.coco128:
        found["coco128"] = sources.coco128_people(args.coco128, max_people=n, seed=args.seed)
    for json_path, images in getattr(args, "coco", None) or []:
        ppl = sources.coco_json_people(json_path, images, max_people=n, seed=args.seed)
        found[f"coco-json:{Path(json_path).name}"] = ppl
    if args.frames:
        ppl = sources.frame_people(args.frames, cache_root / "frames", detector=args.detector,
                                   every_s=args.every, max_frames=args.max_frames, log=log)
        found["frames"] = sources._subset(ppl, n, args.seed)
    return found


@contextlib.contextmanager
def _resume_hint(out: Path):
    """On Ctrl-C, say how to continue from the last finished epoch."""
    try:
        yield
    except KeyboardInterrupt:
        if (out / "last.ckpt").is_file():
            log(f"interrupted: {out / 'last.ckpt'} holds the last finished epoch; continue "
                f"with the same command and --resume")
        raise


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from ..training import labels as L
    from ..training.configs import DEFAULT_TRAIN_CONFIG
    from ..training.trainer import TrainConfig, train

    from ..training.distill import DISTILL_CONFIGS
    from ..models.config import normalise_name
    distilling = normalise_name(args.config or DEFAULT_TRAIN_CONFIG) in DISTILL_CONFIGS
    if args.init:
        from ..models import load_weights
        init_cfg = load_weights(args.init).config        # a bad file fails before labelling
        if distilling:
            # TransPose-M: a warm start of the encoder (and matching head layers) from a
            # TransPose-M file into --config, whose head may differ (e.g. with skips)
            if init_cfg.backbone != "movenet":
                raise InputError(f"--init {args.init} holds a {init_cfg.name} model; "
                                 f"--config {args.config} starts only from a TransPose-M")
        elif args.config not in (None, init_cfg.name):
            raise InputError(f"--init {args.init} holds a {init_cfg.name} model; drop "
                             f"--config {args.config} (the file's configuration is used)")
        else:
            args.config = init_cfg.name
    args.config = args.config or DEFAULT_TRAIN_CONFIG
    if not (args.lspet or args.coco128 or args.frames or getattr(args, "coco", None)):
        raise InputError("no training data: pass --lspet DIR, --coco128 DIR, --frames "
                         "VIDEO_OR_DIR... and/or --coco-json FILE --coco-images DIR")
    kind, _ = L.parse_teacher_spec(args.teacher)
    needs_teacher = bool(args.coco128 or args.frames)
    if kind == "none" and needs_teacher:
        raise InputError("--coco128 and --frames have no human keypoints: they need a teacher "
                         "(--teacher movenet:PATH, blazepose or both:PATH)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_root = Path(args.label_cache) if args.label_cache else L.default_cache_dir()

    t0 = time.perf_counter()
    found = gather_people(args, cache_root.parent if not args.label_cache else cache_root)
    for name, ppl in found.items():
        log(f"{name}: {len(ppl)} people")
    teachers = L.create_teachers(args.teacher)
    labeller = L.TeacherLabeller(teachers, L.LabelCache(cache_root), floor=args.floor) \
        if teachers else None
    if labeller:
        log(f"teacher: {labeller.name} (cache {cache_root})")
    people, stats = [], {}
    per_box = max(1, len(teachers))
    total = sum(len(p) for p in found.values())
    done = 0
    with tqdm(total=total * per_box, desc="teacher labels", unit="box", file=sys.stderr,
              disable=args.no_progress or labeller is None) as bar:
        for name, ppl in found.items():
            kept, st = L.label_people(ppl, labeller, floor=args.floor,
                                      swap_policy=args.swap_policy, progress=bar.update)
            done += len(ppl)
            bar.n = done * per_box           # the cached ones count as done too
            bar.refresh()
            people += kept
            stats[name] = st
    for name, st in stats.items():
        side = f", {st.flagged} of {st.compared} compared flagged as left/right-swapped " \
               f"({args.swap_policy})" if st.with_human and labeller else ""
        log(f"{name}: {len(found[name]) - st.dropped_few_joints} people kept "
            f"({st.dropped_few_joints} with under 4 weighted joints dropped); joints from "
            f"people {st.human_joints}, from the teacher {st.teacher_joints}; teacher ran on "
            f"{st.teacher_labelled} boxes, {st.teacher_cached} from the cache{side}")
    label_report = {"teacher": labeller.name if labeller else "none", "floor": args.floor,
                    "swap_policy": args.swap_policy,
                    "sources": {k: v.to_dict() for k, v in stats.items()},
                    "seconds": round(time.perf_counter() - t0, 1)}
    (out / "labels.json").write_text(json.dumps(label_report, indent=2) + "\n")
    del labeller, teachers                      # free the teacher runtimes before forking

    from ..training.distill import DistillConfig, distill
    if distilling:
        dconfig = DistillConfig(
            out=str(out), model=args.config, stem=args.stem or "", views=args.views,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, warmup_epochs=args.warmup, seed=args.seed,
            threads=args.threads, val_fraction=args.val_fraction, resume=args.resume,
            cache_dir=args.feature_cache or "", max_steps_per_epoch=args.max_steps,
            progress=not args.no_progress, init=args.init or "")
        run_info = {"teacher": label_report["teacher"], "command": sys.argv,
                    "data": {name: st.people - st.dropped_few_joints
                             for name, st in stats.items()}}
        with _resume_hint(out):
            result = distill(dconfig, people, log=log, run_info=run_info)
        print(result.model_path)
        return 0

    config = TrainConfig(
        out=str(out), model=args.config, init=args.init or "", epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup,
        device=args.device, precision=args.precision, seed=args.seed, workers=args.workers,
        threads=args.threads, val_fraction=args.val_fraction, resume=args.resume,
        max_steps_per_epoch=args.max_steps, progress=not args.no_progress, sigma=args.sigma)
    data = {name: st.people - st.dropped_few_joints for name, st in stats.items()}
    run_info = {"teacher": label_report["teacher"], "data": data,
                "labels": {k: {kk: vv for kk, vv in v.to_dict().items() if kk != "flagged_ids"}
                           for k, v in stats.items()},
                "command": sys.argv}
    with _resume_hint(out):
        result = train(config, people, log=log, run_info=run_info)
    log(f"wrote {result.model_path} (best validation loss "
        f"{result.best_val_loss if result.best_val_loss is not None else 'n/a'}); "
        f"history in {out / 'history.json'}")
    print(result.model_path)
    return 0
