"""The resolved configuration of `main.py annotate`: defaults <- TOML file <- command line.

`--config run.toml` reads a flat TOML file whose keys are the long option names without
the dashes in front (`fill-gaps = 5`, `formats = ["csv", "trc"]`); options given on the
command line win. The resolved configuration is written beside an analysis run's outputs
(`<stem>.config.toml`) and by `--write-config FILE`, so a run can be repeated exactly.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from ..analysis import AnalysisConfig
from ..analysis.angles import ANGLE_NAMES, parse_angle_names
from ..analysis.filtering import FilterKind, GapMethod, OutlierMethod, PostProcessConfig
from ..analysis.selection import PersonSelection
from ..analysis.units import ScaleSpec
from ..errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:                                    # pragma: no cover - Python 3.10
    import tomli as tomllib

OutputFormat = Literal["csv", "json", "wide-csv", "trc", "openpose"]
OUTPUT_FORMATS: tuple[str, ...] = ("csv", "json", "wide-csv", "trc", "openpose")
DEFAULT_FORMATS: tuple[str, ...] = ("csv", "json")
Smoothing = Literal["kalman", "one-euro", "none"]
OpenPoseLayout = Literal["coco18", "body25"]


@dataclass(frozen=True)
class AnnotateConfig:
    """Every option of `main.py annotate` (field names are the options, '-' as '_')."""

    inputs: tuple[str, ...] = ()
    out: str | None = None
    model: str = "auto"
    detector: str = "auto"
    device: str = "auto"
    smoothing: Smoothing = "kalman"
    strength: float = 1.0
    detect_every: int = 5
    cuda_graphs: bool = False
    backfill: bool = True          # EngineConfig.backfill: people found late, followed back
    overlay: bool = False
    force: bool = False
    formats: tuple[str, ...] = DEFAULT_FORMATS
    # analysis (core.analysis); every default leaves the plain CSV/JSON untouched
    people: str = "all"
    outliers: OutlierMethod = "none"
    outlier_window: int = 7
    outlier_sigmas: float = 3.0
    fill_gaps: int = 0
    gap_method: GapMethod = "linear"
    filter: FilterKind = "none"
    cutoff: float = 6.0
    order: int = 4
    angles: tuple[str, ...] = ANGLE_NAMES
    draw_angles: bool = False
    person_height: float | None = None
    scale_points: tuple[float, ...] | None = None     # x1, y1, x2, y2, metres
    floor_angle: float | str | None = None            # degrees, or "points"
    openpose_layout: OpenPoseLayout = "coco18"
    config_file: str | None = field(default=None, compare=False)   # where it was read from

    def analysis(self) -> AnalysisConfig:
        """The analysis configuration (InputError for bad values, before any work)."""
        pts = self.scale_points
        floor_points = self.floor_angle == "points"
        return AnalysisConfig(
            postprocess=PostProcessConfig(
                fill_gaps=self.fill_gaps, gap_method=self.gap_method, outliers=self.outliers,
                outlier_window=self.outlier_window, outlier_sigmas=self.outlier_sigmas,
                filter=self.filter, cutoff_hz=self.cutoff, order=self.order),
            angles=self.angles,
            scale=ScaleSpec(person_height_m=self.person_height,
                            points_px=tuple(pts[:4]) if pts else None,
                            distance_m=pts[4] if pts else None,
                            floor_angle_deg=None if floor_points or self.floor_angle is None
                            else float(self.floor_angle),
                            floor_from_points=floor_points),
            people=PersonSelection.parse(self.people))

    @property
    def is_analysis_run(self) -> bool:
        """True when anything beyond the plain CSV/JSON/overlay was asked for: then the
        outputs are written after post-processing, with the analysis in the JSON, and the
        resolved configuration is saved beside them."""
        plain = AnnotateConfig()
        keys = ("formats", "people", "outliers", "fill_gaps", "filter", "angles",
                "draw_angles", "person_height", "scale_points", "floor_angle")
        return self.config_file is not None or any(
            getattr(self, k) != getattr(plain, k) for k in keys)


# ---------------------------------------------------------------------------- values
def _key(name: str) -> str:
    return name.replace("_", "-")


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("a string")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("a whole number")
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError("a number")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError("true or false")
    return v


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(s.strip() for s in v.split(",") if s.strip())
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return tuple(v)
    raise TypeError("a list of strings")


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise TypeError("one of " + ", ".join(choices))
        return v
    return check


def _formats(v: Any) -> tuple[str, ...]:
    items = _str_list(v)
    bad = [f for f in items if f not in OUTPUT_FORMATS]
    if bad:
        raise TypeError(f"formats from {', '.join(OUTPUT_FORMATS)} (not {', '.join(bad)})")
    if not items:
        raise TypeError("at least one format")
    return tuple(dict.fromkeys(items))


def _angles(v: Any) -> tuple[str, ...]:
    return parse_angle_names(_str_list(v), "angles")


def _people(v: Any) -> str:
    if isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        v = ",".join(str(i) for i in v)
    if not isinstance(v, str):
        raise TypeError("all, largest:N, longest:N or track ids")
    return str(PersonSelection.parse(v))


def _optional_positive(v: Any) -> float | None:
    return None if v is None else _float(v)


def _scale_points(v: Any) -> tuple[float, ...] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 5:
        raise TypeError("five numbers: x1, y1, x2, y2 in pixels and the distance in metres")
    return tuple(_float(x) for x in v)


def _floor(v: Any) -> float | str | None:
    if v is None or v == "points":
        return v
    return _float(v)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "inputs": _str_list, "out": _str, "model": _str, "detector": _str, "device": _str,
    "smoothing": _choice("kalman", "one-euro", "none"), "strength": _float,
    "detect_every": _int, "cuda_graphs": _bool, "backfill": _bool,
    "overlay": _bool, "force": _bool,
    "formats": _formats,
    "people": _people, "outliers": _choice("none", "hampel"), "outlier_window": _int,
    "outlier_sigmas": _float, "fill_gaps": _int, "gap_method": _choice("linear", "cubic"),
    "filter": _choice("none", "butterworth"), "cutoff": _float, "order": _int,
    "angles": _angles, "draw_angles": _bool, "person_height": _optional_positive,
    "scale_points": _scale_points, "floor_angle": _floor,
    "openpose_layout": _choice("coco18", "body25"),
}
assert set(CONVERTERS) == {f.name for f in dataclasses.fields(AnnotateConfig)} - {"config_file"}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Field name -> value from a TOML file (InputError: unreadable, unknown key, bad type).
    Relative paths (inputs, out) are taken relative to the file's folder."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in CONVERTERS:
            raise InputError(f"{path}: unknown key {key!r}; known keys: "
                             f"{', '.join(_key(k) for k in CONVERTERS)}")
        try:
            values[name] = CONVERTERS[name](value)
        except TypeError as e:
            raise InputError(f"{path}: {key} must be {e}, not {value!r}") from None
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
    base = path.resolve().parent
    if "inputs" in values:
        values["inputs"] = tuple(p if Path(p).is_absolute() else str(base / p)
                                 for p in values["inputs"])
    if "out" in values and not Path(values["out"]).is_absolute():
        values["out"] = str(base / values["out"])
    return values


def resolve_config(cli: dict[str, Any], config_file: str | None = None) -> AnnotateConfig:
    """Defaults, then the TOML file, then the options given on the command line (`cli`:
    field name -> value, only the options the user gave). Validates everything."""
    values = read_config_file(config_file) if config_file else {}
    values.update({k: v for k, v in cli.items() if v is not None})
    config = AnnotateConfig(**values, config_file=config_file)
    where = f" (options from {config_file} and the command line)" if config_file else ""
    try:
        config.analysis()      # one clear error for bad analysis options, before any work
    except InputError as e:
        raise InputError(f"{e}{where}") from None
    if config.detect_every < 1:
        raise InputError(f"--detect-every: expected 1 or more frames, not "
                         f"{config.detect_every}{where}")
    if not (math.isfinite(config.strength) and config.strength >= 0):
        raise InputError(f"--strength: expected 0 (off) or more, not {config.strength}{where}")
    return config


# ---------------------------------------------------------------------------- writing
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def config_to_toml(config: AnnotateConfig, header: str = "") -> str:
    """The configuration as a flat TOML document (`read_config_file` reads it back).
    Unset optional values (None) are written as comments."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for f in dataclasses.fields(config):
        if f.name == "config_file":
            continue
        v = getattr(config, f.name)
        if v is None:
            lines.append(f"# {_key(f.name)} = (not set)")
        else:
            lines.append(f"{_key(f.name)} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def with_absolute_paths(config: AnnotateConfig) -> AnnotateConfig:
    """Inputs and output folder as absolute paths, so the file works from any folder."""
    return dataclasses.replace(
        config, inputs=tuple(str(Path(p).absolute()) for p in config.inputs),
        out=str(Path(config.out).absolute()) if config.out else None)


def write_config(path: str | Path, config: AnnotateConfig, header: str = "") -> Path:
    from ..export.sinks import _AtomicTextFile
    out = _AtomicTextFile(path)
    out.write(config_to_toml(config, header))
    return out.commit()
