"""The results store: tidy CSV tables under one folder, safe for concurrent writers.

    <dir>/epochs.csv       one row per run per epoch (config columns + metrics + timing)
    <dir>/runs.csv         one row per run: config, status, epochs done, device, versions, time
    <dir>/checkpoints/     per-run resume state (git-ignored; deleted once a run completes)

Both tables load with one pandas call (``pd.read_csv(dir / "epochs.csv")``) or with
:meth:`ResultsStore.epochs` / :meth:`ResultsStore.runs`. Every write takes an exclusive
``flock`` on ``<dir>/.lock``, rewrites the table into a temporary file and renames it over
the old one, so readers never see half a file and two processes never lose each other's rows.
"""

from __future__ import annotations

import fcntl
import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, List, Optional, Union

import pandas as pd
import torch

EPOCH_KEY = ["run_id", "epoch"]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultsStore:
    def __init__(self, directory: Union[str, Path]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.epochs_path = self.directory / "epochs.csv"
        self.runs_path = self.directory / "runs.csv"
        self.checkpoints = self.directory / "checkpoints"

    @contextmanager
    def _locked(self):
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ tables
    @staticmethod
    def _read(path: Path) -> pd.DataFrame:
        if not path.exists() or path.stat().st_size == 0:
            return pd.DataFrame()
        return pd.read_csv(path)

    def epochs(self) -> pd.DataFrame:
        """All epoch records, sorted by run and epoch."""
        return self._read(self.epochs_path)

    def runs(self) -> pd.DataFrame:
        """One row per run (its latest metadata)."""
        return self._read(self.runs_path)

    def _merge(self, path: Path, rows: Iterable[dict], key: List[str]) -> None:
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        with self._locked():
            old = self._read(path)
            table = pd.concat([old, new], ignore_index=True) if not old.empty else new
            # a resumed epoch recomputes the same row: keep the newest copy of each key
            table = table.drop_duplicates(subset=key, keep="last").sort_values(key, kind="stable")
            buffer = io.StringIO()
            table.to_csv(buffer, index=False)  # floats as shortest round-trip repr
            _atomic_write_bytes(path, buffer.getvalue().encode())

    def add_epochs(self, rows: Iterable[dict]) -> None:
        self._merge(self.epochs_path, rows, EPOCH_KEY)

    def update_runs(self, rows: Iterable[dict]) -> None:
        self._merge(self.runs_path, rows, ["run_id"])

    def run_record(self, run_id: str) -> Optional[dict]:
        runs = self.runs()
        if runs.empty or run_id not in set(runs["run_id"]):
            return None
        return runs[runs["run_id"] == run_id].iloc[-1].to_dict()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self, run_id: str) -> Path:
        return self.checkpoints / f"{run_id}.pt"

    def save_checkpoint(self, run_id: str, state: dict) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        _atomic_write_bytes(self.checkpoint_path(run_id), buffer.getvalue())

    def load_checkpoint(self, run_id: str) -> Optional[dict]:
        path = self.checkpoint_path(run_id)
        if not path.exists():
            return None
        return torch.load(path, weights_only=True)

    def delete_checkpoint(self, run_id: str) -> None:
        self.checkpoint_path(run_id).unlink(missing_ok=True)
