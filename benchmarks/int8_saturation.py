#!/usr/bin/env python
"""What an x86 CPU without VNNI would make of the int8 stem: its 16-bit pair sums, emulated.

Usage (from the repository root):

    .venv/bin/python benchmarks/int8_saturation.py                    # the shipped int8 stem
    .venv/bin/python benchmarks/int8_saturation.py --stem X.onnx --eval   # + public set

onnxruntime multiplies the stem's uint8 activations by its int8 weights. With VNNI each
product is summed in 32 bits; without (AVX2, AVX-512 alone) two neighbouring products along
the reduction are first summed into a saturating 16-bit integer (vpmaddubsw), so a pair
beyond +-32767 is clipped (core/cpu.py). This machine has VNNI, so the clipping is emulated
in numpy, exactly as the instruction does it, on the activations onnxruntime computes here:

1. **Per layer** (always; in-tree photos, no ../shared): every regular convolution's
   uint8 input (taken from the int8 graph) is laid out as the convolution reads it
   (kernel rows, columns, channels) and paired with its int8 weights; the share of pair
   sums that clip, and the largest change of an output this causes, in % of that output
   layer's range. Depthwise convolutions do not use the paired kernel and are left out.
   The pairs follow that layout (onnxruntime runs quantised convolutions channels-last on
   x86); another layout would pair other neighbours, at about the same rates.
2. **Public set** (``--eval``, needs ../shared): coco8-pose + coco-mini-train, ground-truth
   boxes, no flip test (as live mode runs), with the first convolution (the worst by far)
   computed in numpy, once exactly and once with the clipping; the rest of the graph runs
   in onnxruntime (here: exact). Mean OKS, AP, PCK, and the mean |change of each person's
   OKS| against the float32 stem. A lower bound: the other layers' clipping is not in it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHIPPED = ROOT / "resources/models/tp-m-s16.pth"
PHOTOS = ["tests/data/reference/astronaut.png", "tests/data/detection/basketball1.png",
          "tests/data/detection/coco128_000000000625.jpg",
          "tests/data/detection/coco128_000000000536.jpg",
          "tests/data/eval/coco-mini/train2017/000000183872.jpg"]
INT16 = (-32768, 32767)


class IntConv:
    """One quantised regular convolution of a QDQ graph: its uint8 input tensor, int8
    weights (K ordered kernel row, column, channel), and the arithmetic around them."""

    def __init__(self, node: Any, inits: dict[str, np.ndarray],
                 producer: dict[str, Any]) -> None:
        dqx, dqw = producer[node.input[0]], producer[node.input[1]]
        self.name = node.name
        self.input = dqx.input[0]
        self.x_scale, self.x_zero = float(inits[dqx.input[1]]), int(inits[dqx.input[2]])
        w = inits[dqw.input[0]].astype(np.int64)               # (Cout, Cin, kh, kw)
        self.w_scale = inits[dqw.input[1]].astype(np.float64)
        self.cout, _, self.kh, self.kw = w.shape
        self.weights = w.transpose(0, 2, 3, 1).reshape(self.cout, -1)
        attrs = {a.name: list(a.ints) for a in node.attribute}
        self.pads = attrs.get("pads") or [0, 0, 0, 0]
        self.strides = attrs.get("strides") or [1, 1]
        self.bias = np.zeros(self.cout)
        if len(node.input) > 2 and node.input[2] in producer:
            dqb = producer[node.input[2]]
            self.bias = ((inits[dqb.input[0]].astype(np.float64) - inits[dqb.input[2]])
                         * inits[dqb.input[1]].astype(np.float64))

    def columns(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """uint8 (N, C, H, W) -> (N*oh*ow, K) int64 as the convolution reads it."""
        t, l, b, r = self.pads
        x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (t, b), (l, r)),
                   constant_values=self.x_zero)
        n, _, h, w = x.shape
        sy, sx = self.strides
        oh, ow = (h - self.kh) // sy + 1, (w - self.kw) // sx + 1
        taps = [x[:, :, i:i + sy * oh:sy, j:j + sx * ow:sx]
                for i in range(self.kh) for j in range(self.kw)]
        cols = np.stack(taps, 1).transpose(0, 3, 4, 1, 2)      # (n, oh, ow, taps, C)
        return cols.reshape(n * oh * ow, -1), (n, oh, ow)

    def pair_sums(self, cols: np.ndarray) -> np.ndarray:
        """(rows, Cout, K/2): each two neighbouring products along K summed, unclipped."""
        k = cols.shape[1]
        a = np.pad(cols, ((0, 0), (0, k % 2))).reshape(len(cols), 1, -1, 2)
        w = np.pad(self.weights, ((0, 0), (0, k % 2))).reshape(1, self.cout, -1, 2)
        return (a * w).sum(axis=3)

    def accumulate(self, cols: np.ndarray, clip: bool) -> np.ndarray:
        """(rows, Cout) int64 sums of (x - zero point) * w, pairs clipped like vpmaddubsw."""
        if clip:
            acc = np.zeros((len(cols), self.cout), np.int64)
            for start in range(0, len(cols), 4096):           # bounded memory
                part = self.pair_sums(cols[start:start + 4096])
                acc[start:start + 4096] = np.clip(part, *INT16).sum(axis=2)
        else:
            acc = cols @ self.weights.T
        return acc - self.x_zero * self.weights.sum(axis=1)[None]


def load_graph(path: Path) -> tuple[Any, list[IntConv]]:
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    convs = []
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type != "Conv" or group != 1 or node.input[1] not in producer:
            continue                       # depthwise, or left in float32
        if producer[node.input[1]].op_type != "DequantizeLinear":
            continue
        convs.append(IntConv(node, inits, producer))
    return model, convs


def photo_inputs(weights: Path) -> np.ndarray:
    """The shipped model's own network inputs (crop + mirror image) of the people the
    default detector finds on the in-tree photos."""
    import cv2

    from core.detection import create_detector
    from core.pose.estimator import EstimatorConfig, TopDownEstimator
    from core.pose.preprocess import to_input_tensor
    est = TopDownEstimator.from_weights(weights, EstimatorConfig(device="cpu"), progress=False)
    detector = create_detector("auto")
    xs = []
    for photo in PHOTOS:
        image = cv2.imread(str(ROOT / photo))
        boxes = detector(image).boxes[:4]
        if len(boxes):
            xs.append(to_input_tensor(est._prepare(image, boxes).crops, mirrored=True).numpy())
    return np.concatenate(xs)


def per_layer(path: Path, inputs: np.ndarray, rows: int) -> list[dict[str, Any]]:
    import onnx
    import onnxruntime as ort
    model, convs = load_graph(path)
    wanted = {c.input for c in convs} - {o.name for o in model.graph.output}
    for name in sorted(wanted):
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.UINT8, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(names, {"x": inputs})))
    rng = np.random.default_rng(0)
    out = []
    for conv in convs:
        cols, _ = conv.columns(got[conv.input])
        cols = cols[rng.choice(len(cols), min(rows, len(cols)), replace=False)]
        sums = conv.pair_sums(cols)
        clipped = (sums < INT16[0]) | (sums > INT16[1])
        exact, held = sums.sum(axis=2), np.clip(sums, *INT16).sum(axis=2)
        moved = np.abs(exact - held) * conv.x_scale * conv.w_scale[None]
        span = np.ptp(exact * conv.x_scale * conv.w_scale[None] + conv.bias[None]) or 1.0
        out.append({"layer": conv.name, "k": int(conv.weights.shape[1]),
                    "max_abs_weight": int(np.abs(conv.weights).max()),
                    "clipped_pairs_pct": 100.0 * float(clipped.mean()),
                    "worst_move_pct_of_range": 100.0 * float(moved.max() / span)})
    return out


class FirstConvInNumpy:
    """An onnxruntime session stand-in: the graph up to the first convolution's uint8
    input, that convolution in numpy (clipped or exact), the rest from its uint8 output."""

    def __init__(self, path: Path, clip: bool) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import utils
        model, convs = load_graph(path)
        self.conv = next(c for c in convs if c.name == "/conv1/Conv")
        node = next(n for n in model.graph.node if n.name == self.conv.name)
        q = next(n for n in model.graph.node
                 if n.op_type == "QuantizeLinear" and n.input[0] == node.output[0])
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        self.y_scale, self.y_zero = float(inits[q.input[1]]), int(inits[q.input[2]])
        self.after = q.output[0]
        self.outputs = [o.name for o in model.graph.output]
        self.clip = clip
        with tempfile.TemporaryDirectory() as tmp:
            whole = Path(tmp) / "whole.onnx"
            onnx.save(onnx.shape_inference.infer_shapes(model), str(whole))
            utils.extract_model(str(whole), f"{tmp}/head.onnx", ["x"], [self.conv.input])
            utils.extract_model(str(whole), f"{tmp}/tail.onnx", [self.after], self.outputs)
            self.head = ort.InferenceSession(f"{tmp}/head.onnx",
                                             providers=["CPUExecutionProvider"])
            self.tail = ort.InferenceSession(f"{tmp}/tail.onnx",
                                             providers=["CPUExecutionProvider"])

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        c = self.conv
        cols, (n, oh, ow) = c.columns(self.head.run(None, feeds)[0])
        y = c.x_scale * c.w_scale[None] * c.accumulate(cols, self.clip) + c.bias[None]
        q = np.clip(np.round(y / self.y_scale) + self.y_zero, 0, 255).astype(np.uint8)
        q = q.reshape(n, oh, ow, c.cout).transpose(0, 3, 1, 2)
        got = dict(zip(self.outputs, self.tail.run(None, {self.after: q})))
        return [got[name] for name in names]


def public_set(path: Path, shared: Path) -> list[dict[str, Any]]:
    from core.datasets import load_keypoint_dataset
    from core.evaluation import evaluate
    from core.pose.estimator import EstimatorConfig, TopDownEstimator
    d = shared / "datasets"
    sets = [load_keypoint_dataset(str(d / "coco8-pose"), None),
            load_keypoint_dataset(str(d / "coco-mini-train/annotations/"
                                      "person_keypoints_train2017.json"),
                                  str(d / "coco-mini-train/train2017"))]
    rows, reference = [], None
    for label, clip in (("float32 stem", None), ("int8, first conv exact", False),
                        ("int8, first conv clipped as without VNNI", True)):
        config = EstimatorConfig(device="cpu", flip_test=False,
                                 stem_int8=None if clip is None else str(path))
        model = TopDownEstimator.from_weights(SHIPPED, config, progress=False)
        if clip is not None:
            stem = model.model.stem
            session = FirstConvInNumpy(path, clip)
            stem.session = session
            stem._sessions = {k: session for k in stem._sessions}
        result = evaluate(model, sets).to_dict(per_person=True)
        oks = np.array([p["oks"] for p in result["per_person"]], float)
        reference = oks if reference is None else reference
        rows.append({"model": label, "mean_oks": result["mean_oks"], "ap": result["ap"],
                     "pck": result["pck"], "mean_abs_oks_change": float(
                         np.abs(oks - reference).mean())})
    return rows


def main(argv: list[str] | None = None) -> int:
    from core.catalogue import int8_stem_path
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stem", type=Path, default=int8_stem_path(SHIPPED),
                   help="an int8 stem of the shipped weights (default: the shipped one)")
    p.add_argument("--rows", type=int, default=400,
                   help="output positions sampled per layer (400)")
    p.add_argument("--eval", action="store_true", help="also the public set (../shared)")
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = p.parse_args(argv)
    from core import cpu
    print(f"int8 stem: {args.stem}; this CPU: VNNI {cpu.has_vnni()}")
    layers = per_layer(args.stem, photo_inputs(SHIPPED), args.rows)
    print(f"\n{'layer':34s} {'K':>5s} {'max|w|':>6s} {'clipped pairs %':>16s} "
          f"{'worst move % of range':>22s}")
    for row in sorted(layers, key=lambda r: -r["clipped_pairs_pct"]):
        print(f"{row['layer']:34s} {row['k']:5d} {row['max_abs_weight']:6d} "
              f"{row['clipped_pairs_pct']:16.4f} {row['worst_move_pct_of_range']:22.2f}")
    if args.eval:
        print("\npublic set, ground-truth boxes, no flip test:")
        print(f"{'':44s} {'mean OKS':>8s} {'AP':>6s} {'PCK':>6s} {'mean |dOKS| vs float32':>23s}")
        for row in public_set(args.stem, args.shared):
            print(f"{row['model']:44s} {row['mean_oks']:8.4f} {row['ap']:6.3f} "
                  f"{row['pck']:6.3f} {row['mean_abs_oks_change']:23.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
