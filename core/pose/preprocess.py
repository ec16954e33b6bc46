"""Person box -> network input, exactly as the official TransPose pipeline does it.

Conventions (official `_xywh2cs` + the unbiased `get_affine_transform`):
  * center = (x + (w-1)/2, y + (h-1)/2) in float32; the box is widened or heightened to
    the input aspect ratio, divided by pixel_std=200 and enlarged x1.25.
  * The crop is a uniform scaling by (W-1)/(src_w-1) in both axes (only the x scale is
    used) that maps the center to the input's pixel centre ((W-1)/2, (H-1)/2).
  * bilinear warp, black border, rounded to uint8; then RGB, /255, ImageNet mean/std.

The official code warps with cv2.warpAffine. Its result depends on the OpenCV build:
OpenCV 4.11 (the last one for numpy<2, which mediapipe needs) differs from OpenCV 5.0
and from exact bilinear interpolation by up to 4 levels on ~6% of pixels, so we warp
with exact bilinear arithmetic, which agrees with the official fixtures to 1 level on
0.013% of values (the tolerance the reference gives for a non-cv2 warp).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:         # imported where a tensor is made: the attention maps, and with
    import torch          # them every command's parser, do without it

PIXEL_STD = 200.0
BOX_PADDING = 1.25
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def box_to_center_scale(box_xywh: np.ndarray | list[float], input_size: tuple[int, int],
                        padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """COCO box (x, y, w, h) -> (center, scale), both float32 arrays of shape (2,)."""
    x, y, w, h = (float(v) for v in box_xywh)
    aspect = input_size[0] / input_size[1]
    center = np.array([x + (w - 1) * 0.5, y + (h - 1) * 0.5], dtype=np.float32)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)
    scale = scale * np.float32(padding)
    return center, scale


def affine_matrix(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int],
                  inverse: bool = False, rotation: float = 0.0) -> np.ndarray:
    """2x3 float64 matrix mapping image -> output (or output -> image when inverse).

    Built from three float32 point pairs through cv2.getAffineTransform, as the official
    code does, so the matrix (and therefore the crop) matches it. `rotation` (degrees;
    training augmentation, and crops that follow a turned person) turns the source
    direction as the official get_affine_transform does: the person turns
    counter-clockwise in the output, so a person leaning clockwise by `rotation` degrees
    (``core.keypoints.body_angle``) comes out upright.
    """
    src_w = np.float32(scale[0]) * np.float32(PIXEL_STD)
    out_w, out_h = output_size
    c = np.asarray(center, dtype=np.float32)
    v = np.array([0.0, (src_w - 1) * -0.5], np.float32)
    if rotation:
        rad = np.float32(np.pi * float(rotation) / 180.0)
        sn, cs = np.float32(np.sin(rad)), np.float32(np.cos(rad))
        v = np.array([v[0] * cs - v[1] * sn, v[0] * sn + v[1] * cs], np.float32)
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = c
    src[1] = c + v
    dst[0] = [(out_w - 1) * 0.5, (out_h - 1) * 0.5]
    dst[1] = dst[0] + np.array([0.0, (out_w - 1) * -0.5], np.float32)
    for pts in (src, dst):     # third point: the second rotated 90 degrees about the first
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
    if inverse:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def warp_bilinear(image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]
                  ) -> np.ndarray:
    """Exact bilinear affine warp (like cv2.warpAffine, INTER_LINEAR, constant 0 border).

    matrix maps image -> output. Only the pixels the crop needs are gathered, so a 4K
    frame costs the same as a small one.
    """
    out_w, out_h = int(output_size[0]), int(output_size[1])
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    xs = np.arange(out_w, dtype=np.float64)
    ys = np.arange(out_h, dtype=np.float64)[:, None]
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0f, y0f = np.floor(sx), np.floor(sy)
    fx = (sx - x0f)[..., None]
    fy = (sy - y0f)[..., None]
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    h, w = image.shape[:2]
    img = image.reshape(h * w, -1)
    out = np.zeros((out_h, out_w, img.shape[1]), dtype=np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        yy = y0 + dy
        row_ok = (yy >= 0) & (yy < h)
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xx = x0 + dx
            ok = row_ok & (xx >= 0) & (xx < w)
            vals = np.take(img, np.where(ok, yy * w + xx, 0), axis=0)
            vals[~ok] = 0
            out += (wy * wx) * vals
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape(out_h, out_w, *image.shape[2:])


CropMethod = Literal["exact", "opencv"]


def crop_person(image_rgb: np.ndarray, center: np.ndarray, scale: np.ndarray,
                input_size: tuple[int, int], method: CropMethod = "exact",
                rotation: float = 0.0) -> np.ndarray:
    """Affine crop of one person, uint8 (H, W, 3); outside the image is black.

    "exact": exact bilinear arithmetic (the official fixtures' values; 4-7 ms a crop here);
    "opencv": cv2.warpAffine (1/32-pixel fixed point, up to a few levels off on some
    pixels; about 0.3 ms), for models not held to the official outputs.
    rotation: degrees, as in `affine_matrix` (a person whose body leans by that angle,
    ``body_angle``, comes out upright)."""
    matrix = affine_matrix(center, scale, input_size, rotation=rotation)
    if method == "opencv":
        return cv2.warpAffine(image_rgb, matrix, (int(input_size[0]), int(input_size[1])),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
    return warp_bilinear(image_rgb, matrix, input_size)


CropContext = Literal["image", "box"]
CROP_CONTEXTS: tuple[str, ...] = ("image", "box")


def model_crop_context(model_config: object) -> CropContext:
    """How a model was trained to see a person: its config's crop_context, "image" for a
    config without one (TFPose, BlazePose and checkpoints from before the option)."""
    return getattr(model_config, "crop_context", "image")


def kept_fractions(box_wh: np.ndarray | Sequence[float], scale: np.ndarray,
                   keep: float = BOX_PADDING) -> tuple[float, float]:
    """How much of a crop shows the person box enlarged `keep` times about its centre:
    fractions (of the crop's width, of its height) of the centred rectangle, at most 1.

    The crop covers ``scale * PIXEL_STD`` image pixels (the box widened or heightened to the
    input's aspect, then x1.25), so for a plain crop the kept rectangle is the box x1.25
    itself and what is blacked out is the strip the aspect ratio added: beside a standing
    person, that is where their neighbours are."""
    covered = np.asarray(scale, np.float64) * PIXEL_STD
    frac = np.minimum(np.asarray(box_wh, np.float64)[:2] * float(keep) / covered, 1.0)
    return float(frac[0]), float(frac[1])


def contexts_for(pose: object, measured: np.ndarray | Sequence[bool]) -> dict[str, list[str]]:
    """Keyword arguments for a pose backend call with per-box crop contexts: a model that
    sees people black outside their box (crop_context "box") keeps that for `measured`
    boxes (a detector's, on this very image) and gets the whole crop for the others (boxes
    predicted from keypoints, which may lag a body that moves or turns fast). {} for every
    other backend, which takes no such argument."""
    if getattr(pose, "crop_context", "image") != "box":
        return {}
    return {"contexts": ["box" if m else "image" for m in np.asarray(measured, bool)]}


def black_outside(crop: np.ndarray, fractions: tuple[float, float]) -> np.ndarray:
    """Zero (black, as the crop's own border) every pixel of an (H, W, C) crop outside the
    centred rectangle of `fractions` of its width and height; in place, returned."""
    h, w = crop.shape[:2]
    mx = int(round(w * (1.0 - fractions[0]) / 2))
    my = int(round(h * (1.0 - fractions[1]) / 2))
    if mx > 0:
        crop[:, :mx] = 0
        crop[:, w - mx:] = 0
    if my > 0:
        crop[:my] = 0
        crop[h - my:] = 0
    return crop


# ToTensor + ImageNet Normalize of every uint8 value, per channel, in the same float32
# arithmetic: a table lookup gives the very same numbers in one pass over the crops instead
# of five (cast, divide, subtract, divide, transpose), about 3x faster on the CPU.
_NORMALISED = np.ascontiguousarray(
    ((np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0) - IMAGENET_MEAN)
     / IMAGENET_STD).T)                                       # (3, 256) float32


def to_input_tensor(crops_rgb: np.ndarray, *, mirrored: bool = False) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, ToTensor + ImageNet Normalize.

    mirrored: append each crop's left-right mirror image after the N crops, (2N, 3, H, W):
    the flip test's batch, without normalising the mirror images again."""
    import torch
    crops = np.asarray(crops_rgb)
    if crops.dtype != np.uint8:
        raise TypeError(f"to_input_tensor takes uint8 crops, not {crops.dtype}")
    n, h, w, _ = crops.shape
    out = np.empty((2 * n if mirrored else n, 3, h, w), np.float32)
    for c in range(3):
        np.take(_NORMALISED[c], crops[..., c], out=out[:n, c], mode="clip")
    if mirrored:
        out[n:] = out[:n, :, :, ::-1]
    return torch.from_numpy(out)


def normalise_on_device(crops_rgb: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB on any device -> (N, 3, H, W) float32 normalised there, in
    channels_last memory (a free view of NHWC): to_input_tensor's arithmetic in torch."""
    import torch
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=crops_rgb.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=crops_rgb.device)
    x = (crops_rgb.float() / 255.0 - mean) / std
    return x.permute(0, 3, 1, 2)
