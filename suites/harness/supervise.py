"""Keep a run's worker processes within this machine and tied to the run (issue #30).

- Capacity: how many cells fit at once, from this machine's cores and free memory and what each
  experiment declares (`Experiment.cpus`, `memory_gb`). Every executor that starts processes here
  admits cells within it; a cluster's own scheduler places cells elsewhere.
- Ownership: every process a run starts carries a marker in its environment (host, driver pid and
  start time, results folder). Workers end themselves when the driver is gone; the driver ends what
  is left when it exits for any reason; and since a driver killed with SIGKILL runs no cleanup, the
  next run of the same folder names and ends its leftovers.
- Memory: a cell's peak RSS is measured, and a cell over its declared `memory_gb` stops with an
  error naming the experiment and the peak before it can take the machine down.

Process facts come from psutil and Linux's /proc; without psutil the ownership checks are skipped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with the suites' extras
    psutil = None

RUN_ENV = "CLAIMBENCH_RUN"
DRIVER_FILE = ".claimbench-driver.json"  # in the results folder while a driver runs (or was killed)
PEAKS_FILE = "peak_memory.json"
# A cell that declares no memory: one Python process with torch and a small model.
UNDECLARED_CELL_MEMORY_GB = 2.0
DRIVER_MEMORY_GB = 1.0  # kept free for the driver itself
GB = 2**30
DRIVER_GONE_EXIT = 75
POLL_S = 0.1
# Past its limit a cell gets a Python exception first; a worker stuck in native code that stays
# over for this long is killed outright (never the driver).
HARD_KILL_AFTER_S = 5.0


def cell_memory_gb(experiment: Any) -> float:
    return experiment.memory_gb or UNDECLARED_CELL_MEMORY_GB


@dataclass(frozen=True)
class Capacity:
    """What may run at once: total cores and GB of the cells running, and at most `slots` cells."""

    cpus: float = math.inf
    memory_gb: float = math.inf
    slots: int | None = None

    @classmethod
    def of_this_machine(cls, slots: int | None = None) -> Capacity:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if psutil is not None:
            free = psutil.virtual_memory().available / GB
        else:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / GB
        return cls(cpus, max(free - DRIVER_MEMORY_GB, 0.0), slots)

    def admits(self, experiment: Any, running: Sequence[Any]) -> bool:
        # One cell always runs, even one that declares more than the machine has: it would fail
        # loudly on its own, where refusing it would stall the run.
        if not running:
            return True
        if self.slots is not None and len(running) >= self.slots:
            return False
        cpus = sum(r.cpus for r in running) + experiment.cpus
        memory = sum(cell_memory_gb(r) for r in running) + cell_memory_gb(experiment)
        return cpus <= self.cpus and memory <= self.memory_gb

    def most_at_once(self, experiments: Sequence[Any]) -> int:
        """How many cells of the smallest experiment fit (the most processes a run can need)."""
        fits = [min(self.cpus // max(e.cpus, 1), self.memory_gb // cell_memory_gb(e)) for e in experiments]
        most = max([1, *(int(f) for f in fits if math.isfinite(f))]) if fits else 1
        return min(most, self.slots) if self.slots else most

    def describe(self) -> str:
        return f"{self.cpus:g} cores and {self.memory_gb:.1f} GB free"


def run_within(capacity: Capacity, pending, submit, wait_any, done, running: dict) -> None:
    """Submit `pending` (experiment, item) pairs in order, never more at once than `capacity` admits.

    `submit(e, item)` returns a handle, `wait_any(handles)` the handles that finished, and
    `done(handle, item)` collects one. `running` (handle -> (e, item)) belongs to the caller, so that
    an interrupted run can still cancel what is in flight.
    """
    queue = list(pending)[::-1]
    while queue or running:
        while queue and capacity.admits(queue[-1][0], [e for e, _ in running.values()]):
            e, item = queue.pop()
            running[submit(e, item)] = (e, item)
        for handle in wait_any(list(running)):
            e, item = running.pop(handle)
            done(handle, item)


# --- ownership -------------------------------------------------------------------------------


def _started(pid: int) -> float | None:
    """The start time of a running process; None for one that is gone (or a zombie, which has ended)."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except (psutil.Error, AttributeError):
        return None


def _alive(pid: int, started: float | None) -> bool:
    """Whether the process that had this pid and start time still runs (not a reused pid)."""
    now = _started(pid)
    return now is not None and started is not None and abs(now - started) < 0.01


def _marker(folder: Path) -> str:
    return f"{socket.gethostname()}|{os.getpid()}|{_started(os.getpid())!r}|{folder.resolve()}"


def _parse(marker: str) -> tuple[str, int, float | None, str]:
    host, pid, started, folder = marker.split("|", 3)
    return host, int(pid), None if started == "None" else float(started), folder


def _describe(process: Any) -> str:
    with contextlib.suppress(psutil.Error):
        return f"pid {process.pid} ({' '.join(process.cmdline())[:120]})"
    return f"pid {process.pid}"


def end_processes(processes: list, grace_s: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after `grace_s`."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def marked_processes(folder: Path) -> list:
    """Processes of this host whose marker names `folder`, except this process and its ancestors."""
    if psutil is None:
        return []
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    host, wanted = socket.gethostname(), str(folder.resolve())
    found = []
    for process in psutil.process_iter():
        if process.pid in mine:
            continue
        try:
            marker = process.environ().get(RUN_ENV)
        except psutil.Error:
            continue
        if marker and _parse(marker)[0] == host and _parse(marker)[3] == wanted:
            found.append(process)
    return found


_ACTIVE: list[RunGuard] = []


def active_guard() -> RunGuard | None:
    return _ACTIVE[-1] if _ACTIVE else None


class RunGuard:
    """Holds a results folder for one driver; everything the run started ends with it.

    On entry: refuses a folder that a live driver holds, names and ends the leftovers of a killed
    one, and reminds of Slurm jobs it had submitted. While held, child processes inherit the marker.
    On exit (normal, exception, Ctrl-C): ends this driver's marked descendants.
    """

    def __init__(self, folder: Path, say=None):
        self.folder = Path(folder)
        self.path = self.folder / DRIVER_FILE
        self.say = say or (lambda text: print(text, file=sys.stderr))
        self.slurm_jobs: list[str] = []

    def __enter__(self) -> RunGuard:
        from .runner import UsageError

        self.folder.mkdir(parents=True, exist_ok=True)
        earlier = self._read()
        mine = earlier and earlier.get("host") == socket.gethostname() and earlier.get("pid") != os.getpid()
        if mine and _alive(earlier["pid"], earlier.get("started")):
            raise UsageError(f"another claimbench run (pid {earlier['pid']}) is writing {self.folder}; "
                             "wait for it to finish or stop it, then rerun")  # fmt: skip
        leftovers = marked_processes(self.folder)
        if leftovers:
            names = "\n  ".join(_describe(p) for p in leftovers)
            self.say(f"claimbench: ending {len(leftovers)} leftover process(es) of an earlier run of "
                     f"{self.folder}:\n  {names}")  # fmt: skip
            end_processes(leftovers)
        if earlier and earlier.get("slurm_jobs"):
            self.say(f"claimbench: an earlier run of {self.folder} ended with Slurm jobs submitted; any still "
                     f"queued or running are not its own any more: scancel {' '.join(earlier['slurm_jobs'])}")  # fmt: skip
        self.saved = os.environ.get(RUN_ENV)
        os.environ[RUN_ENV] = _marker(self.folder)
        self._write()
        _ACTIVE.append(self)
        return self

    def add_slurm_jobs(self, ids: Sequence[str]) -> None:
        self.slurm_jobs += [i for i in ids if i not in self.slurm_jobs]
        self._write()

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self)
        try:
            if psutil is not None:
                marker = os.environ.get(RUN_ENV)
                # multiprocessing's resource tracker serves this process, not the run (a later run's
                # pool reuses it), and ends by itself with it.
                tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
                ours = []
                for child in psutil.Process().children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if child.pid != tracker and child.environ().get(RUN_ENV) == marker:
                            ours.append(child)
                if ours:
                    end_processes(ours)
        finally:
            if self.saved is None:
                os.environ.pop(RUN_ENV, None)
            else:
                os.environ[RUN_ENV] = self.saved
            self.path.unlink(missing_ok=True)

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _write(self) -> None:
        from .store import atomic_write_text

        doc = {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid()),
               "slurm_jobs": self.slurm_jobs}  # fmt: skip
        atomic_write_text(self.path, json.dumps(doc) + "\n")


_WORKER = {"is_worker": False, "watching": False}


def become_worker() -> None:
    """In a worker process: note it (memory limits may then kill it) and end it with its driver."""
    _WORKER["is_worker"] = True
    marker = os.environ.get(RUN_ENV)
    if _WORKER["watching"] or not marker or psutil is None:
        return
    host, pid, started, _ = _parse(marker)
    if host != socket.gethostname() or pid == os.getpid():
        return  # a driver on another host: its cluster's scheduler ends what it leaves behind
    _WORKER["watching"] = True

    def watch() -> None:
        while _alive(pid, started):
            time.sleep(0.5)
        os._exit(DRIVER_GONE_EXIT)  # the driver was killed: nobody will collect this cell

    threading.Thread(target=watch, name="claimbench-driver-watch", daemon=True).start()


def in_worker() -> bool:
    return _WORKER["is_worker"]


# --- memory ----------------------------------------------------------------------------------


class MemoryLimitExceeded(BaseException):
    """Raised into a cell over its declared memory; a BaseException, so a cell's own
    `except Exception` cannot swallow it."""


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so that it measures this cell alone."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class MemoryWatch:
    """Measures a cell's peak RSS; past `limit_gb` it raises MemoryLimitExceeded into the cell.

    In a worker, the whole process is the cell's (as under Slurm's `--mem`); in the driver
    (`--jobs 1`) the cell is what the process grew by, since the driver's own memory is not the cell's.
    """

    def __init__(self, limit_gb: float | None):
        self.limit_gb = limit_gb
        self.peak_kb = 0
        self.base_kb = 0
        self.exceeded = False
        self._stop = threading.Event()

    @property
    def peak_gb(self) -> float | None:
        return None if not self.peak_kb else max(self.peak_kb - self.base_kb, 0) / 2**20

    def _sample(self) -> int:
        return (_status_kb("VmHWM") if self.resets else _status_kb("VmRSS")) or 0

    def __enter__(self) -> MemoryWatch:
        self.resets = reset_peak_rss()
        self.base_kb = 0 if in_worker() else (_status_kb("VmRSS") or 0)
        self.peak_kb = self._sample()
        self.target = threading.get_ident()
        self.thread = threading.Thread(target=self._watch, name="claimbench-memory-watch", daemon=True)
        self.thread.start()
        return self

    def _over(self) -> bool:
        return self.limit_gb is not None and (self.peak_kb - self.base_kb) / 2**20 > self.limit_gb

    def _watch(self) -> None:
        over_since = None
        while not self._stop.wait(POLL_S):
            self.peak_kb = max(self.peak_kb, self._sample())
            if not self._over():
                continue
            if over_since is None:
                over_since = time.monotonic()
                self.exceeded = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.target),
                                                           ctypes.py_object(MemoryLimitExceeded))  # fmt: skip
            elif in_worker() and time.monotonic() - over_since > HARD_KILL_AFTER_S:
                print(f"claimbench: peak RSS {self.peak_gb:.2f} GB over the declared memory_gb={self.limit_gb}; "
                      "killing this worker", file=sys.stderr, flush=True)  # fmt: skip
                os.kill(os.getpid(), signal.SIGKILL)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        self.thread.join()
        # An exception sent just as the cell returned must not surface later, outside the cell.
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.target), None)
        self.peak_kb = max(self.peak_kb, self._sample())
        if self._over():
            self.exceeded = True
        if self.exceeded and exc_type is None:
            raise MemoryLimitExceeded

    def note(self, experiment: str) -> str:
        return (f"experiment {experiment} declares memory_gb={self.limit_gb:g} but this cell's peak RSS reached "
                f"{self.peak_gb:.2f} GB; it was stopped. Raise the experiment's memory_gb or shrink the cell.")  # fmt: skip


def record_peak(folder: Path, experiment: Any, cell_label: str, peak_gb: float | None) -> None:
    """Keep, per experiment, the largest peak RSS measured against what it declares (machine data)."""
    if peak_gb is None:
        return
    from .store import atomic_write_text

    path = Path(folder) / PEAKS_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    peaks = doc.setdefault("experiments", {})
    entry = peaks.get(experiment.name, {})
    if peak_gb >= entry.get("peak_rss_gb", -1.0):
        entry = {"peak_rss_gb": round(peak_gb, 3), "cell": cell_label}
    entry["declared_memory_gb"] = experiment.memory_gb
    peaks[experiment.name] = entry
    doc["about"] = "largest peak RSS of any cell, per experiment, in GB (machine data: correct memory_gb with it)"
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
