"""Training our own TransPose weights by distillation (``main.py train``).

* ``configs``: named small TransPose-R configurations for CPU training (``tp-r-tiny`` ...)
  and a cost probe (``python -m core.training.configs``);
* ``labels``: teachers (BlazePose, MoveNet ONNX, both), the on-disk label cache, the
  human/teacher merge rule and the whole-body left/right check;
* ``sources``: LSPET, coco128 person boxes, footage, COCO keypoint JSON (the public
  evaluation set is refused);
* ``transforms`` + ``data``: the official-style augmentation in the inference affine
  conventions, sub-pixel Gaussian targets, the torch Dataset;
* ``trainer``: ``TrainConfig``, AdamW + warmup/cosine, weighted heatmap MSE, checkpoints
  (resume state + self-describing weights), ``history.json``.
"""
