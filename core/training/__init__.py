"""Training our own TransPose and TFPose weights by distillation (``main.py train``).

* ``configs``: named small TransPose-R configurations for CPU training (``tp-r-tiny`` ...),
  the TFPose ones by name (core.models.tfpose) and a cost probe
  (``python -m core.training.configs``);
* ``labels``: teachers (BlazePose, MoveNet ONNX, both), the on-disk label cache, the
  human/teacher merge rule and the whole-body left/right check;
* ``sources``: LSPET, coco128 person boxes, footage, COCO keypoint JSON (the public
  evaluation set is refused);
* ``transforms`` + ``data``: the official-style augmentation in the inference affine
  conventions, sub-pixel Gaussian targets, the torch Dataset;
* ``objectives``: what each family minimises on the same batch (TransPose: weighted
  heatmap MSE; TFPose: per-layer L1 + auxiliary heatmaps + the score head);
* ``trainer``: ``TrainConfig``, AdamW + warmup/cosine, checkpoints (resume state +
  self-describing weights), ``--init`` from weights, ``history.json``;
* ``report``: learning-curve tables and plots of runs.
"""
