"""Pose estimation around the models: crops in, keypoints out (rtmlib-style)."""
