"""One-off: TransPose-M's MoveNet stem quantised to int8 for onnxruntime on the CPU.

    python -m core.models.quantize_stem resources/models/tp-m-s16.pth \\
        --lspet ../shared/datasets/lspet --coco128 ../shared/datasets/coco128 \\
        --out resources/models/tp-m-s16.stem-int8.onnx

Static quantisation with onnxruntime's own tool (``onnxruntime.quantization``): weights
int8 per output channel, activations uint8, QDQ format, ranges calibrated (min/max) on
real training people (400 by default: 300 LSPET, 100 coco128) cut out exactly as the estimator cuts them (``_prepare``, the
normalisation and the flip test's mirror image), never on the evaluation sets
(``guard_not_evaluation``). The stem's float32 weights' digest goes into the file's
metadata (``stem_digest``): `OnnxRuntimeStem` refuses the file for any other weights.

What it gives (2-core AMD EPYC, see resources/models/README.md and docs/performance.md):
the stem about 2.2x faster (one person and their mirror image: 24.4 -> 10.9 ms), public
set mean OKS 0.5969 against 0.5973 for the float32 stem (AP 0.407 against 0.406). The
encoder and head stay float32.

CPUs without VNNI sum two uint8 x int8 products in 16 bits first, which clips
(core/cpu.py, ``benchmarks/int8_saturation.py``); there live mode keeps the float32 stem.
``--reduce-range`` (weights in 7 bits) cannot clip, but was measured less faithful to the
float32 stem everywhere (public set without flip test: mean OKS 0.573 against 0.583, mean
|change of a person's OKS| from the float32 stem's 0.049 against 0.021), so it is not
what ships.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..catalogue import INT8_STEM_SUFFIX, int8_stem_path
from ..errors import InputError, StudioError

DIGEST_KEY = "stem_digest"


def calibration_crops(weights: str | os.PathLike, lspet: str | None, coco128: str | None,
                      people: int, seed: int = 0) -> np.ndarray:
    """(2 * people, 3, H, W) float32 network inputs: each person and their mirror image,
    cut and normalised by the estimator itself."""
    from ..pose.estimator import EstimatorConfig, TopDownEstimator
    from ..pose.preprocess import to_input_tensor
    from ..training.data import read_bgr
    from ..training.sources import coco128_people, lspet_people
    est = TopDownEstimator.from_weights(weights, EstimatorConfig(device="cpu",
                                                                 stem_runtime="torch"),
                                        progress=False)
    found = []
    if lspet:
        found += lspet_people(lspet, max_people=people if not coco128 else people * 3 // 4,
                              seed=seed)
    if coco128:
        found += coco128_people(coco128, max_people=people - len(found), seed=seed)
    if not found:
        raise InputError("no calibration people: pass --lspet and/or --coco128")
    batches = []
    for person in found:
        image = read_bgr(person.image_path)         # as training reads them
        crops = est._prepare(image, np.asarray([person.box], np.float32)).crops
        batches.append(to_input_tensor(crops, mirrored=True).numpy())
    return np.concatenate(batches)


def quantise(weights: str | os.PathLike, out: str | os.PathLike, inputs: np.ndarray,
             reduce_range: bool = False) -> Path:
    """Export the checkpoint's stem (float32), quantise it on `inputs`, write `out`
    (through a temporary name) with the stem's digest in its metadata. `reduce_range`:
    weights in 7 bits (measured and not shipped: module docstring)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .checkpoint import load_weights
    from .mobilenet_fpn import MoveNetStem, OnnxRuntimeStem, stem_digest

    stem = load_weights(weights, progress=False).model.stem
    if not isinstance(stem, MoveNetStem):
        raise InputError(f"{weights}: not a TransPose-M checkpoint (its stem is not MoveNet's)")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(inputs[i:i + 1] for i in range(len(inputs)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.batches, None)
            return None if x is None else {"x": x}

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = OnnxRuntimeStem(stem, threads=1, cache_dir=tmp).path
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        q = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=reduce_range,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)     # min/max ranges (the default)
        model = onnx.load(str(q))
        onnx.helper.set_model_props(model, {DIGEST_KEY: stem_digest(stem.state_dict()),
                                            "what": "TransPose-M MoveNet stem, int8 (QDQ)"})
        part = out.with_name(out.name + ".part")
        onnx.save(model, str(part))
        os.replace(part, out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", help="a TransPose-M checkpoint (.pth)")
    p.add_argument("--lspet", help="LSPET folder (calibration people)")
    p.add_argument("--coco128", help="coco128 folder (calibration people)")
    p.add_argument("--people", type=int, default=400, help="calibration people (400)")
    p.add_argument("--reduce-range", action="store_true",
                   help="weights in 7 bits (no 16-bit overflow without VNNI; less accurate)")
    p.add_argument("--out", help="the int8 .onnx (default: beside the weights, "
                   f"<name>{INT8_STEM_SUFFIX})")
    args = p.parse_args(argv)
    try:
        inputs = calibration_crops(args.weights, args.lspet, args.coco128, args.people)
        out = quantise(args.weights, args.out or int8_stem_path(args.weights), inputs,
                       reduce_range=args.reduce_range)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), calibrated on {len(inputs)} crops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
