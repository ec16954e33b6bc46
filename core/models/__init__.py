"""TransPose models: build by name or config, load any checkpoint, save our own."""
from .checkpoint import LoadedWeights, infer_config, load_weights, save_checkpoint
from .config import OFFICIAL_CONFIGS, TransPoseConfig, get_config
from .transpose import TransPose, TransPoseH, TransPoseR, build_model

__all__ = ["LoadedWeights", "OFFICIAL_CONFIGS", "TransPose", "TransPoseConfig", "TransPoseH",
           "TransPoseR", "build_model", "get_config", "infer_config", "load_weights",
           "save_checkpoint"]
