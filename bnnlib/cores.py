"""Sharing the cores: a run on the CPU uses the cores that the rest of the machine leaves free.

torch starts one thread per core, and each GEMM waits for its slowest thread: when another
process takes a core, the thread that shares it holds back every step. Measured here
(``benchmarks/train_speed.py``, BP tanh, MNIST): one core of two taken by a busy loop made an
epoch 2.5× slower with two threads and 1.9× with one; two runs at once, two threads each,
took 1.34× as long together as one after the other, two single-threaded ones 0.93×.

So an in-process run asks, about four times a second between batches, how busy the rest of the
machine was since it last asked (``/proc/stat``'s busy time less this process's own CPU time)
and uses the cores left, at least one and at most the threads it started with. Two runs
started together settle on one thread each; when one ends, the other takes both cores again.
The thread count must change no number, and on the AMD EPYC machines of the long run it does
not (``tests/test_cores.py`` changes it every batch). On an Intel Xeon (AVX512) it does: MKL's
float32 GEMM of 128 × 784 by 784 × 700 — the first layer's forward pass — adds its sums in
another order with two threads than with one. So before a run adapts its threads it checks,
once per process, that this processor's GEMMs of the run's own shapes give the same bits at one
thread and at all of them (:func:`thread_count_changes_sums`, well under a second); where they
do not, the run keeps the thread count it started with, and its numbers are those of that count
(runs record it, ``threads``).

Not adapted: a process started with one thread (the ``--workers`` processes), a CUDA run, a
run where ``OMP_NUM_THREADS`` is set (the user's count wins), machines without
``/proc/stat``, and processors whose sums depend on the thread count.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from functools import lru_cache
from typing import Callable, Optional, Sequence, Tuple

import torch

#: seconds between two looks at the machine (a look reads one line of /proc/stat: ~20 µs; a batch
#: takes 3–30 ms). Short, so that two runs started together settle within a few batches
INTERVAL_S = 0.25
#: another process's use counts as a taken core from this fraction of one on (a shell, an editor
#: or the kernel's own work stay under it)
TAKEN_FROM = 0.6
_PROC_STAT = Path("/proc/stat")


_AUTOGROUP = Path("/proc/self/autogroup")


def session_priority(autogroup: Path = _AUTOGROUP) -> Optional[int]:
    """Make ``nice`` mean what it says for a process that leads its own session (started with
    ``setsid``, as ``make long-run`` starts the long run): give its session's scheduling group
    the process's nice value, and return it (None where nothing was changed).

    Linux with autogroups (``/proc/sys/kernel/sched_autogroup_enabled``) shares the CPU between
    sessions first and by nice value only within one: a ``nice -n 19`` long run in a session of
    its own took as much of the two cores as a foreground test run in another (measured here:
    each of two such workers ~55 % beside pytest's ~55 %). The session's group has a nice value of
    its own; set to the process's, a foreground session gets the cores first again. Only a session
    leader does it, so a run started from a terminal never lowers the terminal's other work."""
    niceness = os.nice(0)
    if niceness <= 0 or os.getsid(0) != os.getpid() or not autogroup.exists():
        return None
    try:
        autogroup.write_text(str(niceness))
    except OSError:  # not permitted (another user's group) or no autogroups: nice stays per session
        return None
    return niceness


def machine_busy_seconds() -> Optional[float]:
    """CPU seconds every process of the machine has run so far (all cores), or None where
    ``/proc/stat`` cannot be read. Idle and I/O wait are not busy; steal is (a core the
    hypervisor gave away is not ours either)."""
    try:
        fields = _PROC_STAT.read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    except (OSError, ValueError, IndexError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def threads_left(cores: int, others_busy: float, most: int) -> int:
    """The threads for this run when the rest of the machine keeps ``others_busy`` cores busy:
    the cores not taken (a core counts as taken from ``TAKEN_FROM`` of its time on), between
    one and ``most``."""
    taken = math.floor(others_busy + 1 - TAKEN_FROM)
    return max(1, min(most, cores - taken))


def _gemms(sizes: Sequence[int], batch_sizes: Sequence[int], members: int) -> list:
    """The float32 batched GEMMs a run of layer ``sizes`` computes (as thunks), on fixed random
    data: each layer's forward pass at every batch size, and, at the first (training) one, the
    error sent down (by the weights or a feedback matrix from the output) and the weight update
    (``baddbmm`` on the transposed input, as :mod:`bnnlib.trainers` computes it)."""
    g = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(members, *shape, generator=g)  # noqa: E731
    thunks = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = rand(fan_in, fan_out)
        for m in batch_sizes:
            thunks.append(lambda x=rand(m, fan_in), w=w: torch.bmm(x, w))
        m = batch_sizes[0]
        x, delta, feedback = rand(m, fan_in), rand(m, fan_out), rand(sizes[-1], fan_in)
        thunks.append(lambda delta=delta, w=w: torch.bmm(delta, w.transpose(1, 2)))
        thunks.append(lambda error=rand(m, sizes[-1]), feedback=feedback: torch.bmm(error, feedback))
        thunks.append(lambda x=x, delta=delta, w=w: w.clone().baddbmm_(x.transpose(1, 2), delta, alpha=-1.0))
    return thunks


@lru_cache(maxsize=None)
def thread_count_changes_sums(sizes: Tuple[int, ...], batch_sizes: Tuple[int, ...], members: int,
                              threads: int) -> bool:
    """Whether one of the float32 GEMMs of a run with layer ``sizes`` (input to output), batch
    sizes ``batch_sizes`` (training first, then evaluation) and ``members`` members gives other
    bits at ``threads`` threads than at one on this processor (measured once per process)."""
    gemms = _gemms(sizes, batch_sizes, members)
    started = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = [gemm() for gemm in gemms]
        torch.set_num_threads(threads)
        return not all(torch.equal(a, gemm()) for a, gemm in zip(alone, gemms))
    finally:
        torch.set_num_threads(started)


class CoreShare:
    """Between batches, :meth:`tick` sets torch's thread count to the cores the rest of the
    machine leaves free (see the module's text). ``clock``, ``busy`` and ``own`` are the wall
    clock, :func:`machine_busy_seconds` and this process's CPU seconds (replaced by tests)."""

    def __init__(self, most: Optional[int] = None, cores: Optional[int] = None, interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 busy: Callable[[], Optional[float]] = machine_busy_seconds,
                 own: Callable[[], float] = time.process_time):
        self.most = most if most is not None else torch.get_num_threads()
        self.cores = cores if cores is not None else len(os.sched_getaffinity(0))
        self.interval, self.clock, self.busy, self.own = interval, clock, busy, own
        self.changes = 0  # how often the thread count was changed (the tests read it)
        self._last = None

    @classmethod
    def for_run(cls, device: str, sizes: Sequence[int], batch_sizes: Sequence[int],
                members: int) -> Optional["CoreShare"]:
        """The share for a run on ``device`` (layer ``sizes``, ``batch_sizes`` and ``members`` as
        :func:`thread_count_changes_sums` takes them: ``BinaryMLP.gemm_shapes``), or None where
        nothing is to be adapted."""
        if device != "cpu" or "OMP_NUM_THREADS" in os.environ or torch.get_num_threads() <= 1 \
                or machine_busy_seconds() is None:
            return None
        if thread_count_changes_sums(tuple(sizes), tuple(batch_sizes), members, torch.get_num_threads()):
            return None
        return cls()

    def restore(self) -> None:
        """Back to the threads the run started with (a notebook that trained a run goes on at full speed)."""
        if torch.get_num_threads() != self.most:
            torch.set_num_threads(self.most)

    def tick(self) -> None:
        now = self.clock()
        if self._last is not None and now - self._last[0] < self.interval:
            return
        busy, own = self.busy(), self.own()
        if busy is None:
            return
        if self._last is not None:
            then, busy_then, own_then = self._last
            others = max(0.0, (busy - busy_then) - (own - own_then)) / max(now - then, 1e-9)
            threads = threads_left(self.cores, others, self.most)
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
                self.changes += 1
        self._last = (now, busy, own)
