"""The training Dataset: person -> (input (3, H, W), target heatmaps (K, H/4, W/4), weights (K,),
joints (K, 2) in [0, 1] of the crop).

One sample, in the official TransPose/HRNet order (``render_sample``):

1. the person's box -> (center, scale) with ``box_to_center_scale`` (x1.25, pixel_std
   200, the input's aspect), exactly as at inference;
2. horizontal flip (joint pairs swapped, x -> width - 1 - x), half body, random scale and
   rotation (``transforms.sample_geometry``);
3. the crop: ``cv2.warpAffine`` with ``affine_matrix_rot`` (bilinear, black border; the
   inference crop is the same matrix with exact bilinear arithmetic), then colour
   jitter, blur and synthetic occlusion on the crop;
4. targets: a Gaussian (sigma in heatmap pixels) at each joint's sub-pixel position under
   the heatmap-sized matrix, weight = the merged label weight (human 1, teacher its
   confidence), 0 when unlabelled or off the heatmap.

Augmentation is deterministic: sample i of epoch e always draws from
``np.random.default_rng([seed, e, i])``, whichever worker loads it.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..pose.preprocess import (CROP_CONTEXTS, CropContext, black_outside, box_to_center_scale,
                               kept_fractions)
from .transforms import (NO_AUGMENT, AugmentConfig, affine_matrix_rot, apply_affine, compose,
                         flip_joints, flip_matrix, gaussian_targets, normalise, photometric,
                         sample_geometry)


HALF_BODY_BOX = 1.2      # a half-body crop's person box: its joints' box x1.2


@dataclass(eq=False)
class TrainPerson:
    """One person to train on. ``box`` is a tight person box (x, y, w, h), like a
    detector's; ``human`` the human labels (17, 3) x, y, v or None. ``joints`` (17, 2),
    ``weights`` (17,) and ``provenance`` (17,) are set by labels.label_people."""

    image_path: str
    box: np.ndarray
    human: np.ndarray | None
    source: str
    uid: str
    group: str = ""                  # people sharing a group land in the same split
    joints: np.ndarray | None = None
    weights: np.ndarray | None = None
    provenance: np.ndarray | None = None
    flags: tuple[str, ...] = ()


@dataclass
class Sample:
    crop_rgb: np.ndarray             # (H, W, 3) uint8, after photometric augmentation
    joints_input: np.ndarray         # (K, 2) joints in input pixels
    joints_heatmap: np.ndarray       # (K, 2) joints in heatmap pixels
    target: np.ndarray               # (K, h, w) float32
    target_weight: np.ndarray        # (K,) float32
    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool


def render_sample(image_bgr: np.ndarray, box: Sequence[float], joints: np.ndarray,
                  weights: np.ndarray, input_size: tuple[int, int],
                  heatmap_size: tuple[int, int], sigma: float,
                  augment: AugmentConfig = NO_AUGMENT,
                  rng: np.random.Generator | None = None,
                  context: CropContext = "image") -> Sample:
    """One training sample of one person (see the module docstring). context "box": the
    crop is black outside the person box x1.25, as inference cuts out a model trained so
    (core.pose.preprocess.black_outside). The box scales with the crop; a turned crop
    keeps the upright hull of the turned box (a leaning person's detector box); a
    half-body crop keeps its joints' box x1.2 (hands, feet and head reach past them)."""
    if context not in CROP_CONTEXTS:
        raise InputError(f"context must be one of {', '.join(CROP_CONTEXTS)}, not {context!r}")
    rng = rng or np.random.default_rng(0)
    h_img, w_img = image_bgr.shape[:2]
    center, scale = box_to_center_scale(box, input_size)
    joints = np.asarray(joints, np.float64)
    weights = np.asarray(weights, np.float32)
    flipped = augment.flip_prob > 0 and rng.random() < augment.flip_prob
    if flipped:
        joints, weights = flip_joints(joints, weights, w_img)
        center = np.array([w_img - 1 - center[0], center[1]], np.float32)
    aspect = input_size[0] / input_size[1]
    geometry = sample_geometry(rng, augment, center, scale, joints, weights, aspect)
    center, scale, rotation = geometry.center, geometry.scale, geometry.rotation
    trans = affine_matrix_rot(center, scale, input_size, rotation)
    warp = compose(trans, flip_matrix(w_img)) if flipped else trans
    crop = cv2.warpAffine(image_bgr, warp, (int(input_size[0]), int(input_size[1])),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    crop = photometric(crop, rng, augment)
    if context == "box":
        if geometry.half_body_wh is None:
            kept = np.asarray(box, np.float64)[2:]
        else:       # joints in a line have no width: at least a standing person's (0.4 h)
            hw = np.asarray(geometry.half_body_wh, np.float64)
            kept = np.maximum(hw, 0.4 * hw.max()) * HALF_BODY_BOX
        if rotation:        # a turned person's upright box: the hull of the turned box
            c, s_ = abs(math.cos(math.radians(rotation))), abs(math.sin(math.radians(rotation)))
            kept = np.array([kept[0] * c + kept[1] * s_, kept[0] * s_ + kept[1] * c])
        crop = black_outside(np.ascontiguousarray(crop), kept_fractions(kept, scale))
    hm_trans = affine_matrix_rot(center, scale, heatmap_size, rotation)
    j_hm = apply_affine(joints, hm_trans)
    target, tw = gaussian_targets(j_hm, weights, heatmap_size, sigma)
    return Sample(crop, apply_affine(joints, trans), j_hm, target, tw, center, scale,
                  rotation, flipped)


def read_bgr(path: str) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        from ..io_utils import read_image
        img = read_image(path)              # raises InputError with the reason
    return img


class PoseTrainDataset(Dataset):
    """Torch Dataset over TrainPerson records (labels already merged)."""

    def __init__(self, people: Sequence[TrainPerson], input_size: tuple[int, int],
                 sigma: float = 2.0, augment: AugmentConfig = NO_AUGMENT, seed: int = 0,
                 context: CropContext = "image") -> None:
        bad = [p.uid for p in people if p.joints is None or p.weights is None]
        if bad:
            raise InputError(f"{len(bad)} people have no merged labels (e.g. {bad[0]}); run "
                             f"labels.label_people first")
        self.people = list(people)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (self.input_size[0] // 4, self.input_size[1] // 4)
        self.sigma = float(sigma)
        self.augment = augment
        self.seed = int(seed)
        self.context = context
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Fresh augmentation per epoch (workers are re-created each epoch and copy it)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.people)

    def sample(self, index: int) -> Sample:
        p = self.people[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return render_sample(read_bgr(p.image_path), p.box, p.joints, p.weights,
                             self.input_size, self.heatmap_size, self.sigma, self.augment, rng,
                             self.context)

    def __getitem__(self, index: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input (3, H, W), target heatmaps (K, H/4, W/4), weights (K,), joints (K, 2) as
        (u, v) in [0, 1] of the crop with u = (x + 0.5) / W: TFPose's regression target)."""
        s = self.sample(index)
        uv = (s.joints_input + 0.5) / np.asarray(self.input_size, np.float64)
        uv = np.nan_to_num(uv, nan=0.5, posinf=0.5, neginf=0.5).astype(np.float32)
        return (torch.from_numpy(normalise(s.crop_rgb)), torch.from_numpy(s.target),
                torch.from_numpy(s.target_weight), torch.from_numpy(uv))


def worker_init(worker_id: int) -> None:
    """DataLoader workers: a distinct NumPy seed (augmentation itself is seeded per sample;
    torch already runs each worker on one thread)."""
    info = torch.utils.data.get_worker_info()
    np.random.seed((info.seed if info else worker_id) % 2 ** 32)


def prepare_parent_for_workers() -> None:
    """Call in the main process before forking DataLoader workers: OpenCV's thread pool
    does not survive fork (a worker touching it, even cv2.setNumThreads, can deadlock),
    so the crops run single-threaded in every process (they are small)."""
    cv2.setNumThreads(0)


def is_validation(group: str, fraction: float) -> bool:
    """Stable hash split: the same person (group) is always on the same side."""
    h = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16)
    return (h % 100_000) < fraction * 100_000


def split_people(people: Sequence[TrainPerson], val_fraction: float = 0.05,
                 min_val: int = 1) -> tuple[list[TrainPerson], list[TrainPerson]]:
    """(train, validation): a held-out slice of the TRAINING people, split by group
    (an image's people, a video frame's people) with a stable hash."""
    if val_fraction <= 0:
        return list(people), []
    train, val = [], []
    for p in people:
        (val if is_validation(p.group or p.uid, val_fraction) else train).append(p)
    if len(val) < min_val and len(people) > 2 * min_val:
        # tiny sets: take the groups with the smallest hashes
        order = sorted(people, key=lambda p: hashlib.sha1((p.group or p.uid).encode()).hexdigest())
        val = order[:min_val]
        ids = {id(p) for p in val}
        train = [p for p in people if id(p) not in ids]
    return train, val
