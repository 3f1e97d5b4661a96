"""The results store: tidy CSV tables under one folder, safe for concurrent writers.

    <dir>/epochs.csv       one row per run per epoch (config columns + metrics + timing)
    <dir>/epochs_replaced.csv  the older copies of recomputed epochs (same columns; usually empty
                           or absent)
    <dir>/runs.csv         one row per run: config, status, epochs done, device, versions, time,
                           processor and boot (as each epoch row of epochs.csv)
    <dir>/checkpoints/     per-run resume state (git-ignored; deleted once a run completes)
    <dir>/states/          final trained states kept for export or extension (git-ignored)
    <dir>/claims/          one lock file per run: who is training it now (git-ignored)

Both tables load with one pandas call (``pd.read_csv(dir / "epochs.csv", dtype=TEXT_COLUMNS)``:
the hex ids are text, even where one looks like a number) or with
:meth:`ResultsStore.epochs` / :meth:`ResultsStore.runs`. Every write takes an exclusive
``flock`` on ``<dir>/.lock``. ``runs.csv`` (one row per run) is rewritten into a temporary
file and renamed over the old one. ``epochs.csv`` grows by appends — rewriting it after every
epoch cost more than the epoch itself once it held the 62 400 rows of the paper budget. An
epoch computed again (a run restarted from scratch: a complete run extended without a kept
state, a corrupt state discarded; or resumed from a checkpoint older than its last row: a kill
between the rows and the checkpoint, a torn append) replaces its row: under the same lock its
older row moves to ``epochs_replaced.csv`` (appended, never lost: the copies show, for instance,
whether two kinds of processor computed an epoch alike) and ``epochs.csv`` is rewritten without
it into a temporary file renamed over the old one. So ``epochs.csv`` holds one row per run and
epoch, and only a recomputing append pays for a rewrite. A torn last line (a process killed
mid-append) is dropped by readers and cut before the next append. Folders written before this
held every copy in ``epochs.csv`` (readers keep the newest);
:meth:`ResultsStore.set_apart_replaced_epochs` (``python -m bnnlib tidy-epochs``) moves their
older copies out.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import pandas as pd
import torch

EPOCH_KEY = ["run_id", "epoch"]
#: where a recomputed epoch's older row goes when the new one replaces it in epochs.csv
REPLACED_EPOCHS = "epochs_replaced.csv"
#: checkpoint and state files: this magic, the sha256 of the payload, then ``torch.save``'s bytes
CHECKPOINT_MAGIC = b"BNNLIB-STATE-1\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _epoch_number(text: str) -> Optional[int]:
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number == int(number) else None


def _row_lines(data: bytes) -> List[bytes]:
    """The lines of complete CSV bytes after the header, each with its newline."""
    return [line + b"\n" for line in data.split(b"\n")[1:-1]]


def _csv_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)  # floats as shortest round-trip repr
    return buffer.getvalue().encode()


def _lines_holding(data: bytes, header: Sequence[str], keys: Iterable[Tuple[str, int]]) -> List[Tuple[int, int]]:
    """(start, end) of each row of complete epochs.csv bytes whose (run_id, epoch) is among
    ``keys``, in file order. Each run id is found by a byte search and only the lines holding it
    are parsed: a recomputed epoch is told apart from a new one without parsing the table."""
    if "run_id" not in header or "epoch" not in header:
        return []
    i_run, i_epoch = list(header).index("run_id"), list(header).index("epoch")
    wanted = defaultdict(set)
    for run_id, epoch in keys:
        wanted[str(run_id)].add(int(epoch))
    first_row = data.find(b"\n") + 1
    spans = set()
    for run_id, epochs in wanted.items():
        needle = run_id.encode()
        at = data.find(needle, first_row)
        while at != -1:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at) + 1
            fields = next(csv.reader([data[start:end - 1].decode()]), [])
            if len(fields) > max(i_run, i_epoch) and fields[i_run] == run_id \
                    and _epoch_number(fields[i_epoch]) in epochs:
                spans.add((start, end))
            at = data.find(needle, end)
    return sorted(spans)


_RUN_ID = r"[0-9a-f]{16}"
_STATUSES = ("complete", "running", "diverged")
#: columns read as text whatever they look like: hex digests — a run id, a commit, a data
#: digest, a boot id — can be all digits ("0123…", an integer to pandas, its zero lost) or
#: digits around one "e" ("1e34…", a float); a folder of few runs may hold only such ids, and
#: most rows recorded before boots were have no boot
TEXT_COLUMNS = {"run_id": str, "code": str, "data_digest": str, "boot": str}
# what each known column must hold (columns a table lacks are not required: older folders)
_SCHEMA = {
    "epochs.csv": {"run_id": "id", "epoch": "positive integer", "loss": "number",
                   **{f"{split}_{m}": "fraction" for split in ("train", "test")
                      for m in ("accuracy", "precision", "f1")}},
    "runs.csv": {"run_id": "id", "epochs_done": "integer", "status": "status"},
    "diagnostics.csv": {"run_id": "id", "epoch": "positive integer", "layer": "positive integer",
                        "pass_fraction": "fraction", "flip_ratio": "fraction"},
}
_SCHEMA[REPLACED_EPOCHS] = _SCHEMA["epochs.csv"]  # the older copies of epochs.csv's rows


def _bad_rows(column: pd.Series, kind: str) -> pd.Series:
    if kind == "id":
        return ~column.astype(str).str.fullmatch(_RUN_ID)
    if kind == "status":
        return ~column.isin(_STATUSES)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()  # text where a number belongs
    if kind in ("integer", "positive integer"):
        bad |= numbers.isna() | (numbers != numbers.round()) | (numbers < (1 if kind == "positive integer" else 0))
    if kind == "fraction":
        bad |= (numbers < 0) | (numbers > 1)
    return bad


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _check_schema(table: pd.DataFrame, path: Path) -> None:
    """Every known column holds what it must; a bad row is an error naming file and line."""
    for column, kind in _SCHEMA.get(path.name, {}).items():
        if column not in table.columns:
            continue
        bad = _bad_rows(table[column], kind)
        if bad.any():
            index = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(f"{path} line {index + 2}: {column}={_plain(table[column].iloc[index])!r} is not "
                             f"{'a run id (16 hex digits)' if kind == 'id' else 'one of ' + ', '.join(_STATUSES) if kind == 'status' else 'a ' + kind}"
                             f"; fix or delete that line (line 1 is the header)")


#: what merge_from brings, by name, in the order it writes them
MERGED_TABLES = ("epochs", "runs", "packed", "diagnostics")


class ResultsStore:
    def __init__(self, directory: Union[str, Path]):
        self.directory = Path(directory)  # created by the first write: reading never leaves a folder behind
        self.epochs_path = self.directory / "epochs.csv"
        self.runs_path = self.directory / "runs.csv"
        self.replaced_path = self.directory / REPLACED_EPOCHS
        self.checkpoints = self.directory / "checkpoints"

    @contextmanager
    def _locked(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ tables
    @staticmethod
    def _complete_bytes(path: Path) -> bytes:
        """The file's content up to its last complete line (a torn tail is left out)."""
        if not path.exists():
            return b""
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]
        return data

    @classmethod
    def _read(cls, path: Path) -> pd.DataFrame:
        data = cls._complete_bytes(path)
        if not data.strip():
            return pd.DataFrame()
        try:
            table = pd.read_csv(io.BytesIO(data), dtype=TEXT_COLUMNS)
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: malformed CSV ({error}); fix or delete that line "
                             f"(line 1 is the header)") from error
        _check_schema(table, path)
        return table

    def epochs(self, every_copy: bool = False) -> pd.DataFrame:
        """All epoch records (one per run × epoch: the newest copy, also in a folder written
        before epochs.csv held one; ``every_copy``: the older copies of recomputed epochs too,
        from ``epochs_replaced.csv``, each before its newer copies), sorted by run and epoch."""
        table = self._read(self.epochs_path)
        if every_copy:
            older = self._read(self.replaced_path)
            if not older.empty:
                table = pd.concat([older, table], ignore_index=True) if not table.empty else older
        if table.empty:
            return table
        if not every_copy:
            table = table.drop_duplicates(subset=EPOCH_KEY, keep="last")
        return table.sort_values(EPOCH_KEY, kind="stable").reset_index(drop=True)

    def runs(self) -> pd.DataFrame:
        """One row per run (its latest metadata)."""
        return self._read(self.runs_path)

    def epoch_counts(self, epochs: Optional[pd.DataFrame] = None) -> dict:
        """run id → how many of its epochs 1, 2, … are recorded in epochs.csv without a gap
        (``epochs``: that file as :meth:`epochs` read it, to read it once for several uses).
        A run is complete only when this reaches its epochs: runs.csv alone is not trusted."""
        epochs = self.epochs() if epochs is None else epochs
        if epochs.empty:
            return {}
        counts = {}
        for run_id, numbers in epochs.groupby("run_id")["epoch"]:
            present = set(numbers.astype(int))
            n = 0
            while n + 1 in present:
                n += 1
            counts[run_id] = n
        return counts

    def _merge(self, path: Path, rows: Iterable[dict], key: List[str]) -> None:
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        with self._locked():
            self._merge_unlocked(path, new, key)

    def _merge_unlocked(self, path: Path, new: pd.DataFrame, key: List[str]) -> None:
        old = self._read(path)
        table = pd.concat([old, new], ignore_index=True) if not old.empty else new
        # a resumed epoch recomputes the same row: keep the newest copy of each key
        table = table.drop_duplicates(subset=key, keep="last").sort_values(key, kind="stable")
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)  # floats as shortest round-trip repr
        _atomic_write_bytes(path, buffer.getvalue().encode())

    def add_epochs(self, rows: Iterable[dict]) -> None:
        """Append epoch rows; a row whose run and epoch epochs.csv already holds replaces the
        older row, which moves to ``epochs_replaced.csv`` (a new column rewrites the table once,
        with every column)."""
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        with self._locked():
            data = self._complete_bytes(self.epochs_path)
            header = data[:data.find(b"\n")].decode().split(",") if data else None
            if header is None or set(new.columns) - set(header):
                self._rewrite_epochs_unlocked(new)
                return
            earlier = new.duplicated(EPOCH_KEY, keep="last") if set(EPOCH_KEY) <= set(new.columns) else None
            added = _csv_bytes(new.reindex(columns=header))
            header_line, added = added[:added.find(b"\n") + 1], _row_lines(added)
            if earlier is not None and earlier.any():  # one epoch twice in one call: the last is kept
                replaced_here = [line for line, old in zip(added, earlier) if old]
                added = [line for line, old in zip(added, earlier) if not old]
            else:
                replaced_here = []
            keys = zip(new["run_id"], new["epoch"]) if set(EPOCH_KEY) <= set(new.columns) else ()
            spans = _lines_holding(data, header, keys)
            if spans or replaced_here:  # recomputed epochs: their older rows move out, then one rename
                self._keep_replaced_unlocked(header_line, [data[a:b] for a, b in spans] + replaced_here)
                kept, position = [], 0
                for start, end in spans:
                    kept.append(data[position:start])
                    position = end
                kept.append(data[position:])
                _atomic_write_bytes(self.epochs_path, b"".join(kept + added))
                return
            if self.epochs_path.stat().st_size != len(data):  # a torn tail: cut it first
                os.truncate(self.epochs_path, len(data))
            with open(self.epochs_path, "ab") as f:
                f.write(b"".join(added))
                f.flush()
                os.fsync(f.fileno())

    def _rewrite_epochs_unlocked(self, new: pd.DataFrame) -> None:
        """epochs.csv with ``new`` appended and every column of both; the rows ``new`` replaces
        (same run and epoch) move to ``epochs_replaced.csv`` first, in the order written."""
        old = self._read(self.epochs_path)
        if set(EPOCH_KEY) <= set(new.columns):
            earlier = new.duplicated(EPOCH_KEY, keep="last")
            replaced = new[earlier]
            new = new[~earlier]
            if not old.empty and set(EPOCH_KEY) <= set(old.columns):
                keys = pd.MultiIndex.from_frame(new[EPOCH_KEY].astype({"run_id": str, "epoch": int}))
                stale = pd.MultiIndex.from_frame(old[EPOCH_KEY].astype({"run_id": str, "epoch": int})).isin(keys)
                replaced = pd.concat([old[stale], replaced], ignore_index=True)
                old = old[~stale]
            if not replaced.empty:
                written = _csv_bytes(replaced)
                self._keep_replaced_unlocked(written[:written.find(b"\n") + 1], _row_lines(written))
        table = pd.concat([old, new], ignore_index=True) if not old.empty else new
        _atomic_write_bytes(self.epochs_path, _csv_bytes(table))

    def _keep_replaced_unlocked(self, header_line: bytes, lines: List[bytes]) -> None:
        """Append the replaced rows ``lines`` (CSV under ``header_line``) to epochs_replaced.csv,
        before epochs.csv loses them: a writer killed in between leaves a row in both files,
        and the next replacement of it adds no second copy (a line already there is skipped)."""
        if not lines:
            return
        existing = self._complete_bytes(self.replaced_path)
        if not existing.strip():
            _atomic_write_bytes(self.replaced_path, header_line + b"".join(lines))
            return
        if existing[:existing.find(b"\n") + 1] != header_line:  # other columns: one table with all
            older = self._read(self.replaced_path)
            incoming = pd.read_csv(io.BytesIO(header_line + b"".join(lines)), dtype=TEXT_COLUMNS)
            _atomic_write_bytes(self.replaced_path, _csv_bytes(pd.concat([older, incoming], ignore_index=True)))
            return
        fresh = [line for line in lines if b"\n" + line not in existing]
        if self.replaced_path.stat().st_size != len(existing):  # a torn tail: cut it first
            os.truncate(self.replaced_path, len(existing))
        if fresh:
            with open(self.replaced_path, "ab") as f:
                f.write(b"".join(fresh))
                f.flush()
                os.fsync(f.fileno())

    def set_apart_replaced_epochs(self) -> int:
        """Move the older copies of recomputed epochs that epochs.csv holds (a folder written
        before a recomputed row replaced the older one) to ``epochs_replaced.csv``; returns how
        many. epochs.csv keeps the rows :meth:`epochs` reads, byte for byte, in their order."""
        with self._locked():
            data = self._complete_bytes(self.epochs_path)
            table = self._read(self.epochs_path)
            if table.empty:
                return 0
            lines = _row_lines(data)
            if len(lines) != len(table):
                raise ValueError(f"{self.epochs_path}: {len(lines)} lines but {len(table)} rows (a blank line or a "
                                 f"line break inside a field); fix that line first")
            older = table.duplicated(EPOCH_KEY, keep="last").to_numpy()
            if not older.any():
                return 0
            header_line = data[:data.find(b"\n") + 1]
            self._keep_replaced_unlocked(header_line, [line for line, old in zip(lines, older) if old])
            _atomic_write_bytes(self.epochs_path,
                                header_line + b"".join(line for line, old in zip(lines, older) if not old))
            return int(older.sum())

    def update_runs(self, rows: Iterable[dict]) -> None:
        self._merge(self.runs_path, rows, ["run_id"])

    def update_table(self, name: str, rows: Iterable[dict], key=("run_id",)) -> None:
        """Merge rows into another table of the folder (e.g. ``packed.csv``), newest wins."""
        self._merge(self.directory / name, rows, list(key))

    def table(self, name: str) -> pd.DataFrame:
        return self._read(self.directory / name)

    def run_record(self, run_id: str) -> Optional[dict]:
        runs = self.runs()
        if runs.empty or run_id not in set(runs["run_id"]):
            return None
        return runs[runs["run_id"] == run_id].iloc[-1].to_dict()

    # ------------------------------------------------------------------ merging
    def finished_runs(self) -> pd.DataFrame:
        """The rows of runs.csv whose run is over: diverged, or complete with every epoch it
        asked for recorded in epochs.csv (runs.csv alone is not trusted)."""
        runs = self.runs()
        if runs.empty:
            return runs
        counts = self.epoch_counts()
        recorded = runs["run_id"].map(lambda run_id: counts.get(run_id, 0))
        wanted = runs["epochs_requested"] if "epochs_requested" in runs.columns else runs["epochs_done"]
        over = (runs["status"] == "diverged") | ((runs["status"] == "complete") & (recorded >= wanted))
        return runs[over]

    def merge_from(self, source: "ResultsStore", only: Optional[Iterable[str]] = None,
                   tables: Sequence[str] = MERGED_TABLES) -> dict:
        """Bring the finished runs of another results folder (a GPU machine's, another
        checkout's) into this one: their epochs.csv, runs.csv, packed.csv and diagnostics.csv
        rows, their packed files and kept states. Unfinished runs stay behind (their checkpoints
        do not travel: they are trained here from scratch), runs already finished here are kept
        as they are, and runs a process is training here now are left for a later merge.

        Everything is checked before anything is written: both folders must be readable, and a
        dataset's runs must come from the same data (``data_digest``) and, like every run of one
        folder, from the same arithmetic version. Returns what was merged and left out.

        ``only``: just these run ids of the source; ``tables``: just these of its tables (packed
        models travel with "packed", kept states with "runs")."""
        from .diagnostics import DIAGNOSTICS_KEY, DIAGNOSTICS_TABLE

        if source.directory.resolve() == self.directory.resolve():
            raise ValueError(f"merge: the source {source.directory} is the results folder itself")
        unknown = set(tables) - set(MERGED_TABLES)
        if unknown:
            raise ValueError(f"merge: unknown table(s) {', '.join(sorted(unknown))}; "
                             f"accepted: {', '.join(MERGED_TABLES)}")
        if not source.runs_path.exists():
            raise ValueError(f"merge: {source.directory} holds no runs.csv; accepted: a results folder")
        report = {"merged": [], "unfinished": [], "already_here": [], "training_here": [], "packed": 0, "states": 0}
        every = source.runs()
        if every.empty:  # a folder whose first run has not written a row yet: nothing to bring
            return report
        finished = source.finished_runs()
        if only is not None:
            only = set(only)
            every, finished = every[every["run_id"].isin(only)], finished[finished["run_id"].isin(only)]
        here = self.runs()
        done_here = set(self.finished_runs()["run_id"]) if not here.empty else set()
        candidates = finished[~finished["run_id"].isin(done_here)]
        if not here.empty and not candidates.empty:
            self._check_same_origin(candidates, here, source)
        report["unfinished"] = sorted(set(every["run_id"]) - set(finished["run_id"]))
        report["already_here"] = sorted(set(finished["run_id"]) & done_here)
        with self.claim(candidates["run_id"]) as held:  # runs trained here now are not touched
            report["training_here"] = sorted(set(candidates["run_id"]) - set(held))
            chosen = set(held)
            if not chosen:
                return report
            # in this order: epochs before runs, so runs.csv never calls a run complete before its epochs are here;
            # every copy of the source's epochs: each epoch's older copies before its newest
            readers = {"epochs": lambda: (self.epochs_path, source.epochs(every_copy=True), EPOCH_KEY),
                       "runs": lambda: (self.runs_path, every, ["run_id"]),
                       "packed": lambda: (self.directory / "packed.csv", source.table("packed.csv"), ["run_id"]),
                       "diagnostics": lambda: (self.directory / DIAGNOSTICS_TABLE, source.table(DIAGNOSTICS_TABLE),
                                               list(DIAGNOSTICS_KEY))}
            with self._locked():
                for path, table, key in (readers[name]() for name in MERGED_TABLES if name in tables):
                    if not table.empty:
                        rows = table[table["run_id"].isin(chosen)]
                        if rows.empty:
                            continue
                        if path == self.epochs_path:  # one row per run and epoch; older copies (the
                            self._rewrite_epochs_unlocked(rows)  # source's, a start here) set apart
                        else:
                            self._merge_unlocked(path, rows, key)
            files = [f for f in (("packed", "packed", "bnn"), ("states", "runs", "pt")) if f[1] in tables]
            for run_id in sorted(chosen):
                for folder, name in ((folder, f"{run_id}.{suffix}") for folder, _, suffix in files):
                    origin, target = source.directory / folder / name, self.directory / folder / name
                    if origin.exists() and not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        _atomic_write_bytes(target, origin.read_bytes())
                        report[folder] += 1
                self.delete_checkpoint(run_id)  # a partial start here is superseded
            report["merged"] = sorted(chosen)
        return report

    @staticmethod
    def _check_same_origin(incoming: pd.DataFrame, here: pd.DataFrame, source: "ResultsStore") -> None:
        """One dataset's runs from one data file, and one folder's runs from one arithmetic."""
        if "data_digest" in incoming.columns and "data_digest" in here.columns:
            for dataset, digests in incoming.groupby("dataset")["data_digest"]:
                ours = set(here.loc[here["dataset"] == dataset, "data_digest"].dropna())
                theirs = set(digests.dropna())
                if ours and theirs - ours:  # a digest not seen here: other data
                    raise ValueError(f"merge: {source.directory} trained {dataset} on data with digest "
                                     f"{', '.join(sorted(theirs))}; accepted: {', '.join(sorted(ours))}, the "
                                     f"data of the runs here")
        if "arithmetic" in incoming.columns and "arithmetic" in here.columns and here["arithmetic"].notna().any():
            newest = int(here["arithmetic"].max())
            other = sorted({int(v) for v in incoming["arithmetic"].dropna()} - {newest})
            if other:
                raise ValueError(f"merge: {source.directory} holds runs of arithmetic version "
                                 f"{', '.join(map(str, other))}; accepted: {newest}, the version of the runs "
                                 f"here (one folder's records come from one version of the arithmetic)")

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self, run_id: str) -> Path:
        return self.checkpoints / f"{run_id}.pt"

    def state_path(self, run_id: str) -> Path:
        return self.directory / "states" / f"{run_id}.pt"

    @staticmethod
    def _save(path: Path, state: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        _atomic_write_bytes(path, CHECKPOINT_MAGIC + hashlib.sha256(payload).digest() + payload)

    @staticmethod
    def _load(path: Path) -> Optional[dict]:
        """A saved state if it is intact, else None: a corrupt, truncated or unreadable file is
        named in a warning and deleted (its run restarts from scratch; records stay exact)."""
        if not path.exists():
            return None
        try:
            content = path.read_bytes()
            if content.startswith(CHECKPOINT_MAGIC):
                start = len(CHECKPOINT_MAGIC)
                digest, payload = content[start:start + 32], content[start + 32:]
                if hashlib.sha256(payload).digest() != digest:
                    raise ValueError("its sha256 does not match the one written with it")
            else:  # written before states carried a digest: only torch's own checks apply
                payload = content
            return torch.load(io.BytesIO(payload), weights_only=True)
        except Exception as error:
            warnings.warn(f"corrupt or unreadable state {path} ({type(error).__name__}: {error}); deleting "
                          f"it: its run starts again from scratch")
            path.unlink(missing_ok=True)
            return None

    def clean_stale_temporaries(self) -> List[Path]:
        """Delete the temporary files of writers that died mid-write (their process is gone)."""
        removed = []
        for folder in (self.directory, self.checkpoints, self.directory / "states"):
            for path in folder.glob(".*.tmp") if folder.is_dir() else []:
                pid = path.name.rsplit(".", 2)[-2]
                if pid.isdigit() and not _alive(int(pid)):
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    def save_checkpoint(self, run_id: str, state: dict) -> None:
        self._save(self.checkpoint_path(run_id), state)

    def save_final_state(self, run_id: str, state: dict) -> None:
        """Keep a completed run's trained state (for export, or to extend the run later)."""
        self._save(self.state_path(run_id), state)
        self.delete_checkpoint(run_id)

    def load_checkpoint(self, run_id: str) -> Optional[dict]:
        """The run's resume state: its checkpoint, else its kept final state, else None."""
        for path in (self.checkpoint_path(run_id), self.state_path(run_id)):
            state = self._load(path)
            if state is not None:
                return state
        return None

    def load_final_state(self, run_id: str) -> Optional[dict]:
        return self._load(self.state_path(run_id))

    def delete_checkpoint(self, run_id: str) -> None:
        self.checkpoint_path(run_id).unlink(missing_ok=True)

    # ------------------------------------------------------------------ claims
    def claimed_now(self) -> Optional[set]:
        """The runs some process is training now (their claim's lock is held), read from Linux's
        ``/proc/locks`` without touching the locks; None where that cannot be read."""
        try:
            lines = Path("/proc/locks").read_text().splitlines()
        except OSError:
            return None
        # the inode of every flock held (a waiter's line has "->"); devices are not compared:
        # overlay filesystems may name a file's device differently in stat and in /proc/locks
        held = set()
        for line in lines:
            fields = line.split()
            if len(fields) >= 6 and fields[1] == "FLOCK" and "->" not in fields:
                held.add(int(fields[5].rsplit(":", 1)[1]))
        folder = self.directory / "claims"
        out = set()
        for path in sorted(folder.glob("*.lock")) if folder.is_dir() else ():
            try:
                info = path.stat()
            except OSError:  # removed meanwhile
                continue
            if info.st_ino in held:
                out.add(path.stem)
        return out

    @contextmanager
    def claim(self, run_ids: Iterable[str], wait: bool = False):
        """Claim runs for training: yields the ids this process holds (an exclusive ``flock``
        per run, released on exit or when the process dies). Without ``wait``, runs another
        process is training are left out; with it, their claims are waited for."""
        folder = self.directory / "claims"
        folder.mkdir(parents=True, exist_ok=True)
        handles, held = [], []
        try:
            for run_id in sorted(set(run_ids)):  # one global order: two waiters never deadlock
                handle = open(folder / f"{run_id}.lock", "a")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    handle.close()
                    continue
                handles.append(handle)
                held.append(run_id)
            yield held
        finally:
            for handle in handles:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
