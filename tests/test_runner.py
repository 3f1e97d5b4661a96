"""Executing runs: sweeps, selection, resumption, divergence, collapse, CLI, Dask."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bnnlib.config import RunConfig
from bnnlib.model import ARITHMETIC_VERSION
from bnnlib.runner import DataOptions, execute, plan
from bnnlib.store import ResultsStore
from bnnlib.sweep import expand_grid, restrict, run_summary, select_hyperparameters

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(dataset="mnist", n_train=640, n_test=300, batch_size=128)
METRIC_COLUMNS = ["run_id", "epoch", "loss", "train_accuracy", "train_precision", "train_f1",
                  "test_accuracy", "test_precision", "test_f1"]


# ---------------------------------------------------------------------- sweeps
def test_grid_expands_restricts_and_groups(tmp_path):
    grid = expand_grid({"dataset": ["mnist", "fashion-mnist"], "algorithm": ["BP", "DFA", "DRTP"],
                        "weights": ["continuous", "binary"], "activation": ["tanh", "sign"],
                        "init": [0.1, 0.001], "lr": [1e-4, 1e-5, 1e-6], "seed": 1})
    assert len(grid) == 144
    mnist = restrict(grid, ["dataset=mnist", "lr=1e-4,1e-5"])
    assert len(mnist) == 48 and {c.lr for c in mnist} == {1e-4, 1e-5}
    with pytest.raises(ValueError, match="unknown field 'colour'"):
        restrict(grid, ["colour=red"])
    work = plan(restrict(grid, {"dataset": "mnist"}), ResultsStore(tmp_path), max_members=4)
    assert len(work.pending) == 72
    assert all(len({c.group_key() for c in g}) == 1 and len(g) <= 4 for g, _ in work.groups)
    assert len(work.groups) == 12 * 2  # 12 structures × 6 (init, lr) members in chunks of 4


def test_runs_resuming_from_a_checkpoint_are_planned_first(tmp_path):
    configs = expand_grid({**TINY, "algorithm": "DFA", "init": 0.1, "lr": 1e-4, "seed": [1, 2, 3, 4], "epochs": 5})
    store = ResultsStore(tmp_path)
    done = {configs[2].run_id: 3, configs[3].run_id: 1}  # as an interrupted sweep leaves them
    store.load_checkpoint = lambda run_id: {"epochs_done": done[run_id]} if run_id in done else None
    store.epoch_counts = lambda: dict(done)
    work = plan(configs, store, max_members=1)
    assert [g[0].seed for g, _ in work.groups] == [3, 4, 1, 2]
    assert [s[0] and s[0]["epochs_done"] for _, s in work.groups] == [3, 1, None, None]


# ---------------------------------------------------------------------- store
def test_status_tells_runs_being_trained_from_interrupted_ones(tmp_path, capsys):
    from bnnlib.cli import main
    store = ResultsStore(tmp_path)
    assert store.claimed_now() == set()  # no claims folder yet
    active, interrupted = "a" * 16, "b" * 16
    store.update_runs([dict(run_id=r, dataset="mnist", batch_norm=False, status="running", epochs_done=3,
                            updated="2026-11-29T04:00:00+00:00") for r in (active, interrupted)])
    with store.claim([active]) as held:  # as a sweep training it holds it
        assert held == [active] and store.claimed_now() == {active}
        assert main(["status", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "running: 1 being trained now, 1 interrupted" in out
        assert "last record written 2026-11-29 04:00 UTC" in out
    assert store.claimed_now() == set()
    main(["status", str(tmp_path)])
    assert "running: 0 being trained now, 2 interrupted" in capsys.readouterr().out


def test_status_counts_collapsed_runs_and_those_it_cannot_tell(tmp_path, capsys):
    from bnnlib.cli import main
    store = ResultsStore(tmp_path)
    flags = {"a": True, "b": True, "c": False, "d": float("nan"), "e": True}
    store.update_runs([dict(run_id=r * 16, dataset="mnist", batch_norm=False, algorithm="BP" if r < "b" else "DFA",
                            weights="binary", activation="sign", init=0.1, lr=1e-4, seed=2, epochs_done=3, collapsed=flag,
                            status="diverged" if r == "e" else "complete",
                            updated="2026-11-29T04:00:00+00:00") for r, flag in flags.items()])
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # a diverged run is told apart, not also counted collapsed
    assert "collapsed: 2 run(s) predict one class for every test image at their latest epoch (BP 1, DFA 1); " \
           "unknown for 1 recorded before class counts were" in out


def test_status_names_the_processors_that_computed_the_runs(tmp_path, capsys):
    from bnnlib.cli import main
    store = ResultsStore(tmp_path)
    kinds = {"a": "AMD EPYC (AVX512)", "b": float("nan"), "c": "AMD EPYC (AVX512)", "d": "Intel Xeon (AVX2)"}
    store.update_runs([dict(run_id=r * 16, dataset="mnist", batch_norm=False, algorithm="BP", status="complete",
                            epochs_done=3, processor=kind, updated="2026-11-29T04:00:00+00:00")
                       for r, kind in kinds.items()])
    assert main(["status", str(tmp_path)]) == 0
    assert "computed on: AMD EPYC (AVX512) (2 runs), Intel Xeon (AVX2) (1 run), not recorded (1 run)" \
        in capsys.readouterr().out


def _write_rows(directory, writer, n):
    store = ResultsStore(directory)
    for i in range(n):
        store.add_epochs([{"run_id": f"{writer:016x}", "epoch": i + 1, "loss": 0.5, "train_accuracy": 0.1}])


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_write_rows, args=(tmp_path, w, 40)) for w in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
        assert p.exitcode == 0
    table = pd.read_csv(tmp_path / "epochs.csv")  # one pandas call
    assert len(table) == 120 and set(table["run_id"]) == {0, 1, 2}  # read back as integers by pandas


# ---------------------------------------------------------------------- execution
def _grid(epochs=3, **extra):
    return expand_grid({**TINY, "algorithm": ["BP", "DRTP"], "activation": "sign", "weights": "binary",
                        "init": [0.1, 0.001], "lr": 1e-4, "seed": [1, 2], "epochs": epochs, **extra})


class _TallyBar:
    """Stands in for the progress bar: keeps every postfix shown."""

    def __init__(self):
        self.postfixes = []

    def set_postfix(self, **values):
        self.postfixes.append(values)

    def update(self, n=1):
        pass

    def close(self):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_after_group_sees_each_group_recorded_as_soon_as_it_ends(tmp_path, mnist_root, workers, monkeypatch):
    store = ResultsStore(tmp_path / "store")
    configs = _grid(epochs=1)
    seen = []
    bar = _TallyBar()
    monkeypatch.setattr("bnnlib.runner._progress", lambda total, enabled: bar)

    def after_group(group):
        runs = store.runs().set_index("run_id")
        seen.append(sorted(c.run_id for c in group))
        assert all(runs.loc[c.run_id, "status"] == "complete" for c in group)
        seen[-1].append(len(runs))  # how many runs were recorded when this group ended

    execute(configs, store, DataOptions(root=str(mnist_root)), progress=False, max_members=2, workers=workers,
            after_group=after_group)
    groups = [ids[:-1] for ids in seen]
    assert sorted(i for ids in groups for i in ids) == sorted(c.run_id for c in configs) and len(groups) == 4
    if workers == 1:  # one group after the other: the first is reported before the others run
        assert [ids[-1] for ids in seen] == [2, 4, 6, 8]
    # the bar's tally advances as each group ends (a long run's log shows it), and adds up
    assert bar.postfixes[0] == {"done": 0, "diverged": 0, "left": 8}
    assert bar.postfixes[-1] == {"done": 8, "diverged": 0, "left": 0} and len(bar.postfixes) == 5
    assert [p["done"] for p in bar.postfixes] == sorted(p["done"] for p in bar.postfixes)
    execute(configs, store, DataOptions(root=str(mnist_root)), progress=False, after_group=after_group)
    assert len(seen) == 4  # nothing trained again, nothing reported again


@pytest.mark.slow
def test_sweep_records_every_epoch_and_never_recomputes(tmp_path, mnist_root):
    store = ResultsStore(tmp_path / "store")
    configs = _grid()
    work = execute(configs, store, DataOptions(root=str(mnist_root)), progress=False)
    assert len(work.pending) == 8 and len(work.groups) == 2
    epochs = store.epochs()
    assert len(epochs) == 8 * 3 and sorted(epochs["epoch"].unique()) == [1, 2, 3]
    runs = store.runs()
    assert set(runs["status"]) == {"complete"} and set(runs["torch"]) and (runs["seconds"] > 0).all()
    assert not store.checkpoints.exists() or not any(store.checkpoints.iterdir())
    assert epochs["test_accuracy"].between(0, 1).all()
    modified = store.epochs_path.stat().st_mtime_ns
    again = execute(configs, store, DataOptions(root=str(mnist_root)), progress=False)
    assert len(again.complete) == 8 and not again.groups
    assert store.epochs_path.stat().st_mtime_ns == modified
    summary = run_summary(epochs, runs)
    assert len(summary) == 8 and not summary["diverged"].any()
    assert (summary["best_test_accuracy"] >= summary["last_test_accuracy"]).all()


def test_diverged_run_is_stopped_marked_and_never_selected(tmp_path, mnist_root, monkeypatch):
    store = ResultsStore(tmp_path / "store")
    base = dict(**TINY, algorithm="BP", weights="continuous", activation="tanh", init=0.1, epochs=3, seed=1)
    healthy, exploding = RunConfig(lr=1e-4, **base), RunConfig(lr=3e38, **base)
    bar = _TallyBar()
    monkeypatch.setattr("bnnlib.runner._progress", lambda total, enabled: bar)
    execute([healthy, exploding], store, DataOptions(root=str(mnist_root)), progress=False)
    assert bar.postfixes[-1] == {"done": 1, "diverged": 1, "left": 0}  # the progress line says so
    runs = store.runs().set_index("run_id")
    assert runs.loc[exploding.run_id, "status"] == "diverged"
    assert runs.loc[healthy.run_id, "status"] == "complete"
    epochs = store.epochs()
    assert epochs[epochs["run_id"] == exploding.run_id]["epoch"].max() < 3  # stopped
    assert epochs[epochs["run_id"] == healthy.run_id]["epoch"].max() == 3
    summary = run_summary(epochs, store.runs())
    assert summary.set_index("run_id").loc[exploding.run_id, "diverged"]
    chosen = select_hyperparameters(summary)
    assert list(chosen["run_id"]) == [healthy.run_id]
    # a later sweep does not retry it
    assert execute([healthy, exploding], store, DataOptions(root=str(mnist_root)), progress=False).diverged


def test_select_hyperparameters_takes_best_max_over_epochs_training_accuracy():
    rows = []
    for run, (init, lr, curve) in enumerate([(0.1, 1e-4, [0.5, 0.9, 0.7]), (0.001, 1e-4, [0.85, 0.88, 0.89]),
                                             (0.1, 1e-5, [0.2, 0.3, 0.4])]):
        for epoch, accuracy in enumerate(curve, 1):
            rows.append(dict(run_id=f"r{run}", dataset="mnist", batch_norm=False, algorithm="DFA",
                             weights="binary", activation="sign", init=init, lr=lr, seed=1, epoch=epoch,
                             loss=0.1, train_accuracy=accuracy, train_precision=accuracy, train_f1=accuracy,
                             test_accuracy=accuracy - 0.01, test_precision=0.5, test_f1=0.5))
    summary = run_summary(pd.DataFrame(rows))
    chosen = select_hyperparameters(summary)
    assert len(chosen) == 1 and chosen.iloc[0]["run_id"] == "r0"  # 0.9 at epoch 2 beats 0.89
    assert chosen.iloc[0]["best_train_epoch"] == 2
    first_epochs = pd.DataFrame(rows).query("epoch <= 1")  # a budget's view (protocol.epoch_records) of one epoch
    assert run_summary(first_epochs).pipe(select_hyperparameters).iloc[0]["run_id"] == "r1"


def _curve_rows(run_id, curve, classes, **config):
    """Epoch rows of one run: (train accuracy, test classes predicted or None) per epoch."""
    config = dict(dict(dataset="mnist", batch_norm=False, algorithm="DFA", weights="binary", activation="sign",
                       init=0.1, lr=1e-4, seed=1), **config)
    return [dict(run_id=run_id, **config, epoch=epoch, loss=0.1, train_accuracy=accuracy, train_precision=accuracy,
                 train_f1=accuracy, test_accuracy=accuracy, test_precision=0.5, test_f1=0.5,
                 test_classes_predicted=float("nan") if count is None else count)
            for epoch, (accuracy, count) in enumerate(zip(curve, classes), 1)]


def test_collapse_is_read_at_the_last_epoch_and_unknown_where_not_recorded():
    """Collapsed = one class predicted for every test image at the last epoch; a run whose last
    epoch has no class count (recorded before they were) is unknown, never "not collapsed"."""
    rows = (_curve_rows("healthy", [0.5, 0.9], [10, 10]) + _curve_rows("collapsed", [0.4, 0.1], [10, 1])
            + _curve_rows("recovered", [0.1, 0.6], [1, 10]) + _curve_rows("unrecorded", [0.1, 0.1], [None, None])
            + _curve_rows("unrecorded_last", [0.1, 0.1], [1, None]))
    frame = pd.DataFrame(rows).sample(frac=1, random_state=0)  # row order must not matter
    collapsed = run_summary(frame).set_index("run_id")["collapsed"]
    assert collapsed.loc[["healthy", "collapsed", "recovered"]].tolist() == [False, True, False]
    assert collapsed.loc[["unrecorded", "unrecorded_last"]].isna().all()
    assert run_summary(frame.drop(columns="test_classes_predicted"))["collapsed"].isna().all()


def _env(mnist_root):
    return {**os.environ, "BNNLIB_DATA_ROOT": str(mnist_root), "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_run_killed_mid_way_resumes_to_identical_records(tmp_path, mnist_root):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("dataset: mnist\nn_train: 1280\nn_test: 300\nalgorithm: DFA\nweights: binary\n"
                     "activation: sign\nbatch_norm: true\ninit: 0.1\nlr: [1.0e-4, 1.0e-5]\nseed: [3, 4]\n"
                     "epochs: 8\n")
    command = [sys.executable, "-m", "bnnlib", "sweep", str(sweep), "--quiet", "--no-download"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(command + ["--results", str(killed)], env=_env(mnist_root), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "epochs.csv").exists() and pd.read_csv(killed / "epochs.csv")["epoch"].max() >= 2:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    runs = ResultsStore(killed).runs()
    assert (runs["status"] == "running").all() and (runs["epochs_done"] < 8).all(), "killed too late"
    checkpointed = {path.stem: ResultsStore(killed).load_checkpoint(path.stem)["epochs_done"]
                    for path in (killed / "checkpoints").glob("*.pt")}
    assert len(checkpointed) == 4 and min(checkpointed.values()) >= 1
    before_resume = ResultsStore(killed).epochs()
    resumed = subprocess.run(command + ["--results", str(killed)], env=_env(mnist_root), cwd=tmp_path,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(command + ["--results", str(tmp_path / "straight")], env=_env(mnist_root),
                              cwd=tmp_path, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    after = ResultsStore(killed).epochs()
    # epochs up to the checkpoint were not recomputed: their rows (wall times included) are untouched
    kept = before_resume[before_resume["epoch"] <= min(checkpointed.values())]
    pd.testing.assert_frame_equal(kept.reset_index(drop=True),
                                  after.merge(kept[["run_id", "epoch"]]).reset_index(drop=True))
    a = after[METRIC_COLUMNS]
    b = ResultsStore(tmp_path / "straight").epochs()[METRIC_COLUMNS]
    assert len(a) == 4 * 8
    pd.testing.assert_frame_equal(a, b)  # exactly, not approximately


@pytest.mark.slow
def test_dask_local_cluster_gives_the_in_process_records(tmp_path, mnist_root):
    pytest.importorskip("dask.distributed")
    configs = _grid(epochs=2, batch_norm=True)
    data = DataOptions(root=str(mnist_root))
    execute(configs, ResultsStore(tmp_path / "local"), data, max_members=2, progress=False)
    execute(configs, ResultsStore(tmp_path / "dask"), data, max_members=2, progress=False, cluster="local:2")
    a = ResultsStore(tmp_path / "local").epochs()[METRIC_COLUMNS]
    b = ResultsStore(tmp_path / "dask").epochs()[METRIC_COLUMNS]
    assert len(a) == 16
    pd.testing.assert_frame_equal(a, b)
    assert set(ResultsStore(tmp_path / "dask").runs()["status"]) == {"complete"}


def _finished_elsewhere_and_here(tmp_path, mnist_root):
    """Three fully binary runs: 0 finished in the source only, 1 finished in both, 2 unfinished
    in the source (its last epoch and status as an interrupted run leaves them)."""
    configs = expand_grid({**TINY, "algorithm": "DFA", "weights": "binary", "activation": "sign", "init": 0.1,
                           "lr": 1e-4, "seed": [1, 2, 3], "epochs": 2})
    data = DataOptions(root=str(mnist_root))
    source, here = ResultsStore(tmp_path / "gpu"), ResultsStore(tmp_path / "paper")
    execute(configs, source, data, progress=False, max_members=1, keep_checkpoints=True)
    execute(configs[1:2], here, data, progress=False, max_members=1)
    epochs = pd.read_csv(source.epochs_path)
    epochs[~((epochs["run_id"] == configs[2].run_id) & (epochs["epoch"] == 2))].to_csv(source.epochs_path, index=False)
    source.update_runs([{**source.run_record(configs[2].run_id), "status": "running", "epochs_done": 1}])
    (source.directory / "packed").mkdir()
    (source.directory / "packed" / f"{configs[0].run_id}.bnn").write_bytes(b"packed model")
    source.update_table("packed.csv", [{"run_id": configs[0].run_id, "agreement": 1.0}])
    return configs, source, here


def test_merge_brings_finished_runs_only_and_they_are_not_trained_again(tmp_path, mnist_root):
    configs, source, here = _finished_elsewhere_and_here(tmp_path, mnist_root)
    before = here.epochs()
    ids = [c.run_id for c in configs]
    report = here.merge_from(source)
    assert report["merged"] == [ids[0]] and report["already_here"] == [ids[1]]
    assert report["unfinished"] == [ids[2]] and report["training_here"] == []
    assert report["packed"] == 1 and report["states"] == 1
    merged = here.epochs()
    pd.testing.assert_frame_equal(merged[merged["run_id"] == ids[0]][METRIC_COLUMNS].reset_index(drop=True),
                                  source.epochs()[source.epochs()["run_id"] == ids[0]][METRIC_COLUMNS]
                                  .reset_index(drop=True))
    pd.testing.assert_frame_equal(merged[merged["run_id"] == ids[1]].reset_index(drop=True),
                                  before.reset_index(drop=True))  # what was finished here stays
    assert ids[2] not in set(merged["run_id"]) and ids[2] not in set(here.runs()["run_id"])
    assert (here.directory / "packed" / f"{ids[0]}.bnn").read_bytes() == b"packed model"
    assert list(here.table("packed.csv")["run_id"]) == [ids[0]] and here.state_path(ids[0]).exists()
    work = plan(configs, here, max_members=1)
    assert [c.run_id for c in work.pending] == [ids[2]]  # the merged run is complete here
    assert here.merge_from(source)["merged"] == []  # merging again changes nothing


def test_merge_leaves_runs_being_trained_here(tmp_path, mnist_root):
    configs, source, here = _finished_elsewhere_and_here(tmp_path, mnist_root)
    with ResultsStore(here.directory).claim([configs[0].run_id]) as held:  # as a sweep training it
        assert held == [configs[0].run_id]
        report = here.merge_from(source)
    assert report["merged"] == [] and report["training_here"] == [configs[0].run_id]
    assert configs[0].run_id not in set(here.epochs()["run_id"])


@pytest.mark.parametrize("column, value, message", [
    ("data_digest", "0" * 16, "trained mnist on data with digest 0000000000000000; accepted: "),
    ("arithmetic", 1, "holds runs of arithmetic version 1; accepted: "),
])
def test_merge_refuses_other_data_or_arithmetic_before_writing(tmp_path, mnist_root, column, value, message):
    configs, source, here = _finished_elsewhere_and_here(tmp_path, mnist_root)
    runs = source.runs()
    runs.loc[runs["run_id"] == configs[0].run_id, column] = value
    runs.to_csv(source.runs_path, index=False)
    epochs, table = here.epochs_path.read_bytes(), here.runs_path.read_bytes()
    with pytest.raises(ValueError, match=message):
        here.merge_from(source)
    assert here.epochs_path.read_bytes() == epochs and here.runs_path.read_bytes() == table


def test_cli_merge_says_what_it_merged_and_left_out(tmp_path, mnist_root, capsys):
    from bnnlib.cli import main
    _finished_elsewhere_and_here(tmp_path, mnist_root)
    assert main(["merge", str(tmp_path / "gpu"), str(tmp_path / "paper")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"merged 1 finished run(s) from {tmp_path / 'gpu'} into {tmp_path / 'paper'} "
                      f"(1 packed model(s), 1 kept state(s) copied)")
    assert out[1:] == ["  left out: 1 run(s) already finished here: kept as they are",
                       "  left out: 1 run(s) not finished in the source: they are trained here from scratch"]
    assert main(["merge", str(tmp_path / "nowhere"), str(tmp_path / "paper")]) == 2
    assert capsys.readouterr().err.strip() == f"error: merge: source folder {tmp_path / 'nowhere'} does not exist"


def test_cli_merge_of_one_arithmetic_version_leaves_the_others_behind(tmp_path, mnist_root, capsys):
    """`merge --arithmetic current` starts a recomputation from the records that need none: a run of an
    older version stays behind (it would be refused, one folder holding one version), today's joins."""
    from bnnlib.cli import main
    configs, source, here = _finished_elsewhere_and_here(tmp_path, mnist_root)
    runs = source.runs()
    runs.loc[runs["run_id"] == configs[0].run_id, "arithmetic"] = 1
    runs.to_csv(source.runs_path, index=False)
    fresh = tmp_path / "recompute"
    assert main(["merge", "--arithmetic", "current", str(source.directory), str(fresh)]) == 0
    assert configs[0].run_id not in set(ResultsStore(fresh).runs()["run_id"])
    assert set(ResultsStore(fresh).runs()["run_id"]) == set(source.finished_runs()["run_id"]) - {configs[0].run_id}
    capsys.readouterr()
    for bad in ("latest", "0"):
        assert main(["merge", "--arithmetic", bad, str(source.directory), str(fresh)]) == 2
        assert capsys.readouterr().err.strip() == (f"error: merge --arithmetic: {bad!r} is not a version; accepted: "
                                                   f"'current' or a positive integer, e.g. {ARITHMETIC_VERSION}")


@pytest.mark.parametrize("content", [b"", b"run_id,status,epochs_done\n"], ids=["empty", "header-only"])
def test_merge_from_a_folder_with_no_run_yet_brings_nothing(tmp_path, content):
    # a GPU folder copied before its first run wrote a row: nothing to merge, nothing written
    source = tmp_path / "gpu"
    source.mkdir()
    (source / "runs.csv").write_bytes(content)
    from bnnlib.store import ResultsStore
    report = ResultsStore(tmp_path / "paper").merge_from(ResultsStore(source))
    assert report["merged"] == [] and report["unfinished"] == []
    assert not (tmp_path / "paper" / "runs.csv").exists()


# ---------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_errors_name_the_bad_value(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bnnlib", "run", "--dataset", "mnist", "--algorithm", "BP",
                             "--lr", "-1", "--results", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "lr=-1.0 is not accepted" in result.stderr
    assert not (tmp_path / "epochs.csv").exists()
    result = subprocess.run([sys.executable, "-m", "bnnlib", "run", "--dataset", "cifar100", "--algorithm", "BP"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and "invalid choice: 'cifar100'" in result.stderr


@pytest.mark.slow
def test_cli_run_of_one_mnist_epoch_as_in_the_readme(tmp_path, mnist_mirror):
    # exactly the README's command, data through the offline mirror into a fresh root
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BNNLIB_DATA_MIRROR": str(mnist_mirror),
           "BNNLIB_DATA_ROOT": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "bnnlib", "run", "--dataset", "mnist", "--algorithm", "DFA",
                             "--weights", "binary", "--activation", "sign", "--init", "0.1", "--lr", "1e-4",
                             "--epochs", "1", "--results", str(tmp_path / "results")],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    epochs = pd.read_csv(tmp_path / "results" / "epochs.csv")
    assert len(epochs) == 1 and epochs["test_accuracy"].iloc[0] > 0.5
    status = subprocess.run([sys.executable, "-m", "bnnlib", "status", str(tmp_path / "results")],
                            capture_output=True, text=True, env=env)
    assert status.returncode == 0 and "1 complete" in status.stdout


def test_missing_dataset_fails_before_any_compute(tmp_path):
    from bnnlib.data import DatasetError
    store = ResultsStore(tmp_path / "store")
    config = RunConfig(dataset="cifar10", algorithm="BP", epochs=1)
    with pytest.raises(DatasetError, match="(?s)cifar10.*BNNLIB_DATA_MIRROR"):
        execute([config], store, DataOptions(root=str(tmp_path / "empty"), download=False), progress=False)
    assert store.epochs().empty and store.runs().empty


@pytest.mark.slow
def test_a_run_predicting_one_class_is_flagged_collapsed(tmp_path, mnist_root):
    """lr = 10 saturates every unit: the loss stays finite, one class is predicted for every
    image — recorded as complete (it is not diverged) and flagged collapsed."""
    store = ResultsStore(tmp_path / "store")
    base = dict(**TINY, algorithm="BP", weights="continuous", activation="tanh", init=0.1, epochs=2, seed=1)
    healthy, saturated = RunConfig(lr=1e-4, **base), RunConfig(lr=10.0, **base)
    execute([healthy, saturated], store, DataOptions(root=str(mnist_root)), progress=False)
    runs = store.runs().set_index("run_id")
    assert runs.loc[saturated.run_id, "status"] == "complete" and bool(runs.loc[saturated.run_id, "collapsed"])
    assert not bool(runs.loc[healthy.run_id, "collapsed"])
    epochs = store.epochs().set_index("run_id")
    assert (epochs.loc[saturated.run_id, "test_classes_predicted"] == 1).all()
    assert (epochs.loc[healthy.run_id, "test_classes_predicted"] > 1).all()


def test_the_processor_is_named_with_the_instruction_set_torch_uses(monkeypatch):
    """A CPU run records its model and torch's kernel level: floats may differ in their last bits
    between kinds, so the records say which kind computed them."""
    import torch
    from bnnlib import runner
    runner.processor.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    try:
        name = runner.processor("cpu")
        assert name.endswith(" (AVX2)") and len(name) > len(" (AVX2)")
    finally:
        runner.processor.cache_clear()
