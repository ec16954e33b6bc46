"""One-off conversion: MoveNet Thunder's ONNX initializers -> a MoveNetStem state_dict.

    python -m core.models.convert_movenet ../shared/models/movenet_thunder.onnx stem.pth

Reads the convolution weights of the ONNX graph (``onnx`` package, only needed here: it is
in the ``train`` and ``dev`` extras) by the TensorFlow layer names the graph keeps, and
writes them under :class:`core.models.mobilenet_fpn.MoveNetStem`'s keys. Nothing of the
ONNX file is needed at run time. ``check_against_onnxruntime`` runs both on an image and
reports the largest difference at the chosen level (the test does the same).

A file that is not MoveNet Thunder's graph (a missing or mis-shaped layer) gives one
``CheckpointError`` naming the file and the layer.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .mobilenet_fpn import LEVEL_STRIDE, FeatureLevel, MoveNetStem

_PREFIX = "center_net_mobile_net_v2fpn_feature_extractor/model_1/"
# ONNX output tensor of each FPN level (for onnxruntime comparisons)
LEVEL_TENSOR = {
    "fpn16": f"StatefulPartitionedCall/{_PREFIX}re_lu/Relu_Relu__97:0",
    "fpn8": f"StatefulPartitionedCall/{_PREFIX}re_lu_1/Relu_Relu__99:0",
    "fpn4": f"StatefulPartitionedCall/{_PREFIX}re_lu_2/Relu_Relu__101:0",
}
_FPN = {"": "fpn16", "_1": "fpn8", "_2": "fpn4"}
_LATERAL = {"conv2d_1": "fpn16", "conv2d_2": "fpn8", "conv2d_3": "fpn4"}


def _layer_key(layer: str) -> str | None:
    """TensorFlow layer path (after the feature extractor prefix) -> our parameter prefix."""
    if layer.startswith("model/"):
        name = layer.split("/")[1]
        if name == "Conv1_relu":
            return "conv1"
        if name == "out_relu":
            return "last_conv"
        if name == "expanded_conv_depthwise":
            return "blocks.0.depthwise"
        if name == "expanded_conv_project_BN":
            return "blocks.0.project"
        m = re.fullmatch(r"block_(\d+)_(expand_relu|depthwise|project_BN)", name)
        if m:
            part = {"expand_relu": "expand", "depthwise": "depthwise",
                    "project_BN": "project"}[m.group(2)]
            return f"blocks.{int(m.group(1))}.{part}"
        return None
    first = layer.split("/")[0]
    if first == "conv2d":
        return "top"
    if first in _LATERAL:
        return f"lateral.{_LATERAL[first]}"
    m = re.fullmatch(r"separable_conv2d(_\d)?", first)
    if m and (m.group(1) or "") in _FPN:
        return f"smooth.{_FPN[m.group(1) or '']}.depthwise"
    m = re.fullmatch(r"re_lu(_\d)?", first)
    if m and (m.group(1) or "") in _FPN:
        return f"smooth.{_FPN[m.group(1) or '']}.pointwise"
    return None


def read_onnx_convs(onnx_path: str | Path) -> dict[str, list[np.ndarray]]:
    """Our parameter prefix -> [weight, (bias)] for every feature-extractor Conv node."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise CheckpointError("converting MoveNet needs the 'onnx' package "
                              "(a core dependency: reinstall with pip install -e .)") from e
    path = Path(onnx_path)
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf raises many kinds for a bad file
        raise CheckpointError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: dict[str, list[np.ndarray]] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        # Depthwise convs of the backbone are renamed Conv__NNN; their ReLU6 keeps the layer.
        names = [node.name] + [c.name for c in consumers.get(node.output[0], [])]
        key = None
        for name in names:
            layer = name.split(_PREFIX, 1)[1] if _PREFIX in name else None
            if layer is not None:
                key = _layer_key(layer)
                if key is not None:
                    break
        if key is None or key in found:
            continue
        try:
            found[key] = [numpy_helper.to_array(init[i]).astype(np.float32)
                          for i in node.input[1:]]
        except KeyError:
            raise CheckpointError(f"{path}: layer {key} has weights computed in the graph, "
                                  f"not stored; is this MoveNet Thunder?") from None
    return found


def convert(onnx_path: str | Path, level: FeatureLevel = "fpn16") -> dict[str, torch.Tensor]:
    """A state_dict for ``MoveNetStem(level)`` from MoveNet Thunder's ONNX file."""
    path = Path(onnx_path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file")
    convs = read_onnx_convs(path)
    stem = MoveNetStem(level)
    expected = stem.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, ref in expected.items():
        prefix, _, kind = key.rpartition(".")
        arrays = convs.get(prefix)
        idx = {"weight": 0, "bias": 1}[kind]
        if arrays is None or len(arrays) <= idx:
            raise CheckpointError(f"{path}: no MoveNet layer for {key}; this is not MoveNet "
                                  f"Thunder's graph (MobileNetV2 1.75 + FPN)")
        value = torch.from_numpy(arrays[idx])
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: layer {key} has shape {tuple(value.shape)}, "
                                  f"expected {tuple(ref.shape)}; not MoveNet Thunder")
        out[key] = value
    return out


def onnxruntime_level(onnx_path: str | Path, image_rgb_256: np.ndarray,
                      level: FeatureLevel = "fpn16") -> np.ndarray:
    """onnxruntime's features at `level` for one 256x256 RGB uint8 image (1, C, h, w)."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(str(onnx_path))
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        LEVEL_TENSOR[level], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = image_rgb_256.astype(np.int32)[None]
    return sess.run([LEVEL_TENSOR[level]], {sess.get_inputs()[0].name: x})[0]


def check_against_onnxruntime(onnx_path: str | Path, image_rgb_256: np.ndarray,
                              level: FeatureLevel = "fpn16",
                              state_dict: dict[str, torch.Tensor] | None = None) -> float:
    """Largest absolute difference between our stem and onnxruntime at `level`."""
    from ..pose.preprocess import to_input_tensor
    stem = MoveNetStem(level).eval()
    stem.load_state_dict(state_dict or convert(onnx_path, level), strict=True)
    with torch.no_grad():
        ours = stem(to_input_tensor(image_rgb_256[None])).numpy()
    ref = onnxruntime_level(onnx_path, image_rgb_256, level)
    if ours.shape != ref.shape:
        raise AssertionError(f"shapes differ: ours {ours.shape}, onnxruntime {ref.shape}")
    return float(np.abs(ours - ref).max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("onnx", help="movenet_thunder.onnx")
    p.add_argument("out", help="where to write the stem state_dict (.pth)")
    p.add_argument("--level", default="fpn16", choices=sorted(LEVEL_STRIDE))
    p.add_argument("--check", metavar="IMAGE", help="compare with onnxruntime on this image")
    args = p.parse_args(argv)
    try:
        sd = convert(args.onnx, args.level)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    torch.save(sd, args.out)
    print(f"{len(sd)} tensors, {sum(v.numel() for v in sd.values()) / 1e6:.2f} M parameters "
          f"-> {args.out}")
    if args.check:
        import cv2
        img = cv2.cvtColor(cv2.imread(args.check), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
        print(f"max |ours - onnxruntime| at {args.level}: "
              f"{check_against_onnxruntime(args.onnx, img, args.level, sd):.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
