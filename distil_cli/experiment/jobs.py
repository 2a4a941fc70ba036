"""``distil experiment --jobs N``: the grid's N shards as N processes side by side, dealt over the GPUs.

Each process is ``distil experiment SPEC --out OUT --shard K/N`` (its own log under ``OUT/logs/``),
pinned to one visible GPU in turn (``CUDA_VISIBLE_DEVICES``), so N = 2 or 3 x the GPUs runs two
or three processes per GPU: a small student leaves most of a GPU idle, and on an H200 two side by
side ran twice the runs per minute of one, three about 1.5 times that again (docs/method.md, Cost).
On a CPU the processes share the cores (``OMP_NUM_THREADS`` split between them). A shard that ran
out of GPU memory beside the others runs again alone once they are done. The caller writes the
tables once every shard is done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from distil_cli.errors import OUT_OF_MEMORY, DistilError

POLL_SECONDS = 2.0


def run(spec_path: Path, out: Path, spec, config: Path | None, jobs: int, say: Callable[[str], None] = print) -> list:
    """The whole grid as ``jobs`` shard processes; says where each runs and the runs done as they finish.
    Returns the grid's cells (all done) for the tables; a failed shard raises after the others finish."""
    from distil_cli.experiment import grid

    cells = grid.plan(spec, out)
    total = len(cells)
    test_ids = {r["id"] for r in grid.read_split(spec, spec.test_split)}  # read once, not at every poll
    if jobs > total:  # a shard is a set of pairs or, with more shards than pairs, of runs (grid.shard_cells)
        say(f"--jobs {jobs}: the grid has {total} run(s), so {total} process(es)")
        jobs = total
    done: set[int] = set()  # a run once done stays done: only the others are looked at again
    shown = [-1]

    def progress() -> None:
        done.update(i for i, c in enumerate(cells) if i not in done and grid.cell_state(c, test_ids) == "done")
        if len(done) != shown[0]:
            shown[0] = len(done)
            say(f"[{len(done)}/{total}] runs done")

    gpus = visible_gpus()  # said before they start (start places shard K the same way)
    places = [f"GPU {gpu_for(k, gpus)}" if gpus else "the CPU" for k in range(1, jobs + 1)]
    where = ", ".join(f"{k}/{jobs} on {place}" for k, place in enumerate(places, start=1))
    say(f"{jobs} processes: {where}; logs in {out / 'logs'}")
    # SIGTERM stops the shards from before the first one starts: a signal between the last start and the
    # wait would otherwise kill this process by default, its shards only through their death signal
    previous, started = _raise_on_sigterm(), []
    try:
        started = start(spec_path, out, config, jobs)
        failed = wait(started, progress)
        if failed and jobs > 1 and all(ran_out_of_memory(job.log) for job in failed):
            # beside the others a shard's peak did not fit; alone on its GPU it may: its runs that finished
            # are kept, so the rerun trains only the missing ones
            for job in failed:
                say(f"shard {job.shard}/{jobs} ran out of GPU memory beside the others; its missing runs again, alone")
                started = start(spec_path, out, config, jobs, shards=[job.shard])
                if again := wait(started, progress):
                    raise failure(again, jobs)
        elif failed:
            raise failure(failed, jobs)
    except BaseException:
        stop(started)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return cells


def gpu_for(shard: int, gpus: list[str]) -> str:
    """The GPU of shard K (1-based): the visible GPUs in turn."""
    return gpus[(shard - 1) % len(gpus)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (none on a CPU)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


@dataclass
class Job:
    shard: int
    gpu: str | None
    log: Path
    process: subprocess.Popen
    stream: IO[bytes]


def command(spec: Path, out: Path, config: Path | None, shard: int, jobs: int) -> list[str]:
    """The command line of one shard process (the same interpreter and settings file)."""
    head = [sys.executable, "-m", "distil_cli"] + (["--config", str(config)] if config else [])
    return head + ["experiment", str(spec), "--out", str(out), "--shard", f"{shard}/{jobs}"]


def _environment(gpu: str | None, jobs: int) -> dict[str, str]:
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    else:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    return env


def _die_with_parent() -> None:
    """In the shard process, before it runs: SIGTERM when the parent dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so no shard outlives a killed ``--jobs`` process and races its rerun."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's own handlers are all there is
        pass


@contextmanager
def _sigterm_held():
    """While a shard is started and recorded, a SIGTERM is only recorded (``check_terminated`` after the
    block raises it): raised inside ``subprocess.Popen`` it would leave a forked shard that ``stop`` never
    sees (it then ends by its death signal, unreaped). A flag, not a signal mask: another thread of this
    process would take a signal the main thread blocks, and Python runs the handler in the main thread."""
    _HOLD[0] = True
    try:
        yield
    finally:
        _HOLD[0] = False


def start(spec: Path, out: Path, config: Path | None, jobs: int, shards: list[int] | None = None) -> list[Job]:
    """Start the N shard processes, shard K on the K-th visible GPU in turn (``jobs`` checked by the caller);
    ``shards``: only these (a retry: their logs are appended to)."""
    gpus = visible_gpus()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[Job] = []
    try:
        for shard in shards or range(1, jobs + 1):
            gpu = gpu_for(shard, gpus) if gpus else None
            log = logs / f"shard-{shard}-of-{jobs}.log"
            stream = open(log, "ab" if shards else "wb")  # noqa: SIM115 (closed in wait / stop)
            with _sigterm_held():
                process = subprocess.Popen(
                    command(spec, out, config, shard, jobs),
                    env=_environment(gpu, jobs),
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
                )
                started.append(Job(shard, gpu, log, process, stream))
            check_terminated()
    except BaseException:
        stop(started)
        raise
    return started


def wait(jobs: list[Job], progress: Callable[[], None]) -> list[Job]:
    """Wait for every process, calling ``progress`` every few seconds; on any interruption (Ctrl-C, or
    SIGTERM to this process alone, e.g. a scheduler's: the caller makes it raise) stop them all.
    Returns the processes that failed."""
    try:
        while any(job.process.poll() is None for job in jobs):
            check_terminated()
            progress()
            time.sleep(POLL_SECONDS)
        check_terminated()
        progress()
    except BaseException:
        stop(jobs)
        raise
    for job in jobs:
        job.stream.close()
    return [job for job in jobs if job.process.returncode != 0]


def failure(failed: list[Job], jobs: int) -> DistilError:
    """The one-line error of failed shards: the first one's last log line, where its log is."""
    job = failed[0]
    others = f" (and {len(failed) - 1} more shard(s))" if len(failed) > 1 else ""
    return DistilError(
        f"shard {job.shard}/{jobs} failed with exit code {job.process.returncode}{others}: "
        f"{last_line(job.log)} (whole log: {job.log}); the runs that finished are kept, rerun the same "
        "command to resume"
    )


def ran_out_of_memory(log: Path) -> bool:
    """Whether a failed shard's error was the GPU's memory (the CLI's one-line message, or torch's own)."""
    line = last_line(log)
    return line.startswith(OUT_OF_MEMORY) or "CUDA out of memory" in line


_TERMINATED: list[int] = []  # the SIGTERMs received while shards run
_HOLD = [False]  # True while a shard is being started: the handler records and does not raise


def _raise_on_sigterm():
    """Make SIGTERM raise SystemExit while the shards run (main thread only); returns the handler it replaced.

    The signal is also recorded, and ``check_terminated`` raises it again at safe points: a handler that
    raises while ``subprocess.Popen`` forks runs inside logging's at-fork hook, where Python prints the
    exception and drops it (the grid then ran to its end and exited 0)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _TERMINATED.clear()

    def terminate(signum, frame):
        _TERMINATED.append(signum)
        if not _HOLD[0]:
            raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, terminate)


def check_terminated() -> None:
    """Raise the SystemExit of a SIGTERM whose handler's exception was dropped."""
    if _TERMINATED:
        raise SystemExit(128 + _TERMINATED[0])


def stop(jobs: list[Job], grace: float = 30.0) -> None:
    """Terminate the processes still running (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    for job in jobs:
        if job.process.poll() is None:
            job.process.terminate()
    deadline = time.monotonic() + grace
    for job in jobs:
        try:
            job.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.process.kill()
            job.process.wait()
        job.stream.close()


def last_line(log: Path) -> str:
    """The last non-empty line of a log (a failed shard's one-line error), or a note that it is empty."""
    lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    return lines[-1].removeprefix("error: ") if lines else "its log is empty"
