"""Sharing the cores: how many threads a run takes, and that the count changes no number."""

import pytest
import torch

from bnnlib import cores
from bnnlib.config import RunConfig
from bnnlib.cores import CoreShare, machine_busy_seconds, threads_left
from bnnlib.runner import DataOptions, build_training, train_group


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("machine_cores,others_busy,most,expected", [
    (2, 0.0, 2, 2),    # a quiet machine: every core
    (2, 0.59, 2, 2),   # a shell, an editor: not a taken core
    (2, 0.6, 2, 1),    # from 0.6 of a core on, it is taken
    (2, 1.0, 2, 1),    # a busy loop, or a second run
    (2, 2.0, 2, 1),    # everything taken: still one thread
    (4, 1.59, 4, 3),
    (4, 1.6, 4, 2),
    (16, 3.7, 16, 12),
    (16, 0.0, 8, 8),   # never more than the threads the run started with
])
def test_threads_left_are_the_cores_not_taken(machine_cores, others_busy, most, expected):
    assert threads_left(machine_cores, others_busy, most) == expected


def test_machine_busy_seconds_add_every_state_but_idle_and_io_wait(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    #              user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 50 10 15 500 25 2 3 5 0 0\n")
    monkeypatch.setattr(cores, "_PROC_STAT", stat)
    monkeypatch.setattr(cores.os, "sysconf", lambda name: 100)  # USER_HZ
    assert machine_busy_seconds() == pytest.approx((100 + 20 + 30 + 5 + 5 + 10) / 100)
    stat.write_text("not a stat file\n")
    assert machine_busy_seconds() is None
    monkeypatch.setattr(cores, "_PROC_STAT", tmp_path / "absent")
    assert machine_busy_seconds() is None


class FakeMachine:
    """A wall clock and two CPU counters the test advances by hand."""

    def __init__(self):
        self.now, self.busy, self.own = 0.0, 100.0, 10.0

    def advance(self, seconds, others_busy, own_busy):
        self.now += seconds
        self.busy += seconds * (others_busy + own_busy)
        self.own += seconds * own_busy


def test_a_share_gives_up_a_core_another_process_takes_and_takes_it_back():
    machine = FakeMachine()
    torch.set_num_threads(2)
    share = CoreShare(most=2, cores=2, interval=1.0, clock=lambda: machine.now, busy=lambda: machine.busy,
                      own=lambda: machine.own)
    share.tick()                       # the first look only takes the counters
    machine.advance(0.5, others_busy=1.0, own_busy=1.0)
    share.tick()                       # within the interval: no look
    assert torch.get_num_threads() == 2
    machine.advance(0.5, others_busy=1.0, own_busy=1.0)
    share.tick()                       # a busy loop took a core for a second
    assert torch.get_num_threads() == 1 and share.changes == 1
    machine.advance(1.0, others_busy=1.0, own_busy=1.0)
    share.tick()                       # still there: nothing changes
    assert torch.get_num_threads() == 1 and share.changes == 1
    machine.advance(1.0, others_busy=0.1, own_busy=1.0)
    share.tick()                       # gone
    assert torch.get_num_threads() == 2 and share.changes == 2


PAPER_SHAPES = ((784, 700, 500, 300, 200, 10), (128, 1024), 1)  # layer sizes, batch sizes, members


def test_a_share_is_made_only_where_threads_can_be_adapted(monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cores, "machine_busy_seconds", lambda: 1.0)
    monkeypatch.setattr(cores, "thread_count_changes_sums", lambda *shapes: False)
    assert isinstance(CoreShare.for_run("cpu", *PAPER_SHAPES), CoreShare)
    assert CoreShare.for_run("cuda", *PAPER_SHAPES) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's count wins
    assert CoreShare.for_run("cpu", *PAPER_SHAPES) is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    torch.set_num_threads(1)                     # a --workers process
    assert CoreShare.for_run("cpu", *PAPER_SHAPES) is None
    torch.set_num_threads(2)
    monkeypatch.setattr(cores, "thread_count_changes_sums", lambda *shapes: True)  # an Intel Xeon's MKL
    assert CoreShare.for_run("cpu", *PAPER_SHAPES) is None
    monkeypatch.setattr(cores, "thread_count_changes_sums", lambda *shapes: False)
    monkeypatch.setattr(cores, "machine_busy_seconds", lambda: None)  # no /proc/stat
    assert CoreShare.for_run("cpu", *PAPER_SHAPES) is None


def test_a_gemm_whose_bits_depend_on_the_thread_count_is_caught(monkeypatch):
    """Fault injection: a bmm that adds its sums in another order at two threads (a rounding of
    the last bit) must make the probe say so, at the shapes of any layer; one that does not, not."""
    real_bmm = torch.bmm

    def order_depends_on_threads(a, b):
        out = real_bmm(a, b)
        return out if torch.get_num_threads() == 1 else torch.nextafter(out, out + 1)

    shapes = ((20, 12, 6, 3), (8, 16), 2)
    assert not cores.thread_count_changes_sums(*shapes, 2)
    monkeypatch.setattr(cores.torch, "bmm", order_depends_on_threads)
    cores.thread_count_changes_sums.cache_clear()
    assert cores.thread_count_changes_sums(*shapes, 2)
    assert torch.get_num_threads() == 2  # the thread count the probe found is given back
    cores.thread_count_changes_sums.cache_clear()


def test_the_probe_finds_what_this_processor_does_at_the_first_layers_shape():
    """On this machine, the probe's answer for the paper's network agrees with a direct look at
    its largest GEMM (the first layer's forward pass at a batch of 128)."""
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(1, 128, 784, generator=g), torch.randn(1, 784, 700, generator=g)
    torch.set_num_threads(1)
    alone = torch.bmm(x, w)
    torch.set_num_threads(2)
    if not torch.equal(alone, torch.bmm(x, w)):
        assert cores.thread_count_changes_sums(*PAPER_SHAPES, 2)


class Alternating:
    """A share that changes the thread count before every batch: 1, 2, 1, 2, …"""

    def __init__(self):
        self.changes = 0

    def tick(self):
        self.changes += 1
        torch.set_num_threads(1 + self.changes % 2)


@pytest.mark.parametrize("algorithm,weights,activation,batch_norm", [
    ("BP", "continuous", "tanh", True), ("DFA", "continuous", "sign", False), ("BP", "binary", "tanh", False),
    ("DFA", "binary", "sign", False), ("DRTP", "binary", "sign", True)])
def test_changing_the_thread_count_every_batch_changes_no_number(mnist, algorithm, weights, activation, batch_norm):
    """Where the probe lets a run adapt its threads, adapting them every batch changes no number;
    where it does not (this processor's sums depend on the thread count), no share is made."""
    dataset = mnist.subset(128 * 8, 300)
    config = RunConfig(dataset="mnist", algorithm=algorithm, weights=weights, activation=activation,
                       batch_norm=batch_norm, init=0.1, lr=1e-4, seed=3, epochs=1, n_train=128 * 8, n_test=300)
    results, alternating = [], Alternating()
    for share in (None, alternating):
        torch.set_num_threads(2)
        training = build_training([config], dataset.input_size, dataset.pixel_inputs)
        training.cores = share
        loss = training.train_epoch(dataset)
        metrics = training.evaluate(dataset)
        results.append((loss, metrics, training.model.state_dict()))
    assert alternating.changes >= 8  # every batch and every evaluated split
    (loss_a, metrics_a, state_a), (loss_b, metrics_b, state_b) = results
    same = (torch.equal(loss_a, loss_b) and all(torch.equal(metrics_a[k], metrics_b[k]) for k in metrics_a)
            and _same(state_a, state_b))
    model = training.model
    adapted = not cores.thread_count_changes_sums(*model.gemm_shapes(128), 2)
    assert same or not adapted, "the thread count changed a number, and the probe would let a run adapt it"


def _same(a, b) -> bool:
    """Bit-identical states: tensors equal element by element, containers entry by entry."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_a_group_gives_back_the_threads_a_busy_machine_took(mnist_root, monkeypatch):
    """A notebook that trained a run goes on with the threads it had, whatever the machine did."""
    class Busy(CoreShare):
        def tick(self):
            torch.set_num_threads(1)  # as if another process held a core all along

    torch.set_num_threads(2)
    monkeypatch.setattr(CoreShare, "for_run", classmethod(lambda cls, device, *shapes: Busy(most=2, cores=2)))
    config = RunConfig(dataset="mnist", algorithm="DFA", epochs=2, n_train=256, n_test=100)
    outcomes = list(train_group([config], 2, DataOptions(root=str(mnist_root))))
    assert [o.epoch for o in outcomes] == [1, 2]
    assert torch.get_num_threads() == 2
    torch.set_num_threads(2)
    group = train_group([config], 2, DataOptions(root=str(mnist_root)))
    next(group)                                   # stopped after one epoch (a diverged group returns early)
    assert torch.get_num_threads() == 1
    group.close()
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("niceness, leader, written", [
    (19, True, "19"),   # `setsid nice -n 19`: the session's group takes the nice value
    (19, False, None),  # started from a terminal's session: the terminal's other work keeps its share
    (0, True, None),    # not niced: nothing to pass on
])
def test_a_niced_session_leader_gives_its_session_group_its_nice_value(tmp_path, monkeypatch, niceness, leader,
                                                                       written):
    import os
    from bnnlib.cores import session_priority
    autogroup = tmp_path / "autogroup"
    autogroup.write_text("/autogroup-7 nice 0\n")
    monkeypatch.setattr(os, "nice", lambda increment: niceness)
    monkeypatch.setattr(os, "getsid", lambda pid: os.getpid() if leader else os.getpid() + 1)
    assert session_priority(autogroup) == (niceness if written else None)
    assert autogroup.read_text() == (written or "/autogroup-7 nice 0\n")
    assert session_priority(tmp_path / "none") is None  # a kernel without autogroups
