"""How many threads each model gets on the CPU: one policy for the pipeline's stages.

The pose network is the pipeline's critical path, so it gets every usable CPU (torch's own
choice, capped). The detector runs beside it (in batch mode on a thread of its own, started
ahead), so it gets few: a pass on a few frames in five does not need many, and each of its
threads takes a core from the network. The reader and tracker threads are single-threaded.

Measured on the 2-core machines (docs/performance.md): two onnxruntime threads for YOLOX or
one give the same end-to-end speed there; on machines with more cores the figures are
unmeasured. Workers of a batch run (core.batch.local) divide the CPUs among themselves by
lowering torch's thread count before they build their engine.
"""
from __future__ import annotations

import os

MAX_DETECTOR_THREADS = 4


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the platform has one (a
    container's cpuset, taskset), else os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pose_threads() -> int:
    """Intra-op threads of the pose network on the CPU (torch's, and onnxruntime's for the
    TransPose-M stem): torch's own number (its physical cores, or what OMP_NUM_THREADS or
    torch.set_num_threads said), never more than the usable CPUs."""
    import torch
    return max(1, min(torch.get_num_threads(), usable_cpus()))


def landmark_threads() -> int:
    """Threads of a TFLite pose model (BlazePose's landmarks): up to 4 usable CPUs."""
    return min(4, usable_cpus())


def detector_threads(cpus: int | None = None) -> int:
    """Intra-op threads of an onnxruntime detector: 2 on machines of up to 8 CPUs (1 on a
    single CPU), a quarter of them beyond, at most MAX_DETECTOR_THREADS."""
    cpus = usable_cpus() if cpus is None else max(1, int(cpus))
    return min(cpus, MAX_DETECTOR_THREADS, max(2, cpus // 4))
