"""Fault injection: corrupt data, caches, checkpoints and records are detected, named, and never
turned into numbers (issue #12)."""

import shutil
from pathlib import Path

import pytest
import torch

from bnnlib import data as data_module
from bnnlib.data import DECODED_SHA256, DatasetError, load_dataset


@pytest.fixture
def fresh_root(tmp_path, mnist_mirror):
    """A data root holding MNIST as a first load leaves it (archives, extracted files, cache)."""
    data_module._MEMORY_CACHE.clear()
    load_dataset("mnist", root=tmp_path, mirror=mnist_mirror, download=False)
    data_module._MEMORY_CACHE.clear()
    yield tmp_path
    data_module._MEMORY_CACHE.clear()


def _flip(path, offset=-100):
    content = bytearray(path.read_bytes())
    content[offset] ^= 0xFF
    path.write_bytes(bytes(content))


def _load_checked(root, match):
    with pytest.warns(UserWarning, match=match):
        dataset = load_dataset("mnist", root=root, download=False)
    assert dataset.digest == DECODED_SHA256["mnist"]
    return dataset


CACHE_FAULTS = {
    "flipped byte": lambda p: _flip(p),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:1000]),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("fault", CACHE_FAULTS)
def test_a_corrupt_decode_cache_is_named_deleted_and_rebuilt(fresh_root, fault):
    cache = fresh_root / "bnnlib-cache" / "mnist.pt"
    CACHE_FAULTS[fault](cache)
    _load_checked(fresh_root, "decode cache .*mnist.pt is corrupt")
    data_module._MEMORY_CACHE.clear()
    load_dataset("mnist", root=fresh_root, download=False)  # the rebuilt cache is intact: no warning


def test_a_cache_holding_other_data_is_rejected(fresh_root):
    cache = fresh_root / "bnnlib-cache" / "mnist.pt"
    content = torch.load(cache, weights_only=True)
    content["train_labels"][0] = 255  # consistent with itself, but not MNIST
    content["digest"] = data_module.array_digest({k: content[k] for k in data_module.ARRAY_NAMES})
    torch.save(content, cache)
    _load_checked(fresh_root, "sha256 is .* expected " + DECODED_SHA256["mnist"])


@pytest.mark.parametrize("file,offset", [("train-images-idx3-ubyte", -100), ("t10k-labels-idx1-ubyte", -1)])
def test_a_flipped_byte_in_an_extracted_file_is_extracted_again(fresh_root, file, offset):
    (fresh_root / "bnnlib-cache" / "mnist.pt").unlink()
    _flip(fresh_root / "MNIST" / "raw" / file, offset)
    dataset = _load_checked(fresh_root, "deleting the extracted files")
    assert dataset.labels_test.max() <= 9


def test_a_truncated_extracted_file_without_its_archive_fails_naming_the_dataset(fresh_root, monkeypatch):
    monkeypatch.delenv("BNNLIB_DATA_MIRROR", raising=False)  # no mirror to extract the archives again from
    (fresh_root / "bnnlib-cache" / "mnist.pt").unlink()
    raw = fresh_root / "MNIST" / "raw"
    for archive in raw.glob("*.gz"):
        archive.unlink()
    path = raw / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.warns(UserWarning, match="decoding failed"), \
            pytest.raises(DatasetError, match="(?s)mnist: files not found under .* download is off.*MIRROR"):
        load_dataset("mnist", root=fresh_root, download=False)
    assert not (fresh_root / "bnnlib-cache" / "mnist.pt").exists()  # nothing wrong was cached


# ---------------------------------------------------------------------- checkpoints
from bnnlib.config import RunConfig  # noqa: E402
from bnnlib.runner import DataOptions, execute, plan  # noqa: E402
from bnnlib.store import ResultsStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["run_id", "epoch", "loss", "train_accuracy", "test_accuracy", "test_f1"]


def _configs(epochs):
    return [RunConfig(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", batch_norm=True,
                      init=0.1, lr=lr, seed=3, epochs=epochs, n_train=640, n_test=300) for lr in (1e-4, 1e-5)]


def _one_row_per_epoch(store, written, replaced):
    """epochs.csv read as the README says (one pandas call): one row per run and epoch, each
    epoch computed again holding the row written last (``written``: every row add_epochs was
    given since the restart) — and the rows it replaced, exactly ``replaced`` (run index,
    epoch), kept apart in epochs_replaced.csv."""
    import pandas as pd
    from bnnlib.store import EPOCH_KEY, TEXT_COLUMNS
    raw = pd.read_csv(store.epochs_path, dtype=TEXT_COLUMNS)
    assert not raw.duplicated(EPOCH_KEY).any(), raw[raw.duplicated(EPOCH_KEY, keep=False)][EPOCH_KEY]
    rows = raw.set_index(EPOCH_KEY)
    for row in written:  # timing included: the row of this computation, not an equal older one
        stored = rows.loc[(row["run_id"], row["epoch"])]
        assert all(stored[name] == row[name] for name in ("loss", "test_accuracy", "group_epoch_seconds")), row
    ids = [c.run_id for c in _configs(1)]
    assert store.replaced_path.exists() == bool(replaced)
    apart = pd.read_csv(store.replaced_path, dtype=TEXT_COLUMNS) if replaced else pd.DataFrame(columns=EPOCH_KEY)
    assert sorted(zip(apart["run_id"], apart["epoch"])) == sorted((ids[i], e) for i, e in replaced)
    return raw.sort_values(EPOCH_KEY).reset_index(drop=True)


@pytest.fixture
def written(monkeypatch):
    """Every epoch row this process hands the store from now on."""
    rows = []
    original = ResultsStore.add_epochs

    def add_epochs(self, new):
        new = list(new)
        rows.extend(new)
        return original(self, new)
    monkeypatch.setattr(ResultsStore, "add_epochs", add_epochs)
    return rows


CHECKPOINT_FAULTS = {
    "flipped byte": lambda p: _flip(p, -200),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:3000]),
    "empty": lambda p: p.write_bytes(b""),
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", CHECKPOINT_FAULTS)
def test_a_corrupt_checkpoint_is_named_discarded_and_its_run_recomputed_exactly(tmp_path, mnist_root, fault,
                                                                               written):
    data = DataOptions(root=str(mnist_root))
    straight = ResultsStore(tmp_path / "straight")
    execute(_configs(3), straight, data, progress=False)
    store = ResultsStore(tmp_path / "faulty")
    execute(_configs(2), store, data, progress=False, keep_checkpoints=True)  # states kept at epoch 2
    victim = _configs(3)[0].run_id
    state_file = store.state_path(victim)
    store.checkpoints.mkdir(exist_ok=True)
    shutil.move(state_file, store.checkpoint_path(victim))  # as a run interrupted after epoch 2 leaves it
    CHECKPOINT_FAULTS[fault](store.checkpoint_path(victim))
    (store.checkpoints / f".{victim}.pt.999999999.tmp").write_bytes(b"partial")  # a writer killed mid-write
    with pytest.warns(UserWarning, match=f"corrupt or unreadable state .*{victim}.pt"):
        work = plan(_configs(3), store)  # also what --dry-run does: no exception
    assert {c.run_id: s for g, states in work.groups for c, s in zip(g, states)}[victim] is None
    assert not list(store.checkpoints.glob(".*.tmp"))
    written.clear()
    execute(_configs(3), store, data, progress=False)
    # the victim started again from scratch: its epochs 1 and 2 replaced, not recorded twice
    raw = _one_row_per_epoch(store, written, replaced=[(0, 1), (0, 2)])
    pd_testing = __import__("pandas").testing
    pd_testing.assert_frame_equal(raw[METRICS], straight.epochs()[METRICS])
    a = store.epochs()[METRICS]
    b = straight.epochs()[METRICS]
    import pandas as pd
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    runs = store.runs().set_index("run_id")
    assert runs.loc[victim, "epochs_done"] == 3 and runs.loc[victim, "status"] == "complete"


# ---------------------------------------------------------------------- records
@pytest.mark.slow
def test_runs_without_their_epoch_rows_are_not_complete(tmp_path, mnist_root):
    import os
    import subprocess
    import sys
    data = DataOptions(root=str(mnist_root))
    store = ResultsStore(tmp_path / "store")
    configs = _configs(2)
    execute(configs, store, data, progress=False)
    assert len(plan(configs, store).complete) == 2
    epochs = store.epochs()
    store.epochs_path.unlink()  # every epoch row lost; runs.csv still says complete
    status = subprocess.run([sys.executable, "-m", "bnnlib", "status", str(store.directory)], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "2 run(s) marked complete in runs.csv lack epoch rows" in status.stdout
    work = plan(configs, store)
    assert not work.complete and len(work.pending) == 2
    execute(configs, store, data, progress=False)
    import pandas as pd
    pd.testing.assert_frame_equal(store.epochs()[METRICS], epochs[METRICS])  # recomputed exactly


# ---------------------------------------------------------------------- bad input, before any compute
GOOD_SWEEP = "dataset: mnist\nalgorithm: DFA\nn_train: 256\nn_test: 100\nepochs: 1\n"
BAD_INPUT = {
    "cluster local:0": (GOOD_SWEEP, ["--cluster", "local:0"], "cluster='local:0' is not accepted; accepted: local:N"),
    "cluster local:-1": (GOOD_SWEEP, ["--cluster=local:-1"], "cluster='local:-1' is not accepted"),
    "cluster nonsense": (GOOD_SWEEP, ["--cluster", "nonsense"], "cluster='nonsense' is not accepted"),
    "workers 0": (GOOD_SWEEP, ["--workers", "0"], "workers=0 is not accepted; accepted: an integer ≥ 1"),
    "batch_norm 0": (GOOD_SWEEP + "batch_norm: [false, 0]\n", [], "batch_norm=0 is not accepted; accepted: True, False"),
    "n_train below a batch": (GOOD_SWEEP.replace("256", "100"), [], "n_train=100 is not accepted; accepted: None"),
    "malformed YAML": ("dataset: [mnist\n", [], "is not valid YAML"),
    "grids 5": (GOOD_SWEEP + "grids: 5\n", [], "grids=5 is not accepted; accepted: a list of mappings"),
    "no such sweep": (None, [], "sweep='no-such-sweep' is not accepted; accepted: grid or the path of a YAML"),
    "kernel": (GOOD_SWEEP, [], "BNNLIB_INT8_GEMM='fast' is not one of auto, int8, float32", {"BNNLIB_INT8_GEMM": "fast"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_one_clear_line_before_any_compute(tmp_path, case):
    import os
    import subprocess
    import sys
    text, options, message, *environment = BAD_INPUT[case]
    sweep = tmp_path / "sweep.yaml"
    if text is None:  # no file: a name that is not a named sweep either
        sweep = "no-such-sweep"
    else:
        sweep.write_text(text)
    result = subprocess.run([sys.executable, "-m", "bnnlib", "sweep", str(sweep), "--results", str(tmp_path / "r"),
                             "--no-download", "--data-root", str(tmp_path / "no-data"), *options],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                 **(environment[0] if environment else {})})
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "r" / "epochs.csv").exists()


# ---------------------------------------------------------------------- kills at each write point
KILLER = r'''
import os, signal, sys
from pathlib import Path
from bnnlib import store as store_module
from bnnlib.config import RunConfig
from bnnlib.runner import DataOptions, execute

point, nth, results, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls = {"n": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "checkpoint half-written":  # the temporary file holds half the bytes, never renamed
    original = store_module._atomic_write_bytes
    def write(path, data):
        if path.suffix == ".pt":
            calls["n"] += 1
            if calls["n"] == nth:
                path.with_name(f".{path.name}.{os.getpid()}.tmp").write_bytes(data[:len(data) // 2])
                die()
        original(path, data)
    store_module._atomic_write_bytes = write
elif point == "epoch rows torn":  # killed mid-append: the group's last row of the epoch half-written
    original = store_module.ResultsStore.add_epochs
    def wrapped(self, rows):
        original(self, rows)
        calls["n"] += 1
        if calls["n"] == nth:
            os.truncate(self.epochs_path, self.epochs_path.stat().st_size - 40)
            die()
    store_module.ResultsStore.add_epochs = wrapped
else:  # killed right after the write completed
    method = {"epoch rows appended": "add_epochs", "runs.csv replaced": "update_runs",
              "checkpoint saved": "save_checkpoint"}[point]
    original = getattr(store_module.ResultsStore, method)
    def wrapped(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == nth:
            die()
        return result
    setattr(store_module.ResultsStore, method, wrapped)

configs = [RunConfig(dataset="mnist", algorithm="DFA", weights="binary", activation="sign", batch_norm=True,
                     init=0.1, lr=lr, seed=3, epochs=3, n_train=640, n_test=300) for lr in (1e-4, 1e-5)]
execute(configs, store_module.ResultsStore(results), DataOptions(root=root), progress=False)
'''

WRITE_POINTS = ["epoch rows appended", "epoch rows torn", "runs.csv replaced", "checkpoint half-written",
                "checkpoint saved"]
#: the epochs (run index, epoch) each kill makes the resumed sweep compute again, all of epoch 2:
#: its rows were written (the torn one: run 0's only) before the checkpoints that would skip it
#: (after "checkpoint saved": run 0's, at epoch 2, was; run 1's was not). runs.csv is written
#: after the checkpoints: nothing is recomputed.
RECOMPUTED = {"epoch rows appended": [(0, 2), (1, 2)], "epoch rows torn": [(0, 2)], "runs.csv replaced": [],
              "checkpoint half-written": [(0, 2), (1, 2)], "checkpoint saved": [(1, 2)]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_root):
    store = ResultsStore(tmp_path_factory.mktemp("straight"))
    execute(_configs(3), store, DataOptions(root=str(mnist_root)), progress=False)
    return store.epochs()[METRICS].reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("point", WRITE_POINTS)
def test_a_kill_at_each_write_point_resumes_to_the_uninterrupted_records(tmp_path, mnist_root, uninterrupted, point,
                                                                        written):
    import os
    import subprocess
    import sys
    import pandas as pd
    results = tmp_path / "killed"
    # the 2nd write of its kind: epoch 2's rows / runs / checkpoint (one group of 2 runs)
    nth = 3 if point.startswith("checkpoint") else 2  # checkpoints: one file per run, 2 per epoch
    killed = subprocess.run([sys.executable, "-c", KILLER, point, str(nth), str(results), str(mnist_root)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -9, killed.stderr[-2000:]
    store = ResultsStore(results)
    assert not (store.runs()["status"] == "complete").all()
    execute(_configs(3), store, DataOptions(root=str(mnist_root)), progress=False)
    pd.testing.assert_frame_equal(store.epochs()[METRICS].reset_index(drop=True), uninterrupted)
    raw = _one_row_per_epoch(store, written, replaced=RECOMPUTED[point])  # epoch 2's rows replaced
    pd.testing.assert_frame_equal(raw[METRICS], uninterrupted)
    runs = store.runs()
    assert (runs["status"] == "complete").all() and (runs["epochs_done"] == 3).all()
    assert not list(results.rglob(".*.tmp")) and not list(store.checkpoints.glob("*.pt"))


def _kill_after_epoch_2(results, mnist_root):
    """A sweep of 3 epochs killed once epoch 2 is recorded and run 0's checkpoint at epoch 2 saved."""
    import os
    import subprocess
    import sys
    killed = subprocess.run([sys.executable, "-c", KILLER, "checkpoint saved", "3", str(results), str(mnist_root)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert killed.returncode == -9, killed.stderr[-2000:]


def _extended_without_a_kept_state(store, data, mnist_root):
    execute(_configs(2), store, data, progress=False)  # complete at 2 epochs, no state kept
    return [(i, e) for i in (0, 1) for e in (1, 2)]  # extended to 3: both start again from scratch


def _checkpoints_lost(store, data, mnist_root):
    _kill_after_epoch_2(store.directory, mnist_root)
    shutil.rmtree(store.checkpoints)  # the machine replaced: checkpoints stay out of git
    return [(i, e) for i in (0, 1) for e in (1, 2)]


def _checkpoint_ahead_of_its_rows(store, data, mnist_root):
    import pandas as pd
    from bnnlib.store import TEXT_COLUMNS
    execute(_configs(2), store, data, progress=False, keep_checkpoints=True)
    victim = _configs(3)[0].run_id
    store.checkpoints.mkdir(exist_ok=True)
    shutil.move(store.state_path(victim), store.checkpoint_path(victim))  # resumable at epoch 2 of 3
    rows = pd.read_csv(store.epochs_path, dtype=TEXT_COLUMNS)  # as an older epochs.csv (git) leaves it:
    rows[(rows["run_id"] != victim) | (rows["epoch"] == 1)].to_csv(store.epochs_path, index=False)  # no epoch 2
    return [(0, 1)]  # the checkpoint cannot be trusted: run 0 starts again, recomputing epoch 1


RESTARTS = {"complete run extended without a kept state": _extended_without_a_kept_state,
            "checkpoints lost mid-run": _checkpoints_lost,
            "checkpoint ahead of its rows": _checkpoint_ahead_of_its_rows}


@pytest.mark.slow
@pytest.mark.parametrize("restart", RESTARTS)
def test_a_run_started_again_from_scratch_replaces_the_rows_it_recomputes(tmp_path, mnist_root, uninterrupted,
                                                                          restart, written):
    """Runs that start again from epoch 1 with rows of earlier epochs recorded (corrupt states:
    test_a_corrupt_checkpoint_…; a kill between rows and checkpoint, a torn append:
    test_a_kill_at_each_write_point_…) leave epochs.csv with one row per run and epoch, the
    recomputed one, and the records of an uninterrupted sweep."""
    import pandas as pd
    data = DataOptions(root=str(mnist_root))
    store = ResultsStore(tmp_path / "restarted")
    replaced = RESTARTS[restart](store, data, mnist_root)
    written.clear()
    work = execute(_configs(3), store, data, progress=False)
    from_scratch = {c.run_id for g, states in work.groups for c, s in zip(g, states) if s is None}
    assert from_scratch == {_configs(3)[i].run_id for i, _ in replaced}
    raw = _one_row_per_epoch(store, written, replaced)
    pd.testing.assert_frame_equal(raw[METRICS], uninterrupted)
    assert (store.runs()["status"] == "complete").all() and (store.runs()["epochs_done"] == 3).all()
