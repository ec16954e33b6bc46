"""TransPose Studio headless core: models, video, detection, tracking, export. Never imports Qt."""
