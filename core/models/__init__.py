"""TransPose and TFPose models: build by name or config, load any checkpoint, save our own."""
from .checkpoint import LoadedWeights, build_network, infer_config, load_weights, save_checkpoint
from .config import OFFICIAL_CONFIGS, TransPoseConfig, get_config
from .tfpose import TFPOSE_CONFIGS, TFPose, TFPoseConfig, build_tfpose
from .transpose import TransPose, TransPoseH, TransPoseR, build_model

__all__ = ["LoadedWeights", "OFFICIAL_CONFIGS", "TFPOSE_CONFIGS", "TFPose", "TFPoseConfig",
           "build_network", "build_tfpose", "TransPose", "TransPoseConfig", "TransPoseH",
           "TransPoseR", "build_model", "get_config", "infer_config", "load_weights",
           "save_checkpoint"]
