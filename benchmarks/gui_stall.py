#!/usr/bin/env python3
"""How long can the GUI thread stall while a video plays? (goal: under 50 ms)

A QTimer fires every 5 ms on the GUI thread; the gap between consecutive firings is how long
the event loop was busy (or starved of the GIL) in between. For each model, the real main
window plays the video (live pipeline paced to the video's fps, overlays rendered off the GUI
thread) and the gaps are recorded for --seconds of playback; reported: max, p99, p50, and
how many frames were shown/processed.

    python benchmarks/gui_stall.py                       # auto and a random-weight tp-r-a3
    python benchmarks/gui_stall.py --seconds 10 --json out.json
    xvfb-run -s "-screen 0 1600x1000x24" python benchmarks/gui_stall.py   # real X11 painting

The TransPose run uses deterministic *random* tp-r-a3 weights (tests/data/reference): the
speed is that of the real network, its keypoints mean nothing. Runs with --attention draw
the attention overlay of every keypoint too (the heaviest case).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_VIDEO = ROOT.parent / "shared" / "datasets" / "videos" / "sports2d_demo.mp4"
if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


def random_tp_r_a3(folder: Path) -> Path:
    import torch
    ref = ROOT / "tests" / "data" / "reference"
    spec = importlib.util.spec_from_file_location("make_weights", ref / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = folder / "tp_r_a3_random.pth"
    torch.save(mod.build_state_dict(str(ref / "tp-r-a3.keys.json")), path)
    return path


def measure(app, video: str, model: str, attention: bool, seconds: float, label: str) -> dict:
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer

    from app.main_window import MainWindow

    tmp = tempfile.TemporaryDirectory(prefix="gui-stall-")
    settings = QSettings(str(Path(tmp.name) / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings, engine_overrides={"model": model}, probe_cameras=False)
    w.resize(1440, 860)
    if attention:
        w.panel.set_attention(True, None)
    w.show()
    c = w.controller

    def spin_until(cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.005)
        return False

    if not spin_until(lambda: c.engine is not None, 120):
        raise SystemExit(f"{label}: the model did not load")
    w.open_source(video, autoplay=True)
    if not spin_until(lambda: c.playing and c.current is not None and c.live_pipeline is not None
                      and (not attention or c.current.attention is not None), 180):
        raise SystemExit(f"{label}: playback did not start")

    control = _start_control(seconds)
    gaps: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]
    shown = [0]
    first_index = c.current.index
    c.frame_ready.connect(lambda _f: shown.__setitem__(0, shown[0] + 1))
    processed0 = c.frames_processed

    long_gaps: list[tuple[float, float]] = []       # (start, end) in time.monotonic()
    last_mono = [time.monotonic()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gap = (now - last[0]) / 1e6
        gaps.append(gap)
        last[0] = now
        mono = time.monotonic()
        if gap > 50 and len(gaps) > 1:          # the first gap is the start, not a stall
            long_gaps.append((last_mono[0], mono))
        last_mono[0] = mono

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(5)
    timer.timeout.connect(tick)
    done = [False]
    QTimer.singleShot(int(seconds * 1000), lambda: done.__setitem__(0, True))
    timer.start()
    # the normal event loop, not processEvents polling: what the user's window runs
    from PySide6.QtCore import QEventLoop
    loop = QEventLoop()
    stopper = QTimer()
    stopper.setInterval(20)
    restarts = [0]

    def check() -> None:
        if done[0]:
            loop.quit()
        elif not c.playing and c.idle:
            restarts[0] += 1               # the clip ended: play it again from the start
            c.play()
    stopper.timeout.connect(check)
    stopper.start()
    t0 = time.monotonic()
    loop.exec()
    elapsed = time.monotonic() - t0
    timer.stop()
    stopper.stop()
    processed = c.frames_processed - processed0
    live = c.live_pipeline
    dropped = live.stats.dropped if live is not None else None
    last_index = c.current.index if c.current is not None else None
    t_close = time.monotonic()
    w.close()
    close_s = time.monotonic() - t_close
    w.deleteLater()
    app.processEvents()
    tmp.cleanup()
    ctrl = _finish_control(control)
    g = np.asarray(gaps[1:] or [0.0])
    # a GUI stall during which the idle control process also stalled (> 25 ms) is the
    # machine's doing; the others are the GUI's own
    ctrl_long = ctrl.pop("long_gaps", [])
    own = [b - a for a, b in long_gaps
           if not any(ca < b and a < cb for ca, cb in ctrl_long)]
    return {"run": label, "model": model if not model.endswith(".pth") else "tp-r-a3 (random weights)",
            "attention": attention, "seconds": round(elapsed, 2), "timer_firings": int(len(g)),
            "gap_max_ms": round(float(g.max()), 1), "gap_p99_ms": round(float(np.percentile(g, 99)), 1),
            "gap_p50_ms": round(float(np.percentile(g, 50)), 1),
            "gaps_over_50ms": int((g > 50).sum()),
            "gaps_over_50ms_not_in_control": len(own),
            "max_gap_not_in_control_ms": round(1e3 * max(own), 1) if own else None,
            "frames_shown": shown[0],
            "frames_processed": processed, "video_frames_played": (last_index or 0) - first_index,
            "dropped_by_pipeline": dropped, "close_s": round(close_s, 2),
            "restarts_at_end": restarts[0], "control_idle_process": ctrl,
            "description": c.engine.description if c.engine else ""}


def _start_control(seconds: float):
    """An idle Qt process with the same 5 ms timer, run alongside: its gaps are the stalls
    the machine itself causes (other programs' load), not the GUI's."""
    import subprocess
    proc = subprocess.Popen([sys.executable, __file__, "--control", str(seconds + 5)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()                       # "ready": its timer is running
    return proc


def _finish_control(proc) -> dict:
    try:
        out, _ = proc.communicate(timeout=120)
        return json.loads(out.strip().splitlines()[-1])
    except Exception as e:                      # noqa: BLE001 - the control is optional
        proc.kill()
        return {"error": str(e)}


def _control(seconds: float) -> None:
    import numpy as np
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])
    clock = QElapsedTimer()
    clock.start()
    last, gaps = [clock.nsecsElapsed()], []
    long_gaps: list[tuple[float, float]] = []
    last_mono = [time.monotonic()]

    def tick() -> None:
        now = clock.nsecsElapsed()
        gap = (now - last[0]) / 1e6
        gaps.append(gap)
        last[0] = now
        mono = time.monotonic()
        if gap > 25:
            long_gaps.append((last_mono[0], mono))
        last_mono[0] = mono
        if len(gaps) == 1:
            print("ready", flush=True)
    t = QTimer()
    t.setTimerType(Qt.TimerType.PreciseTimer)
    t.setInterval(5)
    t.timeout.connect(tick)
    t.start()
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    g = np.asarray(gaps[1:] or [0.0])
    print(json.dumps({"gap_max_ms": round(float(g.max()), 1),
                      "gap_p99_ms": round(float(np.percentile(g, 99)), 1),
                      "gaps_over_50ms": int((g > 50).sum()), "long_gaps": long_gaps}))


def _cpu_pressure() -> str:
    """Linux PSI: the share of time some task waited for a CPU (other programs' load)."""
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", default="auto,tp-r-a3,tp-r-a3+attention",
                    help="comma list of auto | mediapipe | tp-r-a3 | tp-r-a3+attention")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--control", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.control:
        _control(args.control)
        return 0
    if not Path(args.video).exists():
        raise SystemExit(f"{args.video}: not found (pass --video)")

    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([sys.argv[0]])
    results = []
    with tempfile.TemporaryDirectory() as d:
        ckpt = None
        for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
            attention = run.endswith("+attention")
            name = run.removesuffix("+attention")
            if name == "tp-r-a3":
                ckpt = ckpt or random_tp_r_a3(Path(d))
                model = str(ckpt)
            else:
                model = name
            r = measure(app, args.video, model, attention, args.seconds, run)
            results.append(r)
            print(f"{run:<20} max {r['gap_max_ms']:6.1f} ms  p99 {r['gap_p99_ms']:5.1f} ms  "
                  f"p50 {r['gap_p50_ms']:4.1f} ms  >50ms: {r['gaps_over_50ms']:3d}  "
                  f"shown {r['frames_shown']:4d}  processed {r['frames_processed']:4d}  "
                  f"in {r['seconds']:.1f} s  (close {r['close_s']:.2f} s)", flush=True)
            print(f"{'  own stalls':<20} {r['gaps_over_50ms_not_in_control']} gaps > 50 ms "
                  f"while the control ran smoothly"
                  + (f" (longest {r['max_gap_not_in_control_ms']} ms)"
                     if r['max_gap_not_in_control_ms'] else ""), flush=True)
            ctrl = r["control_idle_process"]
            if "gap_max_ms" in ctrl:
                print(f"{'  idle control':<20} max {ctrl['gap_max_ms']:6.1f} ms  p99 "
                      f"{ctrl['gap_p99_ms']:5.1f} ms             >50ms: {ctrl['gaps_over_50ms']:3d}"
                      f"   (a bare Qt process at the same time: the machine's own stalls)",
                      flush=True)
    meta = {"qt_platform": QApplication.platformName(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "cpu_pressure": _cpu_pressure(), "video": Path(args.video).name, "goal_ms": 50}
    print(json.dumps(meta))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
