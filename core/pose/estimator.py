"""Top-down estimators: a callable model, image and person boxes in, keypoints out.

``TransPoseEstimator`` decodes heatmaps (DARK), ``TFPoseEstimator`` reads the regressed
coordinates; both share the cropping, batching, flip test and device handling of
``TopDownEstimator``. ``create_estimator`` picks the right one for a loaded checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import cv2
import numpy as np
import torch

from ..errors import InputError
from ..keypoints import flip_permutation
from ..models import LoadedWeights, load_weights
from ..models.tfpose import TFPose
from ..threads import pose_threads
from .attention import AttentionMaps, tokens_from_heatmap_coords
from .decoder_attention import DecoderAttention
from .orientation import turned_box_hulls
from ..types import PoseEstimate, validate_boxes  # noqa: F401 - re-exported (older imports)
from .postprocess import flip_back, heatmap_peaks, heatmap_peaks_torch, heatmap_to_image
from .preprocess import (BOX_PADDING, CROP_CONTEXTS, CropContext, CropMethod,
                         black_outside, box_to_center_scale, crop_person, kept_fractions,
                         model_crop_context, normalise_on_device, to_input_tensor)


@dataclass(frozen=True)
class EstimatorConfig:
    device: str = "auto"           # "auto" (CUDA when present), "cpu", "cuda", "cuda:1"
    precision: str = "auto"        # "auto" (see auto_precision), "fp32", "bf16", "fp16"
    flip_test: bool = True         # the official test averages with the mirrored input
    refine: str = "dark"           # "dark" (official) or "argmax" (+ quarter-pixel offset)
    batch_size: int = 32           # crops per forward pass
    color: str = "bgr"             # channel order of the images given to __call__
    fuse: bool = True              # fold BatchNorm into convs (+ channels_last): ~10% faster
    # TransPose-M's MoveNet stem on the CPU: "auto" runs it with onnxruntime when onnx and
    # onnxruntime are installed (about 1.5-2x faster here than PyTorch's eager kernels),
    # "torch" always in PyTorch, "onnxruntime" insists (an error when unavailable).
    stem_runtime: Literal["auto", "torch", "onnxruntime"] = "auto"
    # TransPose-M on the CPU: this int8 quantisation of its stem (core.models.quantize_stem;
    # the shipped tp-m-s16-int8 names resources/models/tp-m-s16.stem-int8.onnx) instead
    # of the float32 one: the stem about 2x faster, about as accurate (public set mean OKS
    # 0.5969 against 0.5973). Needs onnxruntime; on a GPU the float32 stem runs.
    stem_int8: str | None = None
    # How a person is cut out (core.pose.preprocess.crop_person): "auto" is "exact" for the
    # official architectures (their outputs match the official code's) and "opencv" for
    # TransPose-M, whose accuracy is the same either way (public set: mean OKS 0.597 both,
    # AP 0.406 / 0.405) and which saves 4-7 ms a person on a CPU.
    crop: Literal["auto", "exact", "opencv"] = "auto"
    # What the crop shows around the person box: "auto" as the model was trained (its
    # config's crop_context: "image" for the official models); "image" the whole crop from
    # the image; "box" black outside the box x1.25 (core.pose.preprocess.black_outside).
    crop_context: Literal["auto", "image", "box"] = "auto"
    # TransPose-M's onnxruntime stem with several threads: a batch of several crops (one
    # person and their mirror image already make two) runs as parallel single-threaded
    # parts, 10-20% faster on the 2-core machine than one multi-threaded call (see
    # core.models.mobilenet_fpn.OnnxRuntimeStem); False keeps one call.
    split_batches: bool = True
    # CUDA only: TransPose's forward compiled with torch.compile into one CUDA graph per
    # batch size (mode "reduce-overhead"). A small batch is bound by Python launching
    # ~hundreds of kernels; a graph launches them at once (TP-R-A3 at batch 1 on an H200:
    # 0.59 ms against 4.4 ms eager bf16). Each batch size compiles on first use (tens of
    # seconds; warm_up() does it up front), so it pays on long batch jobs.
    cuda_graphs: bool = False


def _cuda_graph_thread_state() -> None:
    """Set up CUDA graph trees' thread-local state in this (non-main) thread. PyTorch
    before 2.13 sets it up only in the thread that imported them and asserts elsewhere
    (pytorch/pytorch#123177, fixed upstream by doing what this does, lazily)."""
    if not hasattr(torch._C, "_stash_obj_in_tls") or \
            torch._C._is_key_in_tls("tree_manager_containers"):
        return
    import threading
    from collections import defaultdict

    from torch._inductor import cudagraph_trees
    local = cudagraph_trees.local
    local.tree_manager_containers = {}
    local.tree_manager_locks = defaultdict(threading.Lock)
    torch._C._stash_obj_in_tls("tree_manager_containers", local.tree_manager_containers)
    torch._C._stash_obj_in_tls("tree_manager_locks", local.tree_manager_locks)


def batch_bucket(n: int, limit: int) -> int:
    """The batch size a CUDA forward of n crops runs at: the next power of two (at most
    `limit`), so that a video whose people come and go meets only a few shapes."""
    return min(limit, 1 << max(0, n - 1).bit_length())


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but no CUDA GPU is available")
    return dev


def auto_precision(device: torch.device, model_config: Any = None) -> str:
    """What precision "auto" means: fp32 on the CPU; on CUDA bf16, except fp16 for
    TransPose-M, whose MoveNet stem (stored in fp16 by Google) drifts in bf16's 8-bit
    mantissa: on the astronaut photo its heatmaps moved by 9.0% of their peak in bf16 on an
    H200 (a confident keypoint by 11 px), against 0.3-0.6% for the official TransPose-R/H
    (benchmarks/gpu_check.py); CPU autocast gives the same picture (bf16 9.8%, fp16
    0.28%; tests/test_shipped_model.py)."""
    if device.type != "cuda":
        return "fp32"
    return "fp16" if getattr(model_config, "backbone", "") == "movenet" else "bf16"


def _autocast_dtype(precision: str, device: torch.device, model_config: Any = None
                    ) -> torch.dtype | None:
    if precision == "auto":
        precision = auto_precision(device, model_config)
    table = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in table:
        raise InputError(f"precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if device.type != "cuda" and table[precision] is not None:
        raise InputError(f"precision {precision} is only supported on a CUDA device")
    return table[precision]


@dataclass(frozen=True)
class PreparedCrops:
    """One image's people, cut out for the network."""

    boxes: np.ndarray                    # (N, 4) xywh as given (turned crops: the box in the
                                         # person's own upright frame, about its centre)
    centers: np.ndarray                  # (N, 2)
    scales: np.ndarray                   # (N, 2)
    rotations: np.ndarray | None         # (N,) degrees; None when every crop is upright
    crops: np.ndarray                    # (N, H, W, 3) uint8 RGB


class TopDownEstimator:
    """What every top-down network estimator shares: crop each person box, run the
    network in batches (with mirrored copies when flip_test is on), map back to the image.

    Call with an HxWx3 uint8 image (BGR by default, see EstimatorConfig.color) and person
    boxes (x, y, w, h); get a PoseEstimate. Subclasses implement ``_infer`` (network on a
    batch of normalised crops) and ``_finish`` (one image's people from its slice).
    """

    kind = "model"
    rotates_crops = True   # __call__ takes rotations (core.step follows turned people)
    # the crop adds this much context around every box it is given (official: x1.25)
    box_padding = BOX_PADDING

    def __init__(self, model: torch.nn.Module | LoadedWeights,
                 config: EstimatorConfig = EstimatorConfig(), weights_name: str = "") -> None:
        if isinstance(model, LoadedWeights):
            weights_name = weights_name or model.source
            model = model.model
        self.config = config
        self.device = resolve_device(config.device)
        self.model_config = model.config
        self.amp_dtype = _autocast_dtype(config.precision, self.device, model.config)
        if config.fuse:
            from ..models.fuse import fuse_for_inference
            # channels_last: on the CPU measured 10-35% faster (oneDNN); on CUDA it is the
            # form gpu_check's throughput table measured, and the uint8 crops already arrive
            # in it (normalise_on_device), so cuDNN does not convert every batch
            model = fuse_for_inference(model,
                                       channels_last=self.device.type in ("cpu", "cuda"))
        self.model = model.to(self.device).eval()
        self._use_stem_runtime(config.stem_runtime)
        self.crop_method: CropMethod = config.crop if config.crop != "auto" else (
            "opencv" if getattr(self.model_config, "backbone", "") == "movenet" else "exact")
        if config.crop_context not in ("auto", *CROP_CONTEXTS):
            raise InputError(f"crop_context must be auto, image or box, not "
                             f"{config.crop_context!r}")
        self.crop_context: CropContext = config.crop_context if config.crop_context != "auto" \
            else model_crop_context(self.model_config)
        self.weights_name = weights_name
        if self.device.type == "cpu" and not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(pose_threads())
        # On a GPU every forward runs on this estimator's own thread (shared by its
        # without_flip() twin): PyTorch keeps cuDNN's execution plans, and CUDA graphs, per
        # thread, so each new pipeline thread would plan every convolution again for every
        # batch size (on an H200 the pose stage took 43 ms a frame of the HD demo clip
        # instead of 14; docs/performance.md, GPU).
        on_gpu = self.device.type == "cuda"
        self._cuda_thread = ThreadPoolExecutor(
            1, thread_name_prefix="pose-cuda",
            initializer=_cuda_graph_thread_state if config.cuda_graphs else None) \
            if on_gpu else None
        self._pad_to_buckets = on_gpu
        self._graphed: Any = None
        if config.cuda_graphs:
            if self.device.type != "cuda":
                raise InputError("CUDA graphs (--cuda-graphs) need a CUDA device; this "
                                 f"model runs on {str(self.device)!r}")
            if isinstance(self.model, TFPose):
                raise InputError("CUDA graphs (--cuda-graphs) are for TransPose models, "
                                 "not TFPose")
            self._graphed = torch.compile(self.model, mode="reduce-overhead", dynamic=False)

    def _use_stem_runtime(self, runtime: str) -> None:
        from ..models.mobilenet_fpn import MoveNetStem, OnnxRuntimeStem, onnxruntime_available
        stem = getattr(self.model, "stem", None)
        int8 = self.config.stem_int8
        if int8 is not None and not isinstance(stem, MoveNetStem):
            raise InputError(f"{int8}: an int8 stem is for TransPose-M (a MoveNet stem), not "
                             f"{self.model_config.name}")
        if int8 is not None and runtime == "torch":
            raise InputError(f"{int8}: an int8 stem runs with onnxruntime, not with "
                             f"stem_runtime 'torch'")
        if runtime == "torch" or not isinstance(stem, MoveNetStem):
            return
        if self.device.type != "cpu":
            if runtime == "onnxruntime":
                raise InputError("stem_runtime 'onnxruntime' is for the CPU; on "
                                 f"{self.device} the stem runs in PyTorch")
            return
        if not onnxruntime_available():
            if runtime == "onnxruntime" or int8 is not None:
                raise InputError("stem_runtime 'onnxruntime' needs the onnx and onnxruntime "
                                 "packages (core dependencies: reinstall with pip install -e .)")
            return
        self.model.stem = OnnxRuntimeStem(stem, threads=torch.get_num_threads(),
                                          split_batches=self.config.split_batches, int8=int8)

    @classmethod
    def from_weights(cls, weights: str | os.PathLike, config: EstimatorConfig = EstimatorConfig(),
                     progress: bool = True) -> "TopDownEstimator":
        return create_estimator(load_weights(weights, progress=progress), config)

    @property
    def variant(self) -> str:
        return self.model_config.name

    def without_flip(self) -> "TopDownEstimator":
        """The same estimator (same network, no copy) without the flip test: half the
        network work per person, which live previews use to stay real-time."""
        if not self.config.flip_test:
            return self
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, flip_test=False)
        return other

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _batches(self, inputs: torch.Tensor | np.ndarray):
        """(batch on the device, with its mirrored copy appended when flip_test is on; the
        number of real crops in it).

        ``inputs``: normalised (N, 3, H, W) float crops, or (N, H, W, 3) uint8 RGB crops. On
        CUDA uint8 crops travel as they are (a quarter of float32's bytes) from pinned
        memory and are normalised and flipped on the GPU, and each batch is padded with
        blank crops to a `batch_bucket` size (few shapes: each is planned, or graphed,
        once); the first n of each half are the real ones. On the CPU they take the numpy
        path unpadded, so CPU results do not change."""
        bs = max(1, self.config.batch_size)
        cuda = self.device.type == "cuda"
        for i in range(0, len(inputs), bs):
            chunk = inputs[i:i + bs]
            n = len(chunk)
            if self._pad_to_buckets and batch_bucket(n, bs) > n:
                pad = (batch_bucket(n, bs) - n, *chunk.shape[1:])
                chunk = np.concatenate([chunk, np.zeros(pad, chunk.dtype)]) \
                    if isinstance(chunk, np.ndarray) else \
                    torch.cat([chunk, chunk.new_zeros(pad)])
            if isinstance(chunk, np.ndarray):
                if cuda:
                    x = normalise_on_device(torch.from_numpy(np.ascontiguousarray(chunk))
                                            .pin_memory().to(self.device, non_blocking=True))
                else:
                    # the mirror images normalised with the crops, in one array
                    yield to_input_tensor(chunk, mirrored=self.config.flip_test), n
                    continue
            else:
                x = chunk.to(self.device, non_blocking=True)
            yield (torch.cat([x, x.flip(3)]) if self.config.flip_test else x), n

    def _halves(self, out: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch's output -> (its n real crops, their mirrored copies' or None)."""
        if not self.config.flip_test:
            return out[:n], None
        half = len(out) // 2
        return out[:n], out[half:half + n]

    def _run_network(self, inputs: torch.Tensor | np.ndarray | None, explain: bool) -> Any:
        """`_infer`, on the estimator's own thread when on a GPU (see __init__)."""
        if self._cuda_thread is None:
            return self._infer(inputs, explain)
        return self._cuda_thread.submit(self._infer, inputs, explain).result()

    def warm_up(self, max_people: int = 8) -> None:
        """Run every batch size up to `max_people` crops once on blank crops, so that the
        first frames of a video do not pay for planning (or, with cuda_graphs, compiling)
        those shapes. Does nothing on the CPU."""
        if self._cuda_thread is None:
            return
        w, h = self.model_config.input_size
        sizes = sorted({batch_bucket(n, max(1, self.config.batch_size))
                        for n in range(1, max_people + 1)})
        for size in sizes:
            self._run_network(np.zeros((size, h, w, 3), np.uint8), False)

    def _infer(self, inputs: torch.Tensor | np.ndarray, explain: bool) -> Any:
        raise NotImplementedError

    def _finish(self, crops: PreparedCrops, result: Any, people: slice) -> PoseEstimate:
        raise NotImplementedError

    def _prepare(self, image: np.ndarray, boxes: Any, rotations: Any = None,
                 contexts: Any = None) -> PreparedCrops:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise InputError("image must be an HxWx3 uint8 array")
        b = validate_boxes(boxes, image.shape[:2])
        rot = None
        if rotations is not None:
            rot = np.asarray(rotations, np.float32).reshape(-1)
            if len(rot) != len(b) or not np.isfinite(rot).all():
                raise InputError(f"{len(rot)} rotations for {len(b)} boxes (one finite angle "
                                 f"in degrees per box)")
            if not rot.any():
                rot = None
        size = self.model_config.input_size
        cs = [box_to_center_scale(box, size) for box in b]
        centers = np.array([c for c, _ in cs], dtype=np.float32).reshape(-1, 2)
        scales = np.array([s for _, s in cs], dtype=np.float32).reshape(-1, 2)
        turns = rot if rot is not None else np.zeros(len(b), np.float32)
        # Crop the frame as it is and swap the channels of the small crops (bit-identical to
        # cropping an RGB copy, without copying the whole frame for every person).
        crops = np.stack([crop_person(image, c, s, size, self.crop_method, float(r))
                          for (c, s), r in zip(cs, turns)]) \
            if len(b) else np.zeros((0, size[1], size[0], 3), np.uint8)
        for crop, box, scale, context in zip(crops, b, scales,
                                             self._contexts(contexts, len(b))):
            if context == "box":
                black_outside(crop, kept_fractions(box[2:], scale))
        if self.config.color == "bgr" and len(crops):
            # OpenCV's swap as one tall image: the same bytes as numpy's crops[..., ::-1]
            # copied contiguous, 40x faster (0.02 against 0.8 ms for two crops)
            n, h, w, _ = crops.shape
            crops = cv2.cvtColor(crops.reshape(n * h, w, 3), cv2.COLOR_BGR2RGB
                                 ).reshape(n, h, w, 3)
        return PreparedCrops(b, centers, scales, rot, crops)

    def _contexts(self, contexts: Any, n: int) -> Sequence[str]:
        """Each box's crop context: the estimator's, or "image" where the caller asks for
        the whole crop (a box it does not trust to hold the whole body)."""
        if contexts is None:
            return [self.crop_context] * n
        out = [str(c) for c in contexts]
        if len(out) != n or not set(out) <= set(CROP_CONTEXTS):
            raise InputError(f"contexts: one of {', '.join(CROP_CONTEXTS)} for each of the "
                             f"{n} boxes, not {out!r}")
        return out

    def __call__(self, image: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
                 *, attention: bool = False, rotations: Sequence[float] | None = None,
                 contexts: Sequence[str] | None = None) -> PoseEstimate:
        """rotations: per box, degrees the person leans clockwise (``body_angle``); their
        crop is turned so that they stand upright in it. The returned boxes are then the
        upright image boxes around the turned crops' boxes. contexts: per box, "image" or
        "box" (EstimatorConfig.crop_context) instead of the estimator's own."""
        return self.predict_many([(image, boxes, rotations, contexts)], attention=attention)[0]

    def predict_many(self, requests: Sequence[tuple[Any, ...]], *, attention: bool = False
                     ) -> list[PoseEstimate]:
        """Several images (each with its boxes, and optionally their rotations and crop
        contexts: requests are (image, boxes), (image, boxes, rotations) or (image, boxes,
        rotations, contexts)) through the network in shared batches. attention=True adds
        the model's explanation to each PoseEstimate."""
        prepared = [self._prepare(*request) for request in requests]
        crops = np.concatenate([p.crops for p in prepared]) if prepared else None
        result = self._run_network(crops, explain=attention and len(crops) > 0)
        out, start = [], 0
        for p in prepared:
            end = start + len(p.boxes)
            est = self._finish(p, result, slice(start, end))
            if p.rotations is not None:
                est = dataclasses.replace(est, boxes=turned_box_hulls(p.boxes, p.rotations))
            out.append(est)
            start = end
        return out


class TransPoseEstimator(TopDownEstimator):
    """Top-down TransPose: heatmaps (flip-averaged), DARK decoding, encoder attention."""

    kind = "TransPose"

    @torch.inference_mode()
    def heatmaps(self, inputs: torch.Tensor | np.ndarray, attention: bool = False
                 ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Network on (N, 3, H, W) normalised crops (or (N, H, W, 3) uint8 RGB crops) ->
        flip-averaged heatmaps (float32, CPU), plus per-layer attention of the unflipped
        crops when asked."""
        heatmaps, layers = self._device_heatmaps(inputs, attention)
        return heatmaps.cpu(), layers

    def _device_heatmaps(self, inputs: torch.Tensor | np.ndarray, attention: bool
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """heatmaps(), with the maps left on the model's device."""
        outs, atts = [], []
        for x, n in self._batches(inputs):
            with self._autocast():
                if attention:
                    hm, att = self.model.forward_with_attention(x)
                    atts.append([self._halves(a, n)[0].float().cpu() for a in att])
                else:
                    net = self.model if self._graphed is None else self._graphed
                    hm = net(x)
            hm, mirrored = self._halves(hm.float(), n)
            if mirrored is not None:
                hm = (hm + flip_back(mirrored)) * 0.5
            outs.append(hm.contiguous())
        heatmaps = torch.cat(outs) if outs else torch.zeros(
            0, self.model_config.num_joints, *self.model_config.heatmap_size[::-1],
            device=self.device)
        layers = [torch.cat([a[j] for a in atts]) for j in range(len(atts[0]))] if atts else []
        return heatmaps, layers

    @torch.inference_mode()
    def _infer(self, inputs: torch.Tensor | np.ndarray, explain: bool
               ) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
        """Every crop's heatmap peaks: (N, K, 2) heatmap coords, (N, K) maxvals, attention.
        On a GPU they are found there (all people at once, heatmap_peaks_torch) and only
        the peaks come back; on the CPU with the official numpy arithmetic."""
        hm, att = self._device_heatmaps(inputs, explain)
        if hm.device.type == "cuda":
            coords, maxvals = heatmap_peaks_torch(hm, self.config.refine)
            return coords.cpu().numpy(), maxvals.cpu().numpy(), att
        coords, maxvals = heatmap_peaks(hm.numpy(), self.config.refine)
        return coords, maxvals, att

    def _finish(self, crops: PreparedCrops,
                result: tuple[np.ndarray, np.ndarray, list[torch.Tensor]],
                people: slice) -> PoseEstimate:
        coords_hm, scores = result[0][people], result[1][people]
        att = [a[people] for a in result[2]]
        centers, scales = crops.centers, crops.scales
        coords = heatmap_to_image(coords_hm, centers, scales, self.model_config.heatmap_size,
                                  crops.rotations)
        maps = None
        if att:
            size = self.model_config.input_size
            maps = AttentionMaps(
                weights=torch.stack(att).numpy(), grid_hw=self.model_config.feature_hw,
                input_size=size, centers=centers, scales=scales, rotations=crops.rotations,
                keypoint_tokens=tokens_from_heatmap_coords(coords_hm, self.model_config.feature_hw,
                                                           size))
        if self.model_config.output == "softmax":
            # The score is the heatmap's peak. Softmax models scale their maps by
            # 2*pi*sigma^2 so that a target-shaped peak is 1, and a head sharper than its
            # target peaks above it (37-50% of the shipped model's face keypoints on the
            # Sports2D clip, up to 1.39); the outputs promise a confidence in 0..1. The
            # official models keep the official maxvals (trained weights stay near 1).
            scores = np.minimum(scores, 1.0)
        return PoseEstimate(boxes=crops.boxes, keypoints=coords.astype(np.float32),
                            scores=scores.astype(np.float32), attention=maps)


class TFPoseEstimator(TopDownEstimator):
    """Top-down TFPose: regressed coordinates and the score head, flip-averaged; the
    explanation is the decoder's attention (core.pose.decoder_attention)."""

    kind = "TFPose"

    @torch.inference_mode()
    def _infer(self, inputs: torch.Tensor | np.ndarray, explain: bool) -> dict[str, np.ndarray]:
        k = self.model_config.num_joints
        perm = flip_permutation(k)
        coords, scores, joint_w, points, weights = [], [], [], [], []
        for x, n in self._batches(inputs):
            with self._autocast():
                out = self.model.run(x, explain=explain)
            c, cm = self._halves(out.coords[-1].float(), n)
            s, sm = self._halves(out.scores.float(), n)
            if cm is not None:             # mirror back: u -> 1 - u, left <-> right
                cf = cm[:, perm]
                cf = torch.stack([1 - cf[..., 0], cf[..., 1]], -1)
                c, s = (c + cf) * 0.5, (s + sm[:, perm]) * 0.5
            coords.append(c.cpu())
            scores.append(s.cpu())
            if explain:
                joint_w.append(torch.stack([a[:n].float() for a in out.joint_attention]).cpu())
                points.append(torch.stack([p.locations[:n].float() for p in out.sampling]).cpu())
                weights.append(torch.stack([p.weights[:n].float() for p in out.sampling]).cpu())
        if not coords:
            return {"coords": np.zeros((0, k, 2), np.float32),
                    "scores": np.zeros((0, k), np.float32)}
        result = {"coords": torch.cat(coords).numpy(), "scores": torch.cat(scores).numpy()}
        if explain:
            result["joint_weights"] = torch.cat(joint_w, 1).numpy()
            result["sample_points"] = torch.cat(points, 1).numpy()
            result["sample_weights"] = torch.cat(weights, 1).numpy()
        return result

    def _to_image(self, uv: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                  rotations: np.ndarray | None = None) -> np.ndarray:
        """(u, v) in [0, 1] of each person's crop, shape (N, ..., 2) -> image pixels."""
        w, h = self.model_config.input_size
        px = uv.astype(np.float64) * (w, h) - 0.5            # input pixels, centres at integers
        if px.size == 0:
            return px
        flat = px.reshape(len(px), -1, 2)
        return heatmap_to_image(flat, centers, scales, (w, h), rotations).reshape(px.shape)

    def _finish(self, crops: PreparedCrops, result: dict[str, np.ndarray], people: slice
                ) -> PoseEstimate:
        coords = self._to_image(result["coords"][people], crops.centers, crops.scales,
                                crops.rotations)
        explanation = None
        if "joint_weights" in result:
            # sampling locations (layers, N, K, heads, levels, points, 2) -> image pixels
            pts = np.stack([self._to_image(p, crops.centers, crops.scales, crops.rotations)
                            for p in result["sample_points"][:, people]])
            explanation = DecoderAttention(
                joint_weights=result["joint_weights"][:, people],
                sample_points=pts.astype(np.float32),
                sample_weights=result["sample_weights"][:, people])
        return PoseEstimate(boxes=crops.boxes, keypoints=coords.astype(np.float32),
                            scores=result["scores"][people].astype(np.float32),
                            attention=explanation)


def create_estimator(loaded: LoadedWeights, config: EstimatorConfig = EstimatorConfig()
                     ) -> TopDownEstimator:
    """The estimator for a loaded checkpoint: TransPose or TFPose."""
    cls = TFPoseEstimator if isinstance(loaded.model, TFPose) else TransPoseEstimator
    return cls(loaded, config)
