"""Training-time geometry and augmentation, in the inference pipeline's conventions.

Everything here extends ``core.pose.preprocess`` without changing it:

* ``affine_matrix_rot(center, scale, output_size, rotation)`` is ``affine_matrix`` with
  the official rotation (the source direction turned by ``rotation`` degrees, as the
  official ``get_affine_transform`` does) on top of the unbiased pixel-centre convention
  (``(src_w - 1) * -0.5`` and the output's pixel centre ``((W-1)/2, (H-1)/2)``). With
  rotation 0 it returns exactly ``affine_matrix``'s matrix.
* A horizontal flip is the image mirror ``x -> width - 1 - x`` (pixel centres at integer
  coordinates), composed into the same matrix instead of flipping the whole image, with
  the joint pairs of ``core.keypoints.COCO_FLIP_PAIRS`` swapped.
* Target heatmaps are Gaussians centred on the sub-pixel joint position given by the
  heatmap-sized matrix ``affine_matrix_rot(center, scale, heatmap_size, rotation)``: the
  same mapping ``decode_heatmaps`` inverts at inference, so a perfect network decodes to
  the labelled joint exactly (no rounding of the centre to a heatmap pixel).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..keypoints import flip_permutation
from ..pose.preprocess import IMAGENET_MEAN, IMAGENET_STD, PIXEL_STD, affine_matrix

UPPER_BODY = tuple(range(0, 11))      # nose .. wrists
LOWER_BODY = tuple(range(11, 17))     # hips .. ankles


def affine_matrix_rot(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int],
                      rotation: float = 0.0, inverse: bool = False) -> np.ndarray:
    """core.pose.preprocess.affine_matrix with the official rotation (degrees)."""
    return affine_matrix(center, scale, output_size, inverse=inverse, rotation=rotation)


def flip_matrix(width: int) -> np.ndarray:
    """3x3 homogeneous mirror of an image `width` pixels wide: x -> width - 1 - x."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 matrix of `a` after `b` (b: 2x3 or 3x3)."""
    b3 = b if b.shape == (3, 3) else np.vstack([b, [0.0, 0.0, 1.0]])
    return (np.vstack([a, [0.0, 0.0, 1.0]]) @ b3)[:2]


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(K, 2) points through a 2x3 matrix (float64)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ matrix[:, :2].T + matrix[:, 2]


def flip_joints(joints: np.ndarray, weights: np.ndarray, width: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (K, 2) joints in an image `width` wide and swap the left/right pairs."""
    perm = flip_permutation(len(joints))
    j = np.asarray(joints, dtype=np.float64)[perm].copy()
    j[:, 0] = width - 1 - j[:, 0]
    return j, np.asarray(weights)[perm].copy()


def gaussian_targets(joints_hm: np.ndarray, weights: np.ndarray, heatmap_size: tuple[int, int],
                     sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) joints in heatmap pixels -> (K, H, W) float32 Gaussians (peak 1 at the
    sub-pixel joint) and (K,) float32 target weights (0 where the joint is unlabelled or
    lies off the heatmap)."""
    w, h = heatmap_size
    k = len(joints_hm)
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    tw = np.asarray(weights, dtype=np.float32).copy()
    jx = joints_hm[:, 0].astype(np.float32)
    jy = joints_hm[:, 1].astype(np.float32)
    inside = (jx >= -0.5) & (jx <= w - 0.5) & (jy >= -0.5) & (jy <= h - 0.5)
    tw[~inside | ~np.isfinite(jx) | ~np.isfinite(jy)] = 0.0
    target = np.zeros((k, h, w), np.float32)
    on = tw > 0
    if on.any():
        inv = np.float32(-0.5 / (sigma * sigma))
        gx = np.exp(inv * (xs[None, :] - jx[on, None]) ** 2)          # (n, W)
        gy = np.exp(inv * (ys[None, :] - jy[on, None]) ** 2)          # (n, H)
        target[on] = gy[:, :, None] * gx[:, None, :]
    return target, tw


def half_body_box(joints: np.ndarray, weights: np.ndarray, aspect: float, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The official half-body transform: centre and scale of the upper or the lower body's
    visible joints (x1.5), and the (w, h) of those joints; None when the chosen half has
    fewer than 2 joints."""
    vis = np.asarray(weights) > 0
    upper = [j for j in UPPER_BODY if vis[j]]
    lower = [j for j in LOWER_BODY if vis[j]]
    if rng.random() < 0.5 and len(upper) > 2:
        sel = upper
    else:
        sel = lower if len(lower) > 2 else upper
    if len(sel) < 2:
        return None
    pts = np.asarray(joints, dtype=np.float32)[sel]
    center = pts.mean(axis=0)
    lt, rb = pts.min(axis=0), pts.max(axis=0)
    w, h = float(rb[0] - lt[0]), float(rb[1] - lt[1])
    extent = np.array([w, h], np.float32)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], np.float32) * np.float32(1.5)
    return center.astype(np.float32), scale, extent


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; the geometric part follows the official TransPose/HRNet
    training (scale, rotation, flip, half body), the photometric part is ours."""

    scale_factor: float = 0.35       # scale *= clip(1 + N(0,1) * f, 1 - f, 1 + f)
    rotation_factor: float = 45.0    # degrees: clip(N(0,1) * f, -f, f) with rotation_prob
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8    # only people with more visible joints than this
    shift_factor: float = 0.0        # centre shift, a fraction of the box size (0: none)
    color_prob: float = 0.8          # brightness, contrast, saturation jitter
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    grayscale_prob: float = 0.05
    blur_prob: float = 0.15          # Gaussian blur, sigma in blur_sigma
    blur_sigma: tuple[float, float] = (0.4, 1.5)
    occlusion_prob: float = 0.5      # 1..occlusion_max rectangles of noise, a colour or a patch
    occlusion_max: int = 2
    occlusion_area: tuple[float, float] = (0.02, 0.12)   # fraction of the crop, each


NO_AUGMENT = AugmentConfig(scale_factor=0.0, rotation_factor=0.0, rotation_prob=0.0,
                           flip_prob=0.0, half_body_prob=0.0, color_prob=0.0,
                           grayscale_prob=0.0, blur_prob=0.0, occlusion_prob=0.0)


@dataclass(frozen=True)
class Geometry:
    """A sampled crop: centre, scale and rotation as the crop takes them; `half_body_wh`
    the (w, h) of the chosen half's joints when the half-body transform was used."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    half_body_wh: np.ndarray | None = None


def sample_geometry(rng: np.random.Generator, cfg: AugmentConfig, center: np.ndarray,
                    scale: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                    aspect: float) -> Geometry:
    """Random (center, scale, rotation) in the official order: half body, scale, rotation."""
    center = np.asarray(center, np.float32).copy()
    scale = np.asarray(scale, np.float32).copy()
    half_wh = None
    if cfg.half_body_prob > 0 and int((np.asarray(weights) > 0).sum()) > cfg.half_body_min_joints \
            and rng.random() < cfg.half_body_prob:
        hb = half_body_box(joints, weights, aspect, rng)
        if hb is not None:
            center, scale, half_wh = hb
    if cfg.shift_factor > 0:
        center = center + (rng.uniform(-1, 1, 2) * cfg.shift_factor * scale * PIXEL_STD / 1.25
                           ).astype(np.float32)
    if cfg.scale_factor > 0:
        f = cfg.scale_factor
        scale = scale * np.float32(np.clip(rng.standard_normal() * f + 1, 1 - f, 1 + f))
    rotation = 0.0
    if cfg.rotation_factor > 0 and rng.random() < cfg.rotation_prob:
        r = cfg.rotation_factor
        rotation = float(np.clip(rng.standard_normal() * r, -r, r))
    return Geometry(center, scale, rotation, half_wh)


def photometric(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter, grey, blur and synthetic occlusion of an RGB uint8 crop."""
    out = crop
    if cfg.color_prob > 0 and rng.random() < cfg.color_prob:
        x = out.astype(np.float32)
        b = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
        c = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
        s = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = grey[..., None] + (x - grey[..., None]) * s            # saturation
        x = (x - grey.mean()) * c + grey.mean()                    # contrast
        x = x * b                                                  # brightness
        out = np.clip(x, 0, 255).astype(np.uint8)
    if cfg.grayscale_prob > 0 and rng.random() < cfg.grayscale_prob:
        g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = np.repeat(g[..., None], 3, axis=2)
    if cfg.blur_prob > 0 and rng.random() < cfg.blur_prob:
        sigma = rng.uniform(*cfg.blur_sigma)
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if cfg.occlusion_prob > 0 and rng.random() < cfg.occlusion_prob:
        out = occlude(out, rng, cfg)
    return out


def occlude(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Paste 1..occlusion_max random rectangles: noise, a flat colour, or a patch of the
    crop itself from elsewhere (a limb-like distractor)."""
    out = crop.copy()
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(1, cfg.occlusion_max + 1))):
        area = rng.uniform(*cfg.occlusion_area) * h * w
        ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
        rh = int(min(h, max(2, round(math.sqrt(area * ratio)))))
        rw = int(min(w, max(2, round(math.sqrt(area / ratio)))))
        y0 = int(rng.integers(0, h - rh + 1))
        x0 = int(rng.integers(0, w - rw + 1))
        kind = rng.random()
        if kind < 0.35:
            out[y0:y0 + rh, x0:x0 + rw] = rng.integers(0, 256, (rh, rw, 3), dtype=np.uint8)
        elif kind < 0.7:
            out[y0:y0 + rh, x0:x0 + rw] = rng.integers(0, 256, 3, dtype=np.uint8)
        else:
            sy = int(rng.integers(0, h - rh + 1))
            sx = int(rng.integers(0, w - rw + 1))
            out[y0:y0 + rh, x0:x0 + rw] = crop[sy:sy + rh, sx:sx + rw]
    return out


def normalise(crop_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean/std (to_input_tensor's)."""
    x = crop_rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))
