"""TransPose's explanation: encoder self-attention as maps over the image.

The last layer's attention *forms* the heatmaps, so for a predicted keypoint the row of
the attention matrix at the keypoint's token is its dependency area (which image regions
the prediction relied on), and for any image point the column at its token is its
affected area (which positions depend on it). Paper: Yang et al., ICCV 2021, Sec. 4.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from .preprocess import affine_matrix


@dataclass(frozen=True)
class AttentionMaps:
    """Every encoder layer's attention for the people of one image.

    weights: (layers, people, heads, T, T) float32; row t = query token t, T = h*w tokens
    in row-major order over the feature grid. Head average: `head_mean()`.
    """

    weights: np.ndarray
    grid_hw: tuple[int, int]
    input_size: tuple[int, int]          # (w, h) of the network input
    centers: np.ndarray                  # (people, 2) crop centers, image px
    scales: np.ndarray                   # (people, 2) crop scales (pixel_std units)
    keypoint_tokens: np.ndarray          # (people, K) token of each predicted keypoint
    rotations: np.ndarray | None = None  # (people,) each crop's turn in degrees (None: 0)

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def stride(self) -> int:
        return self.input_size[1] // self.grid_hw[0]

    def head_mean(self, layer: int = -1) -> np.ndarray:
        """(people, T, T) attention of one layer, averaged over heads."""
        return self.weights[layer].mean(axis=1)

    def select(self, keep: np.ndarray) -> "AttentionMaps":
        """The same maps for a subset of the people (e.g. after pose NMS)."""
        rotations = None if self.rotations is None else self.rotations[keep]
        return dataclasses.replace(self, weights=self.weights[:, keep], centers=self.centers[keep],
                                   scales=self.scales[keep], rotations=rotations,
                                   keypoint_tokens=self.keypoint_tokens[keep])

    def crop_matrix(self, person: int, inverse: bool = False) -> np.ndarray:
        """This person's crop: image -> network input (or back when inverse)."""
        rot = 0.0 if self.rotations is None else float(self.rotations[person])
        return affine_matrix(self.centers[person], self.scales[person], self.input_size,
                             inverse=inverse, rotation=rot)

    def _layer(self, layer: int, head: int | None) -> np.ndarray:
        w = self.weights[layer]
        return w.mean(axis=1) if head is None else w[:, head]

    def token_at(self, person: int, xy_image: tuple[float, float]) -> int:
        """Token index of an image point, through this person's crop."""
        t = self.crop_matrix(person)
        x = t[0, 0] * xy_image[0] + t[0, 1] * xy_image[1] + t[0, 2]
        y = t[1, 0] * xy_image[0] + t[1, 1] * xy_image[1] + t[1, 2]
        h, w = self.grid_hw
        col = int(np.clip(np.floor(x / self.stride), 0, w - 1))
        row = int(np.clip(np.floor(y / self.stride), 0, h - 1))
        return row * w + col

    def dependency_area(self, person: int, keypoint: int, layer: int = -1,
                        head: int | None = None) -> np.ndarray:
        """(h, w) grid: where the keypoint's token attends (the row), sums to 1."""
        token = int(self.keypoint_tokens[person, keypoint])
        return self._layer(layer, head)[person, token].reshape(self.grid_hw)

    def concentration(self, person: int, keypoint: int, radius: int = 2, layer: int = -1
                      ) -> float:
        """How local a keypoint's dependency area is: the attention mass within `radius`
        tokens (a (2r+1)^2 window, clipped at the grid's edges) of the keypoint's own token,
        divided by the share that window would get from uniform attention. 1 means no
        preference for the neighbourhood; T / (window cells) means all the mass is there."""
        area = self.dependency_area(person, keypoint, layer)
        h, w = self.grid_hw
        token = int(self.keypoint_tokens[person, keypoint])
        r0, c0 = divmod(token, w)
        rows = slice(max(0, r0 - radius), min(h, r0 + radius + 1))
        cols = slice(max(0, c0 - radius), min(w, c0 + radius + 1))
        window = area[rows, cols]
        return float(window.sum() / (window.size / area.size))

    def affected_area(self, person: int, xy_image: tuple[float, float], layer: int = -1,
                      head: int | None = None) -> np.ndarray:
        """(h, w) grid: how much every position attends to this image point (the column)."""
        token = self.token_at(person, xy_image)
        return self._layer(layer, head)[person, :, token].reshape(self.grid_hw)

    def to_image(self, grid_map: np.ndarray, person: int, image_hw: tuple[int, int],
                 delta: float = 0.0) -> np.ndarray:
        """Show a grid map over the image: (H, W) float32, zero outside the crop.

        delta: the paper's threshold; attention values below it are set to zero so only
        the areas the prediction really depends on remain.
        """
        m = np.where(grid_map >= delta, grid_map, 0.0).astype(np.float32)
        in_w, in_h = self.input_size
        m = cv2.resize(m, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        inv = self.crop_matrix(person, inverse=True)
        return cv2.warpAffine(m, inv, (int(image_hw[1]), int(image_hw[0])),
                              flags=cv2.INTER_LINEAR, borderValue=0)


def tokens_from_heatmap_coords(coords_hm: np.ndarray, grid_hw: tuple[int, int],
                               input_size: tuple[int, int]) -> np.ndarray:
    """Token of each keypoint, by the official demo's rule: input px = heatmap px * 4 + 0.5."""
    h, w = grid_hw
    stride = input_size[1] // h
    q = coords_hm * 4 + 0.5
    col = np.clip((q[..., 0] / stride).astype(np.int64), 0, w - 1)
    row = np.clip((q[..., 1] / stride).astype(np.int64), 0, h - 1)
    return row * w + col
