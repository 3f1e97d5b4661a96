"""The results store: appends, torn tails, kept states, run claims."""

import multiprocessing

import pytest

import pandas as pd

from bnnlib.store import EPOCH_KEY, TEXT_COLUMNS, ResultsStore


A, B = "a" * 16, "b" * 16  # run ids are 16 hex digits


def _row(run_id, epoch, loss=0.5):
    return {"run_id": run_id, "epoch": epoch, "loss": loss, "train_accuracy": 0.1}


def _raw(store):
    """epochs.csv as a reader loads it with one pandas call (the README's way): one row per run
    and epoch, whatever was recomputed."""
    table = pd.read_csv(store.epochs_path, dtype=TEXT_COLUMNS)
    assert not table.duplicated(EPOCH_KEY).any(), table[table.duplicated(EPOCH_KEY, keep=False)]
    return table


def test_epochs_are_appended_and_a_recomputed_epoch_replaces_its_row(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(B, 1), _row(A, 1)])
    before, inode = store.epochs_path.read_bytes(), store.epochs_path.stat().st_ino
    store.add_epochs([_row(A, 2)])
    assert store.epochs_path.read_bytes().startswith(before)  # appended, not rewritten
    assert store.epochs_path.stat().st_ino == inode and not store.replaced_path.exists()
    assert store.epochs_path.read_text().count("\n") == 4
    store.add_epochs([_row(A, 1, loss=0.25)])  # a recomputed epoch
    table = store.epochs()
    assert list(zip(table["run_id"], table["epoch"])) == [(A, 1), (A, 2), (B, 1)]
    assert table.set_index(["run_id", "epoch"]).loc[(A, 1), "loss"] == 0.25
    raw = _raw(store)
    assert list(zip(raw["run_id"], raw["epoch"], raw["loss"])) == [(B, 1, 0.5), (A, 2, 0.5), (A, 1, 0.25)]
    older = pd.read_csv(store.replaced_path, dtype=TEXT_COLUMNS)  # the replaced row, kept apart
    assert list(zip(older["run_id"], older["epoch"], older["loss"])) == [(A, 1, 0.5)]
    store.add_epochs([_row(A, 3)])  # after a replacement, appends again
    assert store.epochs_path.read_bytes().endswith(b"\n" + A.encode() + b",3,0.5,0.1\n") and len(_raw(store)) == 4


def test_one_epoch_twice_in_one_call_keeps_the_last(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1, loss=0.5), _row(A, 1, loss=0.25)])  # a first write
    store.add_epochs([_row(B, 1, loss=0.5), _row(B, 1, loss=0.25)])  # an append
    assert _raw(store)["loss"].tolist() == [0.25, 0.25]
    assert pd.read_csv(store.replaced_path, dtype=TEXT_COLUMNS)["run_id"].tolist() == [A, B]


def test_a_writer_killed_between_setting_apart_and_renaming_leaves_one_copy_apart(tmp_path, monkeypatch):
    """The older row is appended to epochs_replaced.csv before epochs.csv is renamed without it: a
    kill in between leaves it in both files, and the replacement done again keeps it apart once."""
    from bnnlib import store as store_module
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1), _row(A, 2)])
    original = store_module._atomic_write_bytes

    def killed(path, data):
        if path == store.epochs_path:
            raise KeyboardInterrupt("killed before the rename")
        original(path, data)
    monkeypatch.setattr(store_module, "_atomic_write_bytes", killed)
    with pytest.raises(KeyboardInterrupt):
        store.add_epochs([_row(A, 1, loss=0.25)])
    monkeypatch.setattr(store_module, "_atomic_write_bytes", original)
    assert _raw(store)["loss"].tolist() == [0.5, 0.5]  # nothing changed for readers
    store.add_epochs([_row(A, 1, loss=0.25)])  # the resumed run computes it again
    assert _raw(store)["loss"].tolist() == [0.5, 0.25]
    assert pd.read_csv(store.replaced_path)["loss"].tolist() == [0.5]


def test_a_new_column_rewrites_the_table_with_every_column(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1)])
    store.add_epochs([{**_row(A, 2), "extra": 7}])
    table = pd.read_csv(store.epochs_path)
    assert list(table["extra"].isna()) == [True, False] and len(table) == 2


def test_a_new_column_keeps_every_copy_of_a_recomputed_epoch(tmp_path):
    """The rewrite for a new column once dropped the older copies of recomputed epochs — the
    record of what another machine computed for them — keeping only the newest."""
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1), _row(B, 1)])
    store.add_epochs([_row(A, 1, loss=0.25)])  # recomputed
    store.add_epochs([{**_row(A, 1, loss=0.125), "boot": "2baf139f"}])  # recomputed again, a new column
    copies = store.epochs(every_copy=True)  # by run and epoch, each epoch's copies in the order written
    assert list(copies["loss"]) == [0.5, 0.25, 0.125, 0.5] and list(copies["boot"].isna()) == [True, True, False, True]
    assert store.epochs().set_index(["run_id", "epoch"]).loc[(A, 1), "loss"] == 0.125  # the newest wins
    assert sorted(_raw(store)["loss"]) == [0.125, 0.5]  # epochs.csv: one row per run and epoch


def test_a_folder_written_with_every_copy_is_tidied_to_the_rows_read_before(tmp_path):
    """Folders written before a recomputed row replaced the older one hold every copy in
    epochs.csv: tidying moves the older copies apart and keeps, byte for byte, the rows read."""
    store = ResultsStore(tmp_path)
    lines = ["run_id,epoch,loss,train_accuracy,processor", f"{A},1,0.5,0.1,X", f"{A},2,0.5,0.1,X",
             f"{B},1,0.3333333333333333,0.1,X", f"{A},1,0.25,0.1,Y", f"{A},2,0.125,0.1,Y", f"{A},1,0.0625,0.1,Z"]
    store.epochs_path.parent.mkdir(parents=True, exist_ok=True)
    store.epochs_path.write_text("\n".join(lines) + "\n")
    read, copies = store.epochs(), store.epochs(every_copy=True)
    assert store.set_apart_replaced_epochs() == 3
    assert store.epochs_path.read_text() == "\n".join(lines[i] for i in (0, 3, 5, 6)) + "\n"
    assert store.replaced_path.read_text() == "\n".join(lines[i] for i in (0, 1, 2, 4)) + "\n"
    pd.testing.assert_frame_equal(store.epochs(), read)
    pd.testing.assert_frame_equal(store.epochs(every_copy=True), copies)
    assert store.set_apart_replaced_epochs() == 0  # tidy already
    assert ResultsStore(tmp_path / "none").set_apart_replaced_epochs() == 0


def test_the_tidy_epochs_command_says_what_it_moved(tmp_path, capsys):
    from bnnlib.cli import main
    store = ResultsStore(tmp_path)
    store.epochs_path.write_text(f"run_id,epoch,loss\n{A},1,0.5\n{A},1,0.25\n")
    assert main(["tidy-epochs", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == (f"{tmp_path}/epochs.csv: 1 older copy of a recomputed epoch moved to "
                                               f"{tmp_path}/epochs_replaced.csv; 1 row left, one per run and epoch")
    assert main(["tidy-epochs", str(tmp_path)]) == 0
    assert "one row per run and epoch already" in capsys.readouterr().out


@pytest.mark.parametrize("boot", ["2baf139f", "00123456", "1e345678"])
def test_a_boot_id_is_read_back_as_written_even_where_it_looks_like_a_number(tmp_path, boot):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1), {**_row(A, 2), "boot": boot}])
    store.update_runs([{"run_id": A, "epochs_done": 2, "status": "running", "boot": boot}])
    assert store.epochs()["boot"].iloc[1] == boot and store.runs()["boot"].iloc[0] == boot


# hex digests that pandas alone would read as numbers: all digits with a leading zero (an
# integer, the zero lost), or digits around one "e" (a float); about 1 run id in 800 is such,
# and a folder of a single run is a folder of such ids
@pytest.mark.parametrize("run_id, code", [("0123456789012345", "012345678901"),
                                          ("1234567890e12345", "1234e5678901")])
def test_hex_ids_are_read_back_as_written_even_where_they_look_like_numbers(tmp_path, run_id, code):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(run_id, 1)])
    store.update_runs([{"run_id": run_id, "epochs_done": 1, "status": "running", "code": code,
                        "data_digest": "0" * 63 + "1"}])
    store.update_table("packed.csv", [{"run_id": run_id, "file_bytes": 1}], key=["run_id"])
    runs = store.runs()
    assert store.epochs()["run_id"].tolist() == [run_id] and store.table("packed.csv")["run_id"].tolist() == [run_id]
    assert runs[["run_id", "code", "data_digest"]].iloc[0].tolist() == [run_id, code, "0" * 63 + "1"]


def test_a_torn_last_line_is_dropped_and_cut_before_the_next_append(tmp_path):
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1), _row(A, 2)])
    with open(store.epochs_path, "ab") as f:
        f.write(A.encode() + b",3,0.1")  # a process killed in the middle of an append
    assert list(store.epochs()["epoch"]) == [1, 2]
    store.add_epochs([_row(A, 3, loss=0.3)])
    table = pd.read_csv(store.epochs_path)  # a plain reader sees a clean table
    assert list(table["epoch"]) == [1, 2, 3] and table["loss"].tolist() == [0.5, 0.5, 0.3]


def test_a_torn_last_line_is_dropped_when_a_recomputed_epoch_rewrites_the_table(tmp_path):
    """Rows of a group's epoch, the last torn by a kill: the resumed group computes that epoch
    again for every member; the whole row replaces the complete one, the torn one is gone."""
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1), _row(B, 1)])
    with open(store.epochs_path, "ab") as f:
        f.write(f"{A},2,0.5,0.1\n{B},2,0.".encode())  # killed mid-append: A's row whole, B's torn
    store.add_epochs([_row(A, 2, loss=0.25), _row(B, 2, loss=0.125)])
    table = _raw(store)
    assert list(zip(table["run_id"], table["epoch"], table["loss"])) == [(A, 1, 0.5), (B, 1, 0.5), (A, 2, 0.25),
                                                                        (B, 2, 0.125)]
    assert pd.read_csv(store.replaced_path)["loss"].tolist() == [0.5]  # A's first copy; B's torn line is no row


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


GARBAGE = {
    "text in a number column": (A + ",2,oops,0.1\n", r"epochs.csv line 3: loss='oops' is not a number"),
    "an accuracy above 1": (A + ",2,0.5,7\n", r"epochs.csv line 3: train_accuracy=7.0 is not a fraction"),
    "a garbage run id": ("hello world,2,0.5,0.1\n", r"epochs.csv line 3: run_id='hello world' is not a run id"),
    "too many fields": (A + ",2,0.5,0.1,9,9,9\n", r"epochs.csv: malformed CSV .*line 3"),
}


@pytest.mark.parametrize("case", GARBAGE)
def test_a_malformed_row_is_an_error_naming_file_and_line(tmp_path, case):
    line, message = GARBAGE[case]
    store = ResultsStore(tmp_path)
    store.add_epochs([_row(A, 1)])
    with open(store.epochs_path, "a") as f:
        f.write(line)
    with pytest.raises(ValueError, match=message):
        store.epochs()


def test_a_garbage_line_in_runs_csv_is_an_error_not_a_run(tmp_path):
    store = ResultsStore(tmp_path)
    store.update_runs([{"run_id": A, "status": "complete", "epochs_done": 3}])
    with open(store.runs_path, "a") as f:
        f.write("garbage,,\n")
    with pytest.raises(ValueError, match=r"runs.csv line 3: run_id='garbage'"):
        store.runs()


def test_reading_an_absent_store_leaves_no_folder_behind(tmp_path):
    missing = tmp_path / "nowhere"
    store = ResultsStore(missing)
    assert store.runs().empty and store.epochs().empty and store.load_checkpoint(A) is None
    assert not missing.exists()  # a mistyped --results path is not turned into an empty store
    store.add_epochs([_row(A, 1)])
    assert store.epochs_path.exists()


def test_a_merge_replaces_a_partial_start_here_and_keeps_every_older_copy_apart(tmp_path):
    """A run started here and finished elsewhere: merging brings its rows, which replace the
    rows of the start here; those, and the source's own older copies, are kept apart."""
    source, here = ResultsStore(tmp_path / "gpu"), ResultsStore(tmp_path / "paper")
    source.add_epochs([_row(A, 1), _row(A, 2)])
    source.add_epochs([_row(A, 1, loss=0.25)])  # restarted there from scratch
    source.update_runs([{"run_id": A, "epochs_done": 2, "epochs_requested": 2, "status": "complete"}])
    here.add_epochs([_row(A, 1, loss=0.75), _row(B, 1), _row(B, 2)])
    here.update_runs([{"run_id": A, "epochs_done": 1, "epochs_requested": 2, "status": "running"},
                      {"run_id": B, "epochs_done": 2, "epochs_requested": 2, "status": "complete"}])
    assert here.merge_from(source)["merged"] == [A]
    raw = _raw(here)
    assert sorted(zip(raw["run_id"], raw["epoch"], raw["loss"])) == [(A, 1, 0.25), (A, 2, 0.5), (B, 1, 0.5),
                                                                     (B, 2, 0.5)]
    older = pd.read_csv(here.replaced_path, dtype=TEXT_COLUMNS)
    assert sorted(zip(older["run_id"], older["epoch"], older["loss"])) == [(A, 1, 0.5), (A, 1, 0.75)]


def _write_and_recompute(directory, writer, n):
    store = ResultsStore(directory)
    run_id = f"{writer:016x}"
    for loss in (0.5, 0.25):  # every epoch, then every epoch again (a run restarted from scratch)
        for epoch in range(1, n + 1):
            store.add_epochs([{"run_id": run_id, "epoch": epoch, "loss": loss, "train_accuracy": 0.1}])


@pytest.mark.slow
def test_concurrent_writers_replacing_rows_lose_nothing(tmp_path):
    """Three processes append and replace rows of one folder at once: each replacement's rename
    never drops another writer's append (both happen under the folder's lock)."""
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_write_and_recompute, args=(tmp_path, w, 30)) for w in range(3)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
        assert p.exitcode == 0
    store = ResultsStore(tmp_path)
    raw = _raw(store)
    assert len(raw) == 90 and set(raw["loss"]) == {0.25}
    older = pd.read_csv(store.replaced_path, dtype=TEXT_COLUMNS)
    assert len(older) == 90 and set(older["loss"]) == {0.5} and not older.duplicated(EPOCH_KEY).any()
