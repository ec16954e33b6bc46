"""What a network is trained to minimise, per architecture.

Both objectives get the same batch from ``PoseTrainDataset``: the crops, Gaussian target
heatmaps (sigma in heatmap pixels), per-keypoint target weights (human label 1, teacher
label its confidence, missing or off-crop 0) and the joints as (u, v) in [0, 1] of the
crop. So TransPose and TFPose learn from exactly the same labels and augmentation.

* ``HeatmapObjective`` (TransPose): the official JointsMSELoss.
* ``TFPoseObjective`` (Mao et al., 2021): L1 on every decoder layer's coordinates
  (weighted by the target weights) + lambda * the auxiliary heatmap MSE (the same
  JointsMSELoss on the C5 deconvolution head, paper lambda = 50) + the score head's loss.

The score head (our addition; the paper has none, but the product needs a confidence per
keypoint for thresholds, smoothing and the CSV): a binary cross-entropy between its
sigmoid and target = weight x OKS_k(prediction, label), where OKS_k is the COCO
per-keypoint similarity exp(-d^2 / (2 s^2 k_k^2)) with the person's scale s^2 taken as
the crop's area / 1.25^2 (the crop is the box enlarged 1.25x) and d in input pixels. The
prediction is detached: the score learns how good the coordinates are, without pulling
them. A keypoint with no label (weight 0) gets target 0, so "not visible / unknown" scores
low, and a teacher label scores at most its teacher's confidence.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..keypoints import COCO_SIGMAS


class JointsMSELoss(nn.Module):
    """The official JointsMSELoss with use_target_weight: for each joint
    0.5 * MSE(pred * w, gt * w), averaged over joints (computed in float32)."""

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
        w = weight.float()[..., None, None]
        return 0.5 * ((pred.float() - target.float()) * w).pow(2).mean()


@dataclass
class Step:
    """One batch's loss, its parts (floats, for the logs) and the predicted joints in
    heatmap pixels (N, K, 2), for validation PCK."""

    loss: Tensor
    parts: dict[str, float]
    coords_hm: Tensor


def heatmap_argmax(heatmaps: Tensor) -> Tensor:
    """(N, K, h, w) -> (N, K, 2) integer peak positions (x, y) in heatmap pixels."""
    n, k, h, w = heatmaps.shape
    idx = heatmaps.float().reshape(n, k, -1).argmax(-1)
    return torch.stack([(idx % w).float(), torch.div(idx, w, rounding_mode="floor").float()], -1)


def input_to_heatmap(px: Tensor, input_size: tuple[int, int]) -> Tensor:
    """Input pixels -> heatmap pixels (1/4 of the input) under the official crop matrices:
    they map the centres (size - 1) / 2 onto each other and scale by (size - 1), so the
    heatmap grid is not exactly input / 4 (11/47, not 12/48, at a 48-pixel input)."""
    w, h = input_size
    size = px.new_tensor([w, h])
    hm = px.new_tensor([w // 4, h // 4])
    return (px - (size - 1) / 2) * (hm - 1) / (size - 1) + (hm - 1) / 2


class HeatmapObjective:
    """TransPose: weighted heatmap MSE."""

    def __init__(self) -> None:
        self.mse = JointsMSELoss()

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor, weight: Tensor,
                 uv: Tensor) -> Step:
        pred = model(x)
        loss = self.mse(pred, target, weight)
        return Step(loss, {"mse": float(loss.detach())}, heatmap_argmax(pred.detach()))


class TFPoseObjective:
    """TFPose: L_reg (all decoder layers) + lambda * L_aux + L_score; see the module doc."""

    def __init__(self, input_size: tuple[int, int], aux_weight: float = 50.0,
                 score_weight: float = 1.0) -> None:
        self.mse = JointsMSELoss()
        self.input_size = input_size
        self.aux_weight = aux_weight
        self.score_weight = score_weight

    def score_target(self, pred_uv: Tensor, uv: Tensor, weight: Tensor) -> Tensor:
        w_in, h_in = self.input_size
        d2 = ((pred_uv - uv) * pred_uv.new_tensor([w_in, h_in])).pow(2).sum(-1)
        area = w_in * h_in / 1.25 ** 2
        k = pred_uv.new_tensor(COCO_SIGMAS[: pred_uv.shape[1]]) if pred_uv.shape[1] <= \
            len(COCO_SIGMAS) else pred_uv.new_full((pred_uv.shape[1],), 0.07)
        oks = torch.exp(-d2 / (2 * area * k.pow(2)))
        return (weight.float() * oks).clamp(0, 1)

    def __call__(self, model: nn.Module, x: Tensor, target: Tensor, weight: Tensor,
                 uv: Tensor) -> Step:
        out = model.run(x, heatmaps=self.aux_weight > 0)
        w = weight.float()
        norm = w.sum().clamp(min=1.0)
        # L1 of (u, v) per keypoint, summed over the decoder layers (each layer supervised)
        l_reg = sum(((c.float() - uv) .abs().sum(-1) * w).sum() / norm for c in out.coords)
        last = out.coords[-1].float()
        score_t = self.score_target(last.detach(), uv, w)
        l_score = F.binary_cross_entropy_with_logits(out.score_logits.float(), score_t)
        loss = l_reg + self.score_weight * l_score
        parts = {"reg": float(l_reg.detach()), "score": float(l_score.detach())}
        if out.heatmaps is not None:
            l_aux = self.mse(out.heatmaps, target, weight)
            loss = loss + self.aux_weight * l_aux
            parts["aux"] = float(l_aux.detach())
        w_in, h_in = self.input_size
        px = last.detach() * last.new_tensor([w_in, h_in]) - 0.5
        return Step(loss, parts, input_to_heatmap(px, self.input_size))


def objective_for(model: nn.Module) -> HeatmapObjective | TFPoseObjective:
    from ..models.tfpose import TFPose
    if isinstance(model, TFPose):
        return TFPoseObjective(model.config.input_size, model.config.aux_weight)
    return HeatmapObjective()
