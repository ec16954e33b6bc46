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

    def sampling(self, person: int, keypoint: int, layer: int = -1
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(points (M, 2) image px, weights (M,) summing to 1): where this joint's query
        sampled the image, over all heads, levels and points of one decoder layer."""
        pts = self.sample_points[layer, person, keypoint].reshape(-1, 2)
        heads = self.sample_points.shape[3]
        w = self.sample_weights[layer, person, keypoint].reshape(-1) / heads
        return pts, w

    def select(self, keep: np.ndarray) -> "DecoderAttention":
        """The same explanation for a subset of the people (e.g. after pose NMS)."""
        return DecoderAttention(self.joint_weights[:, keep], self.sample_points[:, keep],
                                self.sample_weights[:, keep])
