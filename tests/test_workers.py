"""Worker processes and concurrent sweeps: the same records, each run trained once."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.model import ARITHMETIC_VERSION
from bnnlib.runner import DataOptions, boot, execute, processor
from bnnlib.store import ResultsStore
from bnnlib.sweep import expand_grid

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(dataset="mnist", n_train=640, n_test=300, batch_size=128)
METRICS = ["run_id", "epoch", "loss", "train_accuracy", "train_precision", "train_f1",
           "test_accuracy", "test_precision", "test_f1"]


def _grid(epochs=2):
    return expand_grid({**TINY, "algorithm": ["BP", "DFA"], "activation": "sign", "weights": "binary",
                        "batch_norm": True, "init": 0.1, "lr": [1e-4, 1e-5], "seed": 2, "epochs": epochs})


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
