"""`annotate --ray [ADDRESS]`: one Ray task per input on a pool of worker actors.

Ray is the engine: it places the actors on the cluster's nodes (one GPU each with
`--device cuda`), restarts an actor whose process or node dies and retries the task it was
running (`--retries`, bounded), and carries results back. Each actor loads the model once
and writes its inputs' outputs itself into the shared `--out` folder, under the same rules
as a local run (unique temporary names, a lock per output, atomic renames), so the files
are the same bytes as a single-process run's. The driver hands each idle actor the next
input (Ray's ActorPool pattern) and draws the same bars and summary.

Paths: the actors work in the driver's current folder (it must exist on every node: shared
storage, mounted at the same path) so relative inputs, `--out` and model files mean the
same everywhere. See docs/scaling.md.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from ..io_utils import log
from ..errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.25


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install -e '.[distributed]' (or pip install "
                         "'ray[client]')") from None
    return ray


class _Progress:
    """A tiny actor the workers report frame counts to; the driver reads it for the bars."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[int, int | None]] = {}

    def update(self, key: str, done: int, total: int | None) -> None:
        self.state[key] = (done, total)

    def snapshot(self) -> dict[str, tuple[int, int | None]]:
        return dict(self.state)


class _Annotator:
    """A Ray worker actor: the model loaded once, then one `annotate` call per input."""

    def __init__(self, config: Any, device: str | None, cwd: str, progress: str,
                 if_locked: str) -> None:
        import logging

        import ray
        if os.path.isdir(cwd):
            os.chdir(cwd)
        logging.getLogger("core.video").setLevel(logging.ERROR)
        from .job import engine_config
        from ..engine import build_engine
        self.config = config
        self.if_locked = if_locked
        self.progress = ray.get_actor(progress)    # by name: a restarted actor finds it too
        self.error: str | None = None
        self.engine = None
        try:
            self.engine = build_engine(engine_config(config, device), progress=False)
        except Exception as e:            # noqa: BLE001 - reported per input
            self.error = str(e)

    def describe(self) -> str:
        return self.engine.pose_description if self.engine is not None else f"error: {self.error}"

    def annotate(self, path: str, key: str, outputs: dict) -> Any:
        from .locks import OutputBusy
        from .job import InputResult, annotate_one, busy_result
        from ..errors import StudioError
        if self.engine is None:
            return InputResult(path, "failed", message=f"the model could not be loaded on "
                                                       f"{os.uname().nodename}: {self.error}")
        last = [0.0]

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= POLL_S or (total and done >= total):
                last[0] = now
                self.progress.update.remote(key, done, total)
        try:
            return annotate_one(self.engine, path, outputs, None, progress, self.config,
                                if_locked=self.if_locked, skip_if_done=not self.config.force,
                                print_warnings=False)
        except OutputBusy as e:
            return busy_result(path, e, self.if_locked)
        except StudioError as e:
            return InputResult(path, "failed", message=str(e))
        except Exception as e:                    # noqa: BLE001 - isolate each input
            return InputResult(path, "failed", message=f"unexpected error: {e!r}")


def _init(ray: Any, address: str | None) -> bool:
    """Connect (or start a local Ray); True when this call started the connection, so the
    run shuts it down again."""
    if ray.is_initialized():
        return False
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)}}
    kwargs: dict[str, Any] = {"runtime_env": env, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        kwargs["include_dashboard"] = False
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"--ray {address or ''}: cannot connect to Ray ({e})".replace(
            "--ray :", "--ray:")) from None
    return True


def run_ray(todo: list, config: Any, options: Any,
            record: Callable[[Any, Any], None]) -> None:
    from .job import InputResult, progress_bar
    from .signals import reinstall
    ray = import_ray()
    started = _init(ray, options.ray or None)
    reinstall()              # ray.init replaced our SIGTERM handler with one that just exits
    try:
        _run(ray, todo, config, options, record, InputResult, progress_bar)
    finally:
        if started:
            ray.shutdown()


def _run(ray, todo, config, options, record, InputResult, progress_bar) -> None:
    gpu = str(config.device).startswith("cuda")
    cpus_total = int(ray.cluster_resources().get("CPU", 1))
    gpus_total = int(ray.cluster_resources().get("GPU", 0))
    if gpu and gpus_total < 1:
        raise InputError("--ray with --device cuda: the Ray cluster has no GPU")
    n = options.workers or (gpus_total if gpu else cpus_total)
    n = max(1, min(n, len(todo)))
    retries = options.retries
    import uuid
    progress_name = f"transpose-studio-progress-{uuid.uuid4().hex}"
    progress = ray.remote(num_cpus=0)(_Progress).options(name=progress_name).remote()
    actor_cls = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_restarts=retries,
                           max_task_retries=retries)(_Annotator)
    device = "cuda" if gpu else config.device        # Ray sets CUDA_VISIBLE_DEVICES per actor
    actors = [actor_cls.remote(config, device, os.getcwd(), progress_name, options.if_locked)
              for _ in range(n)]
    log(f"Ray: {n} worker actor(s) on a cluster of {cpus_total} CPU(s)"
        f"{f' and {gpus_total} GPU(s)' if gpus_total else ''} for {len(todo)} input(s)")
    overall = progress_bar(None, "all inputs", 0, True)
    bars: dict[str, Any] = {}
    frames_seen: dict[str, int] = {}
    pending: dict[Any, tuple[Any, Any]] = {}          # task ref -> (item, actor)
    queue = list(todo)
    idle = list(actors)
    described = False
    try:
        first_description = actors[0].describe.remote()
        while queue or pending:
            while queue and idle:
                item, actor = queue.pop(0), idle.pop(0)
                ref = actor.annotate.remote(item.path, item.key, item.outputs)
                pending[ref] = (item, actor)
                bars[item.key] = progress_bar(None, Path(item.path).name[:30],
                                               1 + len(bars) % max(1, n), False)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            if not described:
                done_desc, _ = ray.wait([first_description], timeout=0)
                if done_desc:
                    log(f"pose model: {ray.get(first_description)}")
                    log(f"detector: {config.detector}, smoothing: {config.smoothing}")
                    described = True
            _draw(ray, progress, bars, overall, frames_seen)
            for ref in ready:
                item, actor = pending.pop(ref)
                try:
                    result = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayError as e:
                    # Ray already restarted the actor and retried the task `retries` times
                    result = InputResult(item.path, "failed",
                                         message=f"failed on Ray after {retries} retries: "
                                                 f"{_short(e)}")
                    if not isinstance(e, ray.exceptions.RayActorError):
                        idle.append(actor)
                bar = bars.pop(item.key, None)
                if bar is not None:
                    bar.close()
                overall.update(max(0, result.frames - frames_seen.get(item.key, 0)))
                frames_seen[item.key] = result.frames
                if result.status == "failed":
                    log(f"error: {result.message}")
                record(item, result)
            if not idle and not pending and queue:
                for item in queue:
                    record(item, InputResult(item.path, "failed",
                                             message="not run: every Ray worker died"))
                queue.clear()
    except KeyboardInterrupt as e:
        from .job import clean_unfinished
        from .signals import interrupt_reason
        # A running task of a (sync) actor cannot be interrupted: stop the actors outright,
        # then remove what they left unfinished (their locks go with their processes).
        for a in actors:
            ray.kill(a, no_restart=True)
        for item, _ in pending.values():
            clean_unfinished(item.outputs, wait_s=15)
            finished = all(p.exists() for p in item.outputs.values())
            record(item, InputResult(item.path, "done" if finished else "cancelled",
                                     message="finished while stopping" if finished else
                                     f"interrupted ({interrupt_reason(e)})"))
        raise
    finally:
        for bar in bars.values():
            bar.close()
        overall.close()
        for a in actors:
            ray.kill(a, no_restart=True)
        ray.kill(progress)


def _draw(ray, progress, bars, overall, frames_seen) -> None:
    try:
        state = ray.get(progress.snapshot.remote(), timeout=2)
    except Exception:                                     # noqa: BLE001 - bars only
        return
    for key, (done, total) in state.items():
        bar = bars.get(key)
        if bar is None:
            continue
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        overall.update(max(0, done - frames_seen.get(key, 0)))
        frames_seen[key] = done


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
