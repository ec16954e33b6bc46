"""TFPose's explanation: decoder attention as arrays over joints and over the image.

TFPose decodes each joint from its own query, so its explanation has two parts, per
decoder layer (Mao et al., 2021, Sec. 4):

* joint dependencies: the query-to-query self-attention, a K x K matrix per head; row k
  is how much joint k's query drew on each joint's query (rows sum to 1);
* sampling points: where each joint's query looked in the image, the deformable
  cross-attention's sampling locations (over all heads, levels and points) with their
  attention weights, mapped back to image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecoderAttention:
    """Every decoder layer's attention for the people of one image.

    joint_weights: (layers, people, heads, K, K) float32, row k = joint k's query;
    sample_points: (layers, people, K, heads, levels, points, 2) image pixels (x, y);
    sample_weights: (layers, people, K, heads, levels, points), summing to 1 over levels
    and points for each head.
    """

    joint_weights: np.ndarray
    sample_points: np.ndarray
    sample_weights: np.ndarray

    @property
    def num_layers(self) -> int:
        return self.joint_weights.shape[0]

    @property
    def num_people(self) -> int:
        return self.joint_weights.shape[1]

    def joint_dependencies(self, person: int, layer: int = -1,
                           head: int | None = None) -> np.ndarray:
        """(K, K): row k is how joint k's query attends to every joint (head mean when
        head is None); rows sum to 1."""
        w = self.joint_weights[layer, person]
        return w.mean(axis=0) if head is None else w[head]

    def sampling(self, person: int, keypoint: int, layer: int = -1, top: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(points (M, 2) image px, weights (M,) summing to 1): where this joint's query
        sampled the image, over all heads, levels and points of one decoder layer. With
        `top`, only the `top` strongest points, strongest first."""
        pts = self.sample_points[layer, person, keypoint].reshape(-1, 2)
        heads = self.sample_points.shape[3]
        w = self.sample_weights[layer, person, keypoint].reshape(-1) / heads
        if top is not None:
            order = np.argsort(-w, kind="stable")[:max(0, int(top))]
            pts, w = pts[order], w[order]
        return pts, w

    def joint_links(self, person: int, keypoint: int, layer: int = -1,
                    min_fraction: float = 0.1, head: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(joints (n,), weights (n,)), strongest first: the other joints this keypoint's
        query attended to with at least `min_fraction` of its row's largest weight (its
        own included), i.e. the joints its prediction leaned on."""
        row = self.joint_dependencies(person, layer, head)[keypoint]
        others = np.delete(np.arange(len(row)), keypoint)
        top = float(row.max()) if len(row) else 0.0
        keep = others[row[others] >= min_fraction * top] if top > 0 else others[:0]
        keep = keep[np.argsort(-row[keep], kind="stable")]
        return keep, row[keep]

    def strongest_links(self, person: int, layer: int = -1, per_joint: int = 1,
                        head: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(joints (n,), attended joints (n,), weights (n,)), strongest first: for every
        joint, the `per_joint` other joints its query attended to most. A readable summary
        of the whole K x K matrix (self-attention left out)."""
        deps = np.array(self.joint_dependencies(person, layer, head), np.float64)
        k = len(deps)
        per = max(0, min(int(per_joint), k - 1))
        np.fill_diagonal(deps, -np.inf)
        dst = np.argsort(-deps, axis=1, kind="stable")[:, :per].reshape(-1)
        src = np.repeat(np.arange(k), per)
        w = deps[src, dst]
        order = np.argsort(-w, kind="stable")
        return src[order], dst[order], w[order].astype(np.float32)

    def centers(self, layer: int = -1) -> np.ndarray:
        """(people, 2) image px: the weighted mean of every query's sampling points, where
        each person's decoder looked on the whole (near that person's centre)."""
        pts = self.sample_points[layer].reshape(self.num_people, -1, 2).astype(np.float64)
        w = self.sample_weights[layer].reshape(self.num_people, -1).astype(np.float64)
        ok = np.isfinite(pts).all(-1)
        w = np.where(ok, w, 0.0)
        total = w.sum(1)
        mean = (np.where(ok[..., None], pts, 0.0) * w[..., None]).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total[:, None] > 0, mean / total[:, None], np.nan)

    def person_for(self, box: np.ndarray, layer: int = -1) -> int | None:
        """Which person of this explanation a box (x, y, w, h) is, e.g. a tracked person's
        (a tracker may reorder or drop people): the nearest sampling centre; None when it is
        further than the box's size from the box's centre (someone else's)."""
        centers = self.centers(layer)
        if len(centers) == 0:
            return None
        bx, by, bw, bh = (float(v) for v in box)
        d = np.hypot(centers[:, 0] - (bx + bw / 2), centers[:, 1] - (by + bh / 2))
        if not np.isfinite(d).any():
            return None
        i = int(np.nanargmin(d))
        return i if d[i] <= max(bw, bh) else None

    def select(self, keep: np.ndarray) -> "DecoderAttention":
        """The same explanation for a subset of the people (e.g. after pose NMS)."""
        return DecoderAttention(self.joint_weights[:, keep], self.sample_points[:, keep],
                                self.sample_weights[:, keep])
