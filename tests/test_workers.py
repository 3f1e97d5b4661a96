"""Worker processes and concurrent sweeps: the same records, each run trained once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.model import ARITHMETIC_VERSION
from bnnlib.runner import (STOPPED_EXIT_STATUS, DataOptions, StopRequested, boot, execute, processor, request_stop,
                           stop_on_signal, stop_requested)
from bnnlib.store import ResultsStore
from bnnlib.sweep import expand_grid

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(dataset="mnist", n_train=640, n_test=300, batch_size=128)
METRICS = ["run_id", "epoch", "loss", "train_accuracy", "train_precision", "train_f1",
           "test_accuracy", "test_precision", "test_f1"]


def _grid(epochs=2, seed=2):
    return expand_grid({**TINY, "algorithm": ["BP", "DFA"], "activation": "sign", "weights": "binary",
                        "batch_norm": True, "init": 0.1, "lr": [1e-4, 1e-5], "seed": seed, "epochs": epochs})


@pytest.mark.slow
def test_worker_processes_give_the_in_process_records(tmp_path, mnist_root):
    configs = _grid()
    data = DataOptions(root=str(mnist_root))
    execute(configs, ResultsStore(tmp_path / "one"), data, max_members=1, progress=False)
    execute(configs, ResultsStore(tmp_path / "two"), data, max_members=1, progress=False, workers=2)
    a = ResultsStore(tmp_path / "one").epochs()[METRICS]
    b = ResultsStore(tmp_path / "two").epochs()[METRICS]
    assert len(a) == 8
    pd.testing.assert_frame_equal(a, b)  # exactly: one thread or two, one process or two
    runs = ResultsStore(tmp_path / "two").runs()
    assert set(runs["status"]) == {"complete"} and set(runs["threads"]) == {1}
    assert set(runs["arithmetic"]) == {ARITHMETIC_VERSION}
    assert runs["data_digest"].str.fullmatch("[0-9a-f]{64}").all() and runs["data_digest"].nunique() == 1
    assert runs["code"].notna().all()
    assert set(runs["processor"]) == {processor("cpu")}  # worker processes name the processor as the parent does
    assert set(ResultsStore(tmp_path / "two").epochs()["processor"]) == {processor("cpu")}  # and each epoch
    if boot() is not None:  # and the boot of the machine, which tells two machines of one kind apart
        assert set(runs["boot"]) == set(ResultsStore(tmp_path / "two").epochs()["boot"]) == {boot()}


@pytest.mark.slow
def test_two_sweeps_on_one_folder_split_the_work(tmp_path, mnist_root):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("dataset: mnist\nn_train: 640\nn_test: 300\nalgorithm: [BP, DFA, DRTP]\nweights: binary\n"
                     "activation: sign\ninit: 0.1\nlr: [1.0e-4, 1.0e-5]\nseed: 2\nepochs: 3\n")
    env = {**os.environ, "BNNLIB_DATA_ROOT": str(mnist_root), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bnnlib", "sweep", str(sweep), "--quiet", "--no-download",
               "--max-members", "1", "--results", str(tmp_path / "shared")]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    first_out = first.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, first_out[1] + second.stderr
    raw = pd.read_csv(tmp_path / "shared" / "epochs.csv")
    assert len(raw) == 6 * 3  # every run-epoch computed once, by one of the two
    runs = ResultsStore(tmp_path / "shared").runs()
    assert set(runs["status"]) == {"complete"} and set(runs["epochs_done"]) == {3}


def test_bad_worker_counts_are_rejected_before_compute(tmp_path):
    with pytest.raises(ValueError, match="workers=0 is not accepted; accepted: an integer ≥ 1"):
        execute(_grid(), ResultsStore(tmp_path), workers=0, progress=False)
    with pytest.raises(ValueError, match="workers and cluster exclude each other"):
        execute(_grid(), ResultsStore(tmp_path), workers=2, cluster="local:2", progress=False)
    assert ResultsStore(tmp_path).runs().empty


@pytest.mark.slow
def test_sweeps_asking_for_different_epochs_at_once_never_undo_each_other(tmp_path, mnist_root):
    """A 2-epoch and a 4-epoch sweep on one folder at the same time: every run ends with its 4
    epochs, records identical to a 4-epoch sweep alone, and no run's epochs_done went down."""
    env = {**os.environ, "BNNLIB_DATA_ROOT": str(mnist_root), "PYTHONPATH": str(ROOT)}
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("dataset: mnist\nn_train: 640\nn_test: 300\nalgorithm: [BP, DFA]\nweights: binary\n"
                     "activation: sign\ninit: 0.1\nlr: [1.0e-4, 1.0e-5]\nseed: 2\n")

    def command(epochs, folder):
        return [sys.executable, "-m", "bnnlib", "sweep", str(sweep), "--epochs", str(epochs), "--quiet",
                "--no-download", "--max-members", "1", "--results", str(tmp_path / folder)]

    short = subprocess.Popen(command(2, "shared"), env=env, stderr=subprocess.PIPE, text=True)
    long = subprocess.run(command(4, "shared"), env=env, capture_output=True, text=True)
    short_err = short.communicate(timeout=600)[1]
    assert short.returncode == 0 and long.returncode == 0, short_err + long.stderr
    again = subprocess.run(command(4, "shared"), env=env, capture_output=True, text=True)
    assert "0 run(s) trained, 4 already complete" in again.stdout  # nothing left to redo
    alone = subprocess.run(command(4, "alone"), env=env, capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr
    shared = ResultsStore(tmp_path / "shared")
    assert set(shared.runs()["epochs_done"]) == {4}
    pd.testing.assert_frame_equal(shared.epochs()[METRICS], ResultsStore(tmp_path / "alone").epochs()[METRICS])


@pytest.mark.slow
@pytest.mark.parametrize("how", [{}, {"workers": 2}, {"cluster": "local:2"}],
                         ids=["in process", "worker processes", "dask"])
def test_a_stop_request_finishes_the_groups_in_progress_and_starts_no_other(tmp_path, mnist_root, how):
    """Asked to stop when its first member group is recorded, a sweep finishes the groups being
    trained, starts none of the others and says how many runs are left; the same call then
    trains exactly those, and the request is forgotten."""
    if "cluster" in how:
        pytest.importorskip("dask.distributed")
    configs = _grid(epochs=3, seed=[2, 3])  # 8 runs, 8 groups of one
    store, data = ResultsStore(tmp_path / "r"), DataOptions(root=str(mnist_root))
    with stop_on_signal():
        with pytest.raises(StopRequested, match=r"stopped on request with [1-7] of 8 run\(s\) left, every epoch"):
            execute(configs, store, data, max_members=1, progress=False,
                    after_group=lambda group: request_stop(), **how)
    runs = store.runs()
    assert set(runs["status"]) == {"complete"} and set(runs["epochs_done"]) == {3}  # none left half-trained
    assert 1 <= len(runs) <= (1 if not how else 7)  # in process: exactly the group that asked
    assert not stop_requested()
    execute(configs, store, data, max_members=1, progress=False, **how)
    assert len(store.runs()) == 8 and set(store.runs()["status"]) == {"complete"}
    assert len(store.epochs(every_copy=True)) == 8 * 3  # no epoch computed twice


@pytest.mark.slow
def test_sigusr1_to_the_process_group_stops_a_sweep_with_its_workers_once_their_runs_are_recorded(
        tmp_path, mnist_root):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("dataset: mnist\nn_train: 1280\nn_test: 300\nalgorithm: [BP, DFA]\nweights: binary\n"
                     "activation: sign\ninit: 0.1\nlr: [1.0e-4, 1.0e-5]\nseed: [2, 3, 4]\nepochs: 3\n")
    env = {**os.environ, "BNNLIB_DATA_ROOT": str(mnist_root), "PYTHONPATH": str(ROOT)}
    results = tmp_path / "r"
    process = subprocess.Popen([sys.executable, "-m", "bnnlib", "sweep", str(sweep), "--quiet", "--no-download",
                                "--workers", "2", "--max-members", "1", "--results", str(results)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if (results / "epochs.csv").exists() and len(pd.read_csv(results / "epochs.csv")) >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()[1][-2000:]  # still running after its first epoch
    os.killpg(process.pid, signal.SIGUSR1)  # as `kill -USR1 -PGID`: the workers get it too
    out, err = process.communicate(timeout=300)
    assert process.returncode == STOPPED_EXIT_STATUS, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("stopped on request with ")
    assert "Traceback" not in err, err[-2000:]  # no worker, nor multiprocessing's resource tracker, was killed
    runs = ResultsStore(results).runs()
    assert 1 <= len(runs) < 12 and set(runs["status"]) == {"complete"}, runs[["status", "epochs_done"]]
