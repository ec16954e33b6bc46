"""Loading and saving TransPose and TFPose weights, with one clear error per bad file.

Accepted files (always read with torch.load(weights_only=True)):
  * an official release file: a bare state_dict; the variant is detected from keys and
    shapes alone;
  * the common wrappers: {"state_dict": ...}, {"model": ...}, keys prefixed "module.";
  * our own checkpoints, which carry their configuration: {"format": "transpose-studio",
    "arch": "transpose" | "tfpose", "config": {...}, "state_dict": {...}}, so custom
    models, TFPose included, load with no extra flags.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import CheckpointError
from .config import OFFICIAL_CONFIGS, TransPoseConfig
from .tfpose import TFPose, TFPoseConfig
from .transpose import TransPose, build_model

ARCHS = ("transpose", "tfpose")
PoseNetwork = TransPose | TFPose

FORMAT = "transpose-studio"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LoadedWeights:
    """A model ready for inference and where it came from."""

    model: TransPose | TFPose
    config: TransPoseConfig | TFPoseConfig
    source: str                 # the path (or zoo name) the user gave
    variant: str                # official variant name, or the config's name
    meta: dict[str, Any] = field(default_factory=dict)


def _read(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path}: no such weights file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a weights file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        # torch's wording varies by release: "Unsupported global: GLOBAL posix.system",
        # "Trying to load unsupported GLOBAL posix.system whose module posix is blocked"
        found = (re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or
                 re.search(r"unsupported GLOBAL ([\w.]+)", text, re.IGNORECASE) or
                 re.search(r"Trying to call reduce for ([\w.]+)", text))
        if found:
            raise CheckpointError(f"{path}: refused to load: it holds Python objects other "
                                  f"than tensors and plain containers (e.g. {found.group(1)}), "
                                  f"which could run "
                                  f"code when loaded; only weights are loaded, for safety. It "
                                  f"is not necessarily corrupt: re-save just the state_dict "
                                  f"from a trusted copy") from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: the file is corrupt "
                              f"or is not a PyTorch checkpoint") from None
    except Exception as e:      # noqa: BLE001 - arbitrary bytes make torch.load raise anything
        text = str(e).strip()
        if "central directory" in text or "zip archive" in text or \
                isinstance(e, (EOFError, zipfile.BadZipFile)):
            reason = "the file is truncated or is not a PyTorch checkpoint"
        elif isinstance(e, OSError) and e.strerror:
            reason = e.strerror
        else:
            reason = "the file is corrupt or is not a PyTorch checkpoint"
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {reason}") from None


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None,
                                            dict[str, Any], str]:
    """-> (state_dict, our config dict or None, meta, architecture)."""
    config = None
    meta: dict[str, Any] = {}
    arch = "transpose"
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        config = obj.get("config")
        meta = dict(obj.get("meta") or {})
        arch = str(obj.get("arch") or "transpose")
        if arch not in ARCHS:
            raise CheckpointError(f"{path}: unknown architecture {arch!r} (this version reads "
                                  f"{', '.join(ARCHS)}); is it from a newer TransPose Studio?")
        obj = obj.get("state_dict")
    elif isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: holds no state_dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(obj):
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:3]
        raise CheckpointError(f"{path}: the state_dict has non-tensor entries, e.g. {bad}")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors, config, meta, arch


def _count_layers(sd: Mapping[str, torch.Tensor]) -> int:
    idx = {int(m.group(1)) for k in sd if (m := re.match(r"global_encoder\.layers\.(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def infer_config(sd: Mapping[str, torch.Tensor], path: Path | str = "<state_dict>") -> TransPoseConfig:
    """Recognise an official TransPose variant from keys and shapes alone."""
    if any(k.startswith("decoder.0.") for k in sd) and "initial_coords" in sd:
        raise CheckpointError(f"{path}: a bare TFPose state_dict; TFPose weights must carry "
                              f"their configuration (save them with "
                              f"core.models.save_checkpoint, as main.py train does)")
    n_layers = _count_layers(sd)
    ffn_key = "global_encoder.layers.0.linear1.weight"
    if n_layers == 0 or ffn_key not in sd:
        first = ", ".join(list(sd)[:4])
        raise CheckpointError(f"{path}: not a TransPose checkpoint: it has no Transformer "
                              f"encoder ('global_encoder.layers.*' keys); its first keys are: "
                              f"{first}")
    backbone = "resnet" if any(k.startswith(("deconv_layers.", "layer2.")) for k in sd) else "hrnet"
    ff, d_model = sd[ffn_key].shape
    joints = sd["final_layer.weight"].shape[0] if "final_layer.weight" in sd else 17
    tokens = sd["pos_embedding"].shape[0] if "pos_embedding" in sd else None
    width = None
    if backbone == "hrnet" and "transition1.0.0.weight" in sd:
        width = sd["transition1.0.0.weight"].shape[0]
    for name, cfg in OFFICIAL_CONFIGS.items():
        h, w = cfg.feature_hw
        if (cfg.backbone, cfg.d_model, cfg.n_layers, cfg.dim_feedforward) == \
                (backbone, d_model, n_layers, ff) and tokens in (None, h * w) and \
                (backbone == "resnet" or cfg.hrnet_width == width):
            return cfg.replace(num_joints=joints)
    _explain_misfit(sd, path, backbone, n_layers)
    raise CheckpointError(
        f"{path}: a TransPose-{'R' if backbone == 'resnet' else 'H'} state_dict "
        f"(d_model={d_model}, layers={n_layers}, ffn={ff}, tokens={tokens}) that matches no "
        f"official variant and carries no configuration; save it with "
        f"core.models.save_checkpoint so the file describes itself")


def _explain_misfit(sd: Mapping[str, torch.Tensor], path: Path | str, backbone: str,
                    n_layers: int) -> None:
    """No official variant matches: when one has exactly these keys and differs only in a
    few tensors' shapes, the file is that variant with damaged tensors: name them (the
    sizes read from one tensor, e.g. layer 0's feed-forward, may be the damaged ones)."""
    best: tuple[int, str, list[str]] | None = None
    for name, cfg in OFFICIAL_CONFIGS.items():
        if cfg.backbone != backbone or cfg.n_layers != n_layers:
            continue
        try:
            expected = build_model(cfg).state_dict()
        except Exception:      # noqa: BLE001 - only an explanation; never mask the error
            continue
        if set(expected) != set(sd):
            continue
        wrong = [f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
                 for k, v in expected.items() if sd[k].shape != v.shape]
        if wrong and (best is None or len(wrong) < best[0]):
            best = (len(wrong), name, wrong)
    if best is not None and best[0] <= 3:
        _, name, wrong = best
        raise CheckpointError(f"{path}: looks like {name} but {len(wrong)} tensor(s) have the "
                              f"wrong shape: {', '.join(wrong)}")


def _check_keys(model: PoseNetwork, sd: Mapping[str, torch.Tensor], path: Path | str) -> None:
    """Strict comparison with a readable report of the first differences."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [f"{k} {tuple(sd[k].shape)} (expected {tuple(v.shape)})"
                 for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if not (missing or unexpected or misshaped):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("wrong shape", misshaped)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
    raise CheckpointError(f"{path}: does not fit {model.config.name}: " + "; ".join(parts))


def check_finite(sd: Mapping[str, torch.Tensor], path: Path | str = "<state_dict>") -> None:
    """CheckpointError naming the file and the first tensor holding NaN or Inf: such
    weights give NaN scores and empty outputs while looking like success."""
    bad_tensors = []
    for key, t in sd.items():
        if t.is_floating_point() or t.is_complex():
            finite = torch.isfinite(t)
            if not bool(finite.all()):
                bad_tensors.append((key, int((~finite).sum()), t.numel(),
                                    "NaN" if bool(torch.isnan(t).any()) else "Inf"))
    if bad_tensors:
        key, n, total, kind = bad_tensors[0]
        more = (f"; {len(bad_tensors) - 1} more tensor(s) too" if len(bad_tensors) > 1 else "")
        raise CheckpointError(f"{path}: the weights hold non-finite values: {key} has {n} of "
                              f"{total} values {kind} or infinite{more} (a diverged training "
                              f"run?); refusing to load them")


def load_state_dict_strict(model: PoseNetwork, sd: Mapping[str, torch.Tensor],
                           path: Path | str = "<state_dict>") -> None:
    _check_keys(model, sd, path)
    check_finite(sd, path)
    model.load_state_dict(sd, strict=True)


def load_weights(weights: str | os.PathLike, *, progress: bool = True) -> LoadedWeights:
    """Load a model from a file path or a model-zoo name (downloaded on first use)."""
    from . import zoo
    source = str(weights)
    path = Path(weights)
    if not path.exists() and zoo.is_zoo_name(source):
        path = zoo.fetch_zoo_weights(source, progress=progress)
    obj = _read(path)
    sd, config_dict, meta, arch = _unwrap(obj, path)
    cfg: TransPoseConfig | TFPoseConfig
    if config_dict is not None:
        config_cls = TFPoseConfig if arch == "tfpose" else TransPoseConfig
        try:
            cfg = config_cls.from_dict(dict(config_dict))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: its configuration is invalid: {e}") from None
    else:
        cfg = infer_config(sd, path)
    model = build_network(cfg)
    load_state_dict_strict(model, sd, path)
    model.eval()
    return LoadedWeights(model=model, config=cfg, source=source, variant=cfg.name, meta=meta)


def build_network(config: TransPoseConfig | TFPoseConfig) -> PoseNetwork:
    """A TransPose or a TFPose, whichever the config describes."""
    return TFPose(config) if isinstance(config, TFPoseConfig) else build_model(config)


def save_checkpoint(model: PoseNetwork, path: str | os.PathLike,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write a self-describing checkpoint (architecture + config + weights), atomically."""
    path = Path(path)
    arch = "tfpose" if isinstance(model, TFPose) else "transpose"
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "arch": arch,
               "config": model.config.to_dict(), "state_dict": model.state_dict(),
               "meta": dict(meta or {})}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path
