"""`annotate --workers N` (and `--devices cuda:0,cuda:1`): worker processes on one machine.

Each worker is a fresh process (spawned: no inherited threads or CUDA state) that loads the
model once and takes inputs from a shared queue until none are left, writing each input's
outputs itself under the same rules as a single process (unique temporary names, a lock per
output, atomic renames). The parent draws the bars (overall, and one per worker for the
input it is on) and collects the results; a worker that dies takes only its current input
with it (reported as failed; its temporary files are removed).

Interrupts: workers ignore SIGINT; the parent, on Ctrl-C, SIGTERM or SIGHUP, sends them
SIGTERM, which each handles like Ctrl-C (removes its unfinished outputs), then reports.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import signal
import time
from pathlib import Path
from typing import Any, Callable

from ..io_utils import log
from ..threads import usable_cpus

PROGRESS_EVERY_S = 0.1


def _worker_main(wid: int, device: str | None, config: Any, if_locked: str, tasks: Any,
                 events: Any, n_workers: int = 1) -> None:
    """A worker process: load the model, then annotate inputs until the queue says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent decides; SIGTERM stops us
    from .signals import termination_as_interrupt
    from .job import (InputResult, annotate_one, busy_result, engine_config,
                      quiet_source_warnings)
    from .locks import OutputBusy
    from ..engine import build_engine
    from ..errors import StudioError
    with termination_as_interrupt(), quiet_source_warnings():
        current = None
        # one try around everything after the handler is installed: SIGTERM may arrive at
        # any point, also while the worker reports that it is ready
        try:
            try:
                import torch
                torch.set_num_threads(max(1, usable_cpus() // max(1, n_workers)))
                engine = build_engine(engine_config(config, device), progress=False)
            except StudioError as e:
                events.put(("engine_failed", wid, str(e)))
                return
            except Exception as e:                   # noqa: BLE001 - reported, not raised
                events.put(("engine_failed", wid, f"the model could not be loaded: {e}"))
                return
            events.put(("ready", wid, engine.pose_description))
            while True:
                task = tasks.get()
                if task is None:
                    break
                current = task
                path, outputs = task["path"], task["outputs"]
                events.put(("start", wid, task["key"], None))
                last = [0.0]

                def progress(done: int, total: int | None, key=task["key"]) -> None:
                    now = time.monotonic()
                    if now - last[0] >= PROGRESS_EVERY_S or (total and done >= total):
                        last[0] = now
                        events.put(("progress", wid, key, (done, total)))
                try:
                    result = annotate_one(engine, path, outputs, None, progress, config,
                                          if_locked=if_locked, skip_if_done=not config.force,
                                          print_warnings=False)
                except OutputBusy as e:
                    result = busy_result(path, e, if_locked)
                except StudioError as e:
                    result = InputResult(path, "failed", message=str(e))
                except KeyboardInterrupt:
                    raise
                except Exception as e:               # noqa: BLE001 - isolate each input
                    result = InputResult(path, "failed", message=f"unexpected error: {e!r}")
                events.put(("result", wid, task["key"], result))
                current = None
        except KeyboardInterrupt as e:
            if current is not None:
                from .signals import interrupt_reason
                events.put(("result", wid, current["key"],
                            InputResult(current["path"], "cancelled",
                                        message=f"interrupted ({interrupt_reason(e)})")))
        finally:
            events.put(("exit", wid, None, None))


def run_workers(todo: list, config: Any, options: Any,
                record: Callable[[Any, Any], None]) -> None:
    from .job import InputResult, progress_bar

    devices = list(options.devices)
    n = options.workers or len(devices) or 1
    n = max(1, min(n, len(todo)))
    worker_devices = [devices[i % len(devices)] if devices else None for i in range(n)]
    ctx = mp.get_context("spawn")
    tasks = ctx.Queue()
    events = ctx.Queue()
    by_key = {b.key: b for b in todo}
    for b in todo:
        tasks.put({"path": b.path, "key": b.key, "outputs": b.outputs})
    for _ in range(n):
        tasks.put(None)
    procs = []
    for wid in range(n):
        p = ctx.Process(target=_worker_main, name=f"annotate-worker-{wid}",
                        args=(wid, worker_devices[wid], config, options.if_locked, tasks,
                              events, n), daemon=True)
        p.start()
        procs.append(p)
    log(f"{n} worker processes" + (f" on {', '.join(d for d in worker_devices)}"
                                   if devices else "") + f" for {len(todo)} input(s)")
    overall = progress_bar(None, "all inputs", 0, True)
    bars: dict[int, Any] = {}
    frames_seen: dict[str, int] = {}
    current: dict[int, str | None] = {w: None for w in range(n)}
    finished: set[str] = set()
    exited: set[int] = set()
    described = False
    engine_errors: list[str] = []

    def close_bar(wid: int) -> None:
        bar = bars.pop(wid, None)
        if bar is not None:
            bar.close()

    def handle(event: tuple) -> None:
        nonlocal described
        kind, wid, key, payload = (event + (None,))[:4]
        if kind == "ready":
            if not described:
                log(f"pose model: {key}")
                log(f"detector: {config.detector}, smoothing: {config.smoothing}")
                described = True
        elif kind == "engine_failed":
            log(f"error: worker {wid}: {key}")
            engine_errors.append(key)
            exited.add(wid)
        elif kind == "start":
            current[wid] = key
            close_bar(wid)
            bars[wid] = progress_bar(None, Path(by_key[key].path).name[:30], 1 + wid, False)
        elif kind == "progress":
            done, total = payload
            bar = bars.get(wid)
            if bar is not None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(done - bar.n)
            overall.update(done - frames_seen.get(key, 0))
            frames_seen[key] = done
        elif kind == "result":
            close_bar(wid)
            current[wid] = None
            if key not in finished:
                finished.add(key)
                if payload.status == "failed":
                    log(f"error: {payload.message}")
                record(by_key[key], payload)
        elif kind == "exit":
            exited.add(wid)

    def pump(timeout: float) -> None:
        try:
            handle(events.get(timeout=timeout))
        except queue.Empty:
            pass
        while True:
            try:
                handle(events.get_nowait())
            except queue.Empty:
                return

    try:
        while len(finished) < len(todo):
            pump(0.2)
            for wid, p in enumerate(procs):
                if wid not in exited and not p.is_alive() and p.exitcode is not None:
                    pump(0.0)                        # its last words first
                    if wid in exited:
                        continue
                    exited.add(wid)
                    _remove_parts(todo, p.pid)
                    key = current.get(wid)
                    if key is not None and key not in finished:
                        finished.add(key)
                        log(f"error: worker {wid} died (exit code {p.exitcode}) on {key}")
                        record(by_key[key], InputResult(
                            by_key[key].path, "failed",
                            message=f"the worker process died (exit code {p.exitcode})"))
                        close_bar(wid)
            if len(exited) == n and len(finished) < len(todo):
                pump(0.2)
                for key, b in by_key.items():
                    if key not in finished:
                        finished.add(key)
                        why = f" ({engine_errors[0]})" if engine_errors else ""
                        record(b, InputResult(b.path, "failed",
                                              message=f"not run: no worker could start{why}"))
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                p.terminate()                         # SIGTERM: each cleans up like Ctrl-C
        deadline = time.monotonic() + 20
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            try:
                pump(0.1)
            except KeyboardInterrupt:
                continue
        pump(0.0)
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(1)
            _remove_parts(todo, p.pid)
        for b in todo:
            if b.key not in finished and current and b.key in current.values():
                record(b, InputResult(b.path, "cancelled", message="interrupted"))
        raise
    finally:
        for bar in list(bars.values()):
            bar.close()
        overall.close()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(1)
        tasks.cancel_join_thread()
        events.cancel_join_thread()


def _remove_parts(todo: list, pid: int | None) -> None:
    """A worker that died cannot remove its temporary files: they carry its pid."""
    from .job import remove_output
    if pid is None:
        return
    folders = {p.parent for b in todo for p in b.outputs.values()}
    for folder in folders:
        for part in folder.glob(f"*.{pid}-*.part"):
            try:
                remove_output(part)
            except OSError:
                pass
