"""The results store: appends, torn tails, kept states, run claims."""

import multiprocessing

import pandas as pd

from bnnlib.store import ResultsStore


def _row(run_id, epoch, loss=0.5):
    return {"run_id": run_id, "epoch": epoch, "loss": loss, "train_accuracy": 0.1}


def test_epochs_are_appended_and_the_newest_copy_wins(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row("b", 1), _row("a", 1)])
    before = store.epochs_path.read_bytes()
    store.add_epochs([_row("a", 2)])
    assert store.epochs_path.read_bytes().startswith(before)  # appended, not rewritten
    assert store.epochs_path.read_text().count("\n") == 4
    store.add_epochs([_row("a", 1, loss=0.25)])  # a recomputed epoch
    table = store.epochs()
    assert list(zip(table["run_id"], table["epoch"])) == [("a", 1), ("a", 2), ("b", 1)]
    assert table.set_index(["run_id", "epoch"]).loc[("a", 1), "loss"] == 0.25


def test_a_new_column_rewrites_the_table_with_every_column(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row("a", 1)])
    store.add_epochs([{**_row("a", 2), "extra": 7}])
    table = pd.read_csv(store.epochs_path)
    assert list(table["extra"].isna()) == [True, False] and len(table) == 2


def test_a_torn_last_line_is_dropped_and_cut_before_the_next_append(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row("a", 1), _row("a", 2)])
    with open(store.epochs_path, "ab") as f:
        f.write(b"a,3,0.1")  # a process killed in the middle of an append
    assert list(store.epochs()["epoch"]) == [1, 2]
    store.add_epochs([_row("a", 3, loss=0.3)])
    table = pd.read_csv(store.epochs_path)  # a plain reader sees a clean table
    assert list(table["epoch"]) == [1, 2, 3] and table["loss"].tolist() == [0.5, 0.5, 0.3]


def test_final_states_are_kept_apart_from_checkpoints(tmp_path):
    store = ResultsStore(tmp_path)
    store.save_checkpoint("r", {"epochs_done": 3})
    store.save_final_state("r", {"epochs_done": 5})
    assert not store.checkpoint_path("r").exists()
    assert store.load_final_state("r") == {"epochs_done": 5}
    assert store.load_checkpoint("r") == {"epochs_done": 5}  # a kept state can be extended
    assert store.load_final_state("other") is None


def _hold(directory, run_ids, ready, release):
    with ResultsStore(directory).claim(run_ids) as held:
        assert held == sorted(run_ids)
        ready.set()
        release.wait(30)


def test_claims_exclude_other_processes_until_released(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, ["b", "c"], ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with ResultsStore(tmp_path).claim(["a", "b", "c", "d"]) as held:
            assert held == ["a", "d"]
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
    with ResultsStore(tmp_path).claim(["a", "b", "c", "d"], wait=True) as held:
        assert held == ["a", "b", "c", "d"]
