"""The protocol's vocabulary stays in one place: the grid search file users sweep is the grid
the protocol runs."""

from pathlib import Path

import pytest

from bnnlib.protocol import BUDGETS, DEFAULT_DATASETS, grid_configs
from bnnlib.sweep import load_sweep, restrict

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("dataset", DEFAULT_DATASETS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_grid_search_file_is_the_protocols_grid(dataset, batch_norm):
    budget = BUDGETS["paper"]  # the file asks for the paper's 100 epochs
    swept = restrict(load_sweep(ROOT / "sweeps" / "grid_search.yaml"),
                     [f"dataset={dataset}", f"batch_norm={str(batch_norm).lower()}"])
    assert sorted(c.run_id for c in swept) == sorted(c.run_id for c in grid_configs(dataset, batch_norm, budget))
    assert {c.epochs for c in swept} == {budget.epochs}
