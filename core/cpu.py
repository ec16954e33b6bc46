"""What this CPU does that decides which model file suits it (torch-free).

The shipped int8 stem (core.models.quantize_stem) multiplies uint8 activations by int8
weights. onnxruntime runs those products three ways on x86-64:

- with VNNI (AVX512-VNNI: Intel Ice Lake / Cascade Lake and later Xeons, AMD Zen 4 and
  later; AVX-VNNI: Intel Alder Lake and later) every product is summed in 32 bits: exact;
- without it (AVX2 or AVX-512 alone: Intel before Ice Lake, AMD Zen 1-3) two products at
  a time are summed in 16 bits first (vpmaddubsw), and a sum beyond +-32767 is clipped.

`benchmarks/int8_saturation.py` emulates the clipping on the shipped stem: on real crops
1.3% of the first convolution's pairs clip (moving an output by up to 29% of that layer's
range), at most 0.16% of any other layer's; the first layer's clipping alone takes the
public set's mean OKS (no flip test) from 0.587 to 0.579 and moves people's OKS further
from the float32 stem's (mean |change| 0.031 against 0.026). Weights in 7 bits, the usual
cure, cannot clip but cost more everywhere (0.573 against 0.583, mean |change| 0.049
against 0.021; core.models.quantize_stem). So where the sums may clip, live mode keeps the
float32 stem (core.engine.Engine.live_int8_stem) and a chosen int8 model says so. On ARM
onnxruntime's int8 kernels (dot-product instructions) add in 32 bits: not measured here.
"""
from __future__ import annotations

import functools
import platform

_X86 = frozenset({"x86_64", "amd64", "i386", "i686", "x86"})


def _linux_cpu_flags() -> set[str] | None:
    """The kernel's CPU flags (/proc/cpuinfo), or None where there are none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


@functools.lru_cache(maxsize=1)
def has_vnni() -> bool | None:
    """Whether this x86 CPU has VNNI (AVX512-VNNI or AVX-VNNI); None on other CPUs. Linux:
    the kernel's flags; elsewhere numpy's CPU feature table (which may not know AVX-VNNI:
    such a CPU then counts as without, the safe side)."""
    if platform.machine().lower() not in _X86:
        return None
    flags = _linux_cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_vnni", "avx_vnni"})
    try:
        from numpy.core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:
            return False
    return bool(features.get("AVX512VNNI") or features.get("AVXVNNI"))


def int8_saturates() -> bool:
    """Whether onnxruntime's uint8 x int8 sums may clip on this CPU (module docstring): an
    x86 CPU without VNNI."""
    return has_vnni() is False


INT8_SATURATION_NOTE = ("this CPU has no VNNI, where the int8 stem's sums clip and its "
                        "keypoints are less accurate")
