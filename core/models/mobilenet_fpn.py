"""MoveNet's feature extractor as a plain PyTorch module: MobileNetV2 (width 1.75) + FPN.

MoveNet Thunder (Google, Apache-2.0) is a CenterNet-style single-pose network whose
backbone is a MobileNetV2 with depth multiplier 1.75 and a three-level feature pyramid.
Its features already carry the pose, which makes it the only pose-pretrained stem that can
be had offline here. This module rebuilds the part TransPose needs, layer for layer, so the
weights converted from the ONNX file (``core.models.convert_movenet``) load with
``strict=True`` and give the same numbers as onnxruntime.

Conventions of the TensorFlow original, kept exactly:

* input: RGB 0..255 normalised as ``x * 0.00784302 - 1`` (the graph's float16 constant for
  1/127.5); :class:`MoveNetStem` accepts the ImageNet-normalised tensors every TransPose
  estimator makes and undoes that normalisation first;
* ``SAME`` padding: stride-2 3x3 convolutions pad one pixel at the bottom and right only
  (for even sizes); stride-1 ones pad one pixel all round;
* ReLU6 in the backbone, plain ReLU after the FPN's separable convolutions;
* FPN upsampling: bilinear x2 with half-pixel centres (``align_corners=False``).

Feature levels (``MoveNetStem.forward`` returns the one asked for, then any finer ``skips``):

| level | tap in the ONNX | channels | stride |
| --- | --- | --- | --- |
| ``fpn16`` | ``re_lu`` | 32 | 16 |
| ``fpn8`` | ``re_lu_1`` | 24 | 8 |
| ``fpn4`` | ``re_lu_2`` | 24 | 4 |
"""
from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError

FeatureLevel = Literal["fpn16", "fpn8", "fpn4"]
LEVEL_STRIDE: dict[str, int] = {"fpn16": 16, "fpn8": 8, "fpn4": 4}
LEVEL_CHANNELS: dict[str, int] = {"fpn16": 32, "fpn8": 24, "fpn4": 24}

# (expansion, output channels, stride) of expanded_conv and block_1 .. block_16, width 1.75.
INVERTED_RESIDUALS: tuple[tuple[int, int, int], ...] = (
    (1, 32, 1),
    (6, 40, 2), (6, 40, 1),
    (6, 56, 2), (6, 56, 1), (6, 56, 1),
    (6, 112, 2), (6, 112, 1), (6, 112, 1), (6, 112, 1),
    (6, 168, 1), (6, 168, 1), (6, 168, 1),
    (6, 280, 2), (6, 280, 1), (6, 280, 1),
    (6, 560, 1),
)
STEM_CHANNELS = 56
LAST_CHANNELS = 1280
# FPN laterals: the backbone block whose output joins each level (MoveNet's choice).
LATERAL_BLOCK = {"fpn16": 9, "fpn8": 5, "fpn4": 2}
MOVENET_SCALE = 0.00784302          # 1/127.5 as stored (float16) in the graph
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SameConv(nn.Conv2d):
    """3x3 convolution with TensorFlow's SAME padding (stride 2: bottom/right only)."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int = 1, bias: bool = True
                 ) -> None:
        super().__init__(cin, cout, 3, stride, padding=0 if stride == 2 else 1, groups=groups,
                         bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] == 2:
            h, w = x.shape[-2:]
            # TF SAME: total padding max(k - s, 0) for even sizes, max(k - (n % s), 0) else
            ph = max(3 - (2 if h % 2 == 0 else 1), 0)
            pw = max(3 - (2 if w % 2 == 0 else 1), 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 project, + skip."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = nn.Conv2d(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, stride, groups=hidden)
        self.project = nn.Conv2d(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class SeparableConv(nn.Module):
    """FPN smoothing: 3x3 depthwise (no bias), 1x1 pointwise (bias), ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.pointwise(self.depthwise(x)))


class MoveNetStem(nn.Module):
    """MoveNet Thunder's MobileNetV2-FPN up to one pyramid level.

    ``forward(x)`` takes ImageNet-normalised RGB (N, 3, H, W) (what TransPose estimators
    feed) and returns that level's features (N, C, H/stride, W/stride); with ``skips``
    (finer levels, e.g. ("fpn8", "fpn4")) a tuple: the level's features, then each skip's.
    H and W must be multiples of 32.
    """

    def __init__(self, level: FeatureLevel = "fpn16", skips: tuple[str, ...] = ()) -> None:
        super().__init__()
        for name in (level, *skips):
            if name not in LEVEL_STRIDE:
                raise ValueError(f"level must be one of {', '.join(LEVEL_STRIDE)}, "
                                 f"not {name!r}")
        self.level = level
        self.skips = tuple(skips)
        finest = min(LEVEL_STRIDE[n] for n in (level, *skips))
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # ImageNet-normalised -> MoveNet's input: (x * std + mean) * 255 * s - 1
        self.register_buffer("in_scale", std * 255.0 * MOVENET_SCALE, persistent=False)
        self.register_buffer("in_shift", mean * 255.0 * MOVENET_SCALE - 1.0, persistent=False)
        self.conv1 = SameConv(3, STEM_CHANNELS, 2)
        blocks, cin = [], STEM_CHANNELS
        for expansion, cout, stride in INVERTED_RESIDUALS:
            blocks.append(InvertedResidual(cin, cout, stride, expansion))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.last_conv = nn.Conv2d(cin, LAST_CHANNELS, 1)
        # FPN, top-down: stride 32 -> 16 -> 8 -> 4, stopping at the finest level asked for
        self.top = nn.Conv2d(LAST_CHANNELS, 64, 1)
        widths = {"fpn16": (64, 32), "fpn8": (32, 24), "fpn4": (24, 24)}
        lateral_in = {name: INVERTED_RESIDUALS[b][1] for name, b in LATERAL_BLOCK.items()}
        self.levels = [n for n in ("fpn16", "fpn8", "fpn4")
                       if LEVEL_STRIDE[n] >= finest]
        self.lateral = nn.ModuleDict({n: nn.Conv2d(lateral_in[n], widths[n][0], 1)
                                      for n in self.levels})
        self.smooth = nn.ModuleDict({n: SeparableConv(*widths[n]) for n in self.levels})

    @property
    def out_channels(self) -> int:
        return LEVEL_CHANNELS[self.level]

    @property
    def stride(self) -> int:
        return LEVEL_STRIDE[self.level]

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = x * self.in_scale.to(x.dtype) + self.in_shift.to(x.dtype)
        x = F.relu6(self.conv1(x))
        taps: dict[int, Tensor] = {}
        wanted = {LATERAL_BLOCK[n] for n in self.levels}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                taps[i] = x
        y = self.top(F.relu6(self.last_conv(x)))
        out: dict[str, Tensor] = {}
        for name in self.levels:
            y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            y = self.smooth[name](y + self.lateral[name](taps[LATERAL_BLOCK[name]]))
            out[name] = y
        if not self.skips:
            return out[self.level]
        return (out[self.level], *(out[n] for n in self.skips))


class OnnxRuntimeStem(nn.Module):
    """The same stem, run by onnxruntime: for CPU inference only (no gradients).

    PyTorch's eager CPU kernels are slow on MobileNet's layers here (1x1 convolutions take
    the non-oneDNN path, ReLU6 and the SAME padding are extra passes over memory): on the
    2-core machine onnxruntime runs this stem about 1.5-2x faster. The graph is an export
    of this very module (features equal to ~1e-4), cached on disk by the weights' digest so
    only the first use pays the export (a few seconds).

    With ``threads`` > 1 a batch of several crops is split into one part per crop, run by
    up to ``threads`` workers at once (data parallelism, `_run_split`): onnxruntime's own
    intra-op threads wait for each other after every layer, and on the 2-core machine two
    single-threaded calls on halves of the batch took 27 ms where one 2-thread call took
    34 ms (1 person + mirror), 143 against 161 ms for 5 people
    (``benchmarks/default_model_speed.py`` measures it in the product). A single crop keeps
    the multi-threaded session. With more threads than crops (one person and their mirror
    image on an 8-core machine) each part gets several threads, so that every core still
    works (threads // crops, the remainder to the first parts; unmeasured beyond 2 cores).
    """

    def __init__(self, stem: MoveNetStem, threads: int = 0, cache_dir: str | None = None,
                 split_batches: bool = True, int8: str | os.PathLike | None = None) -> None:
        super().__init__()
        from pathlib import Path

        from ..threads import pose_threads
        self.level, self.skips = stem.level, stem.skips
        self._out_channels, self._stride = stem.out_channels, stem.stride
        self.outputs = ["y"] + [f"skip{i}" for i in range(len(self.skips))]
        folder = Path(cache_dir) if cache_dir else _onnx_cache_dir()
        levels = "-".join((self.level, *self.skips))
        digest = stem_digest(stem.state_dict())
        path = folder / f"movenet-stem-{levels}-{digest[:16]}.onnx"
        if int8 is not None:
            path = Path(int8)       # checked against these weights once the session opens
        elif not path.is_file():
            self._export(stem, path)
        self.threads = threads or pose_threads()
        self.path = path
        try:
            self.session = self._new_session(self.threads)
        except InputError:
            if int8 is not None:
                raise
            # the cached export does not load (damaged on disk, or written by another
            # onnx/torch): made again, never trusted
            self._export(stem, path)
            self.session = self._new_session(self.threads)
        self.int8 = int8 is not None
        if self.int8:
            self._check_int8(digest)
        # data parallelism (class docstring): the parts share a session per thread count
        # (onnxruntime's run is thread-safe and releases the GIL), run by up to threads - 1
        # helpers; the calling thread runs the first part itself
        self.split_batches = split_batches and self.threads > 1
        self._sessions = {self.threads: self.session}
        self._pool = None
        for _, part_threads in self.split_plan(2):    # one person and their mirror image:
            self._session(part_threads)               # the first frame does not wait

    def _export(self, stem: MoveNetStem, path: Any) -> None:
        """This stem's float32 graph to `path` (through a temporary name)."""
        import warnings
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        export = MoveNetStem(self.level, self.skips).eval()   # type: ignore[arg-type]
        export.load_state_dict({k: v.float() for k, v in stem.state_dict().items()})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(export, torch.zeros(1, 3, 256, 192), str(tmp),
                              input_names=["x"], output_names=self.outputs,
                              dynamic_axes={"x": {0: "n", 2: "h", 3: "w"},
                                            **{o: {0: "n", 2: f"{o}h", 3: f"{o}w"}
                                               for o in self.outputs}},
                              dynamo=False)
        os.replace(tmp, path)

    def _check_int8(self, digest: str) -> None:
        """A quantised stem (core.models.quantize_stem) must come from these very weights
        and give the same outputs: one clear error naming the file otherwise."""
        from ..errors import CheckpointError
        from .quantize_stem import DIGEST_KEY
        meta = self.session.get_modelmeta().custom_metadata_map
        names = [o.name for o in self.session.get_outputs()]
        if meta.get(DIGEST_KEY) != digest or names != self.outputs:
            why = ("its outputs are " + ", ".join(names)) if names != self.outputs else \
                "it was quantised from other weights" if meta.get(DIGEST_KEY) else \
                "it has no stem digest (not written by core.models.quantize_stem)"
            raise CheckpointError(f"{self.path}: not an int8 stem of these TransPose-M "
                                  f"weights ({why}); rebuild it with python -m "
                                  f"core.models.quantize_stem")

    @property
    def out_channels(self) -> int:
        return self._out_channels

    @property
    def stride(self) -> int:
        return self._stride

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        xs = x.detach().float().contiguous().cpu().numpy()
        if self.split_batches and len(xs) > 1:
            ys = self._run_split(xs)
        else:
            ys = self.session.run(self.outputs, {"x": xs})
        out = tuple(torch.from_numpy(y).to(x.dtype) for y in ys)
        return out if self.skips else out[0]

    def split_plan(self, crops: int) -> list[tuple[int, int]]:
        """How a batch of `crops` is run: (crops, intra-op threads) per part, in order. Split,
        every crop is a part of its own; with fewer crops than threads the threads are
        shared out among them (the remainder to the first)."""
        if not self.split_batches or crops < 2:
            return [(crops, self.threads)]
        base, extra = divmod(self.threads, crops)
        return [(1, max(1, base + (i < extra))) for i in range(crops)]

    def _new_session(self, threads: int) -> Any:
        from ..onnx_session import cpu_session
        return cpu_session(self.path, threads, what="the TransPose-M stem")

    def _session(self, threads: int) -> Any:
        if threads not in self._sessions:
            self._sessions[threads] = self._new_session(threads)
        return self._sessions[threads]

    def _run_split(self, xs: np.ndarray) -> list[np.ndarray]:
        """The parts of `split_plan`, taken in turn by min(threads, parts) workers (this
        thread and helpers) until none is left. Parts of one crop, handed out as workers
        come free, keep every core busy when another thread of the pipeline (the decoder,
        the tracker) takes one for a while: with one fixed half per core, the half on the
        busy core held up the whole call while the other core waited. On the 2-core machine
        (``benchmarks/stem_parts.py``): 6 crops 75 -> 71 ms, 10 crops 132 -> 118 ms; with a
        thread beside it busy half the time, 105 -> 87 ms and 172 -> 144 ms. A crop on its
        own is also a little faster per crop than in a batch."""
        import itertools
        import threading
        from concurrent.futures import ThreadPoolExecutor, wait
        if self._pool is None:
            # joined at interpreter exit (concurrent.futures), so no call is left inside
            # onnxruntime while Python finalises
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="stem-part")
        parts, start = [], 0
        for size, threads in self.split_plan(len(xs)):
            parts.append((self._session(threads).run, xs[start:start + size]))
            start += size
        results: list[Any] = [None] * len(parts)
        turn = itertools.count()          # next() is atomic under the GIL: each part once
        failed = threading.Event()        # a part raised: the others take no new part

        def work() -> None:
            while not failed.is_set() and (k := next(turn)) < len(parts):
                run, part = parts[k]
                try:
                    results[k] = run(self.outputs, {"x": part})
                except BaseException:
                    failed.set()
                    raise

        helpers = [self._pool.submit(work) for _ in range(min(self.threads, len(parts)) - 1)]
        try:
            work()
        finally:
            wait(helpers)                 # none is left running into the next call
        for helper in helpers:
            helper.result()               # (re-raises a helper's error)
        return [np.concatenate([r[i] for r in results]) for i in range(len(self.outputs))]


def stem_digest(state_dict: dict[str, Tensor]) -> str:
    """sha256 of a stem's weights (names and float32 values): what caches of its output and
    of its ONNX export are keyed on."""
    import hashlib
    digest = hashlib.sha256()
    for k, v in sorted(state_dict.items()):
        digest.update(k.encode())
        digest.update(v.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _onnx_cache_dir():
    from .zoo import cache_dir
    return cache_dir() / "onnx"


def onnxruntime_available() -> bool:
    """onnxruntime to run the stem, and onnx for torch's exporter."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True
