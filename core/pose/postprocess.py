"""Heatmaps -> keypoints, exactly as the official TransPose `get_final_preds`.

Official quirks kept on purpose (see ../shared/reference/README.md):
  * DARK is always applied: blur (11x11, sigma 2, zero padding by 5, rescaled to the
    pre-blur maximum, stored in float32), log, one unclamped Newton step in float32,
    only when 1 < px < W-2 and 1 < py < H-2.
  * the score is the raw maximum before blurring; a joint whose maximum is <= 0 gets the
    heatmap coordinate (0, 0).
  * flip test: mirror + swap left/right channels, averaged with no one-pixel shift.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..keypoints import flip_permutation
from .preprocess import affine_matrix

BLUR_KERNEL = 11


def argmax_coords(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) -> integer-valued float32 coords (N, K, 2) and maxvals (N, K)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)       # explicit size: n may be 0 (nobody in frame)
    if n == 0:
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), heatmaps.dtype)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords *= (maxvals > 0)[..., None].astype(np.float32)
    return coords, maxvals


def _blur(heatmaps: np.ndarray, kernel: int = BLUR_KERNEL) -> np.ndarray:
    """Gaussian blur with zero padding, rescaled to each map's pre-blur maximum (float32).

    As the official code: each map zero-padded by kernel//2 in float64, cv2.GaussianBlur
    (sigma 0 -> 2.0 for 11), cropped back. The padded maps are stacked into one tall image
    (the 2 x kernel//2 zeros between two maps keep them apart), so it is one OpenCV call
    for every person and joint: 7x faster than a float64 torch convolution, same values.
    """
    n, k, h, w = heatmaps.shape
    r = kernel // 2
    tall = np.zeros((n * k, h + 2 * r, w + 2 * r), np.float64)
    tall[:, r:r + h, r:r + w] = heatmaps.reshape(n * k, h, w)
    out = cv2.GaussianBlur(tall.reshape(-1, w + 2 * r), (kernel, kernel), 0)
    blurred = out.reshape(n * k, h + 2 * r, w + 2 * r)[:, r:r + h, r:r + w]
    blurred = blurred.reshape(n, k, h, w).astype(np.float32)
    before = heatmaps.reshape(n, k, -1).max(axis=2)
    after = blurred.reshape(n, k, -1).max(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (before / after).astype(np.float32)
    return blurred * ratio[..., None, None]


def _inv2x2(m: np.ndarray) -> np.ndarray:
    """Inverse of (..., 2, 2) matrices in closed form (adjugate / determinant), in their
    dtype: np.linalg.inv goes through LAPACK per matrix, which under a loaded machine's
    OpenBLAS threads cost ~20 ms for one person's 17 joints."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[..., None, None]


def dark_refine(heatmaps: np.ndarray, coords: np.ndarray, kernel: int = BLUR_KERNEL) -> np.ndarray:
    """Distribution-aware refinement (Zhang et al. 2020): one Newton step on the log map."""
    n, k, h, w = heatmaps.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        logm = np.log(np.maximum(_blur(heatmaps, kernel), np.float32(1e-10)))
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    pxc, pyc = np.clip(px, 2, w - 3), np.clip(py, 2, h - 3)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def at(dy: int, dx: int) -> np.ndarray:
        return logm[ni, ki, pyc + dy, pxc + dx]

    c = at(0, 0)
    dx = np.float32(0.5) * (at(0, 1) - at(0, -1))
    dy = np.float32(0.5) * (at(1, 0) - at(-1, 0))
    dxx = np.float32(0.25) * (at(0, 2) - 2 * c + at(0, -2))
    dxy = np.float32(0.25) * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = np.float32(0.25) * (at(2, 0) - 2 * c + at(-2, 0))
    hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)  # (N,K,2,2)
    det = dxx * dyy - dxy ** 2
    ok &= (det != 0) & np.isfinite(det)
    hess[~ok] = np.eye(2, dtype=np.float32)
    grad = np.stack([dx, dy], -1)[..., None]
    offset = -(_inv2x2(hess) @ grad)[..., 0]
    out = coords.copy()
    out[ok] += offset[ok].astype(np.float32)
    return out


def quarter_offset_refine(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Classic HRNet/SimpleBaseline refinement: move 0.25 px towards the higher neighbour."""
    n, k, h, w = heatmaps.shape
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    ok = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
    pxc, pyc = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    ddx = heatmaps[ni, ki, pyc, pxc + 1] - heatmaps[ni, ki, pyc, pxc - 1]
    ddy = heatmaps[ni, ki, pyc + 1, pxc] - heatmaps[ni, ki, pyc - 1, pxc]
    out = coords.copy()
    out += np.where(ok[..., None], np.stack([np.sign(ddx), np.sign(ddy)], -1) * 0.25, 0)
    return out.astype(np.float32)


def heatmap_to_image(coords: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                     heatmap_size: tuple[int, int], rotations: np.ndarray | None = None
                     ) -> np.ndarray:
    """Heatmap pixel coords (N, K, 2) -> image pixels (float64), per person's crop
    (turned by ``rotations[i]`` degrees when given, as the crop was)."""
    out = np.zeros(coords.shape, dtype=np.float64)
    for i in range(coords.shape[0]):
        rot = float(rotations[i]) if rotations is not None else 0.0
        t = affine_matrix(centers[i], scales[i], heatmap_size, inverse=True, rotation=rot)
        out[i] = coords[i].astype(np.float64) @ t[:, :2].T + t[:, 2]
    return out


def flip_back(heatmaps_of_flipped: torch.Tensor | np.ndarray, num_joints: int | None = None):
    """Heatmaps of a W-flipped input -> heatmaps in the original frame (mirror + swap)."""
    k = heatmaps_of_flipped.shape[1] if num_joints is None else num_joints
    perm = flip_permutation(k)
    if isinstance(heatmaps_of_flipped, torch.Tensor):
        return heatmaps_of_flipped[:, perm].flip(3)
    return np.ascontiguousarray(heatmaps_of_flipped[:, perm, :, ::-1])


def decode_heatmaps(heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray,
                    refine: str = "dark", rotations: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps -> (image coords (N,K,2) float64, scores (N,K), heatmap coords (N,K,2)).

    refine: "dark" (official) or "argmax" (integer peak + quarter-pixel offset);
    rotations: each crop's turn in degrees (None: upright crops).
    """
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    coords, maxvals = heatmap_peaks(heatmaps, refine)
    h, w = heatmaps.shape[2:]
    return heatmap_to_image(coords, centers, scales, (w, h), rotations), maxvals, coords


def heatmap_peaks(heatmaps: np.ndarray, refine: str = "dark") -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) heatmaps -> refined heatmap coords (N, K, 2) float32 and maxvals (N, K):
    decode_heatmaps before the mapping to the image."""
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    if len(heatmaps) == 0:                     # nobody in the frame
        k = heatmaps.shape[1]
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
    coords, maxvals = argmax_coords(heatmaps)
    if refine == "dark":
        coords = dark_refine(heatmaps, coords)
    elif refine == "argmax":
        coords = quarter_offset_refine(heatmaps, coords)
    else:
        raise ValueError(f"refine must be 'dark' or 'argmax', not {refine!r}")
    return coords, maxvals


def heatmap_peaks_torch(heatmaps: torch.Tensor, refine: str = "dark"
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """heatmap_peaks on the heatmaps' own device, for a GPU: only N x K x 3 numbers then
    travel back instead of the maps. The same arithmetic as the numpy functions (argmax,
    the zero-padded Gaussian blur in float64 rescaled to the pre-blur maximum, one Newton
    step in float32); the coords agree with them to within 1e-5 heatmap pixels (4e-6 on the
    shipped model's maps of real photos: the blur sums in another order), not bit for
    bit, so the CPU keeps the numpy path."""
    if refine not in ("dark", "argmax"):
        raise ValueError(f"refine must be 'dark' or 'argmax', not {refine!r}")
    hm = heatmaps.float()
    n, k, h, w = hm.shape
    if n == 0:
        return hm.new_zeros(0, k, 2), hm.new_zeros(0, k)
    maxvals, idx = hm.reshape(n, k, h * w).max(dim=2)
    coords = torch.stack([idx % w, idx // w], dim=-1).float() * (maxvals > 0)[..., None]
    px, py = coords[..., 0].long(), coords[..., 1].long()
    flat_nk = torch.arange(n * k, device=hm.device).reshape(n, k)
    if refine == "argmax":
        ok = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
        pxc, pyc = px.clamp(1, w - 2), py.clamp(1, h - 2)
        maps = hm.reshape(n * k, h, w)
        ddx = maps[flat_nk, pyc, pxc + 1] - maps[flat_nk, pyc, pxc - 1]
        ddy = maps[flat_nk, pyc + 1, pxc] - maps[flat_nk, pyc - 1, pxc]
        step = torch.stack([torch.sign(ddx), torch.sign(ddy)], -1) * 0.25
        return coords + torch.where(ok[..., None], step, torch.zeros_like(step)), maxvals
    r = BLUR_KERNEL // 2
    # cv2.getGaussianKernel's sigma for sigma 0: 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    sigma = 0.3 * ((BLUR_KERNEL - 1) * 0.5 - 1) + 0.8
    g = torch.exp(-((torch.arange(BLUR_KERNEL, dtype=torch.float64, device=hm.device) - r) ** 2)
                  / (2 * sigma ** 2))
    g = g / g.sum()
    maps64 = hm.reshape(n * k, 1, h, w).double()
    blurred = torch.nn.functional.conv2d(maps64, g.reshape(1, 1, -1, 1), padding=(r, 0))
    blurred = torch.nn.functional.conv2d(blurred, g.reshape(1, 1, 1, -1), padding=(0, r))
    blurred = blurred.reshape(n, k, h, w).float()
    ratio = maxvals / blurred.reshape(n, k, -1).amax(dim=2)
    logm = torch.log(torch.clamp(blurred * ratio[..., None, None], min=1e-10)).reshape(n * k, h, w)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    pxc, pyc = px.clamp(2, w - 3), py.clamp(2, h - 3)

    def at(dy: int, dx: int) -> torch.Tensor:
        return logm[flat_nk, pyc + dy, pxc + dx]

    c = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * c + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * c + at(-2, 0))
    det = dxx * dyy - dxy ** 2
    ok &= (det != 0) & torch.isfinite(det)
    safe = torch.where(ok, det, torch.ones_like(det))
    # -(H^-1 g) with H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    offset = torch.stack([off_x, off_y], -1)
    return coords + torch.where(ok[..., None], offset, torch.zeros_like(offset)), maxvals
