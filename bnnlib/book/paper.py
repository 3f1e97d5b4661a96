"""The paper's published numbers, as data, read from ``paper_results.md`` beside this file.

That file is a verbatim copy of the project's ``PAPER_RESULTS.md`` (a test keeps them equal):
the final-run medians and quartiles the paper's box plots show (section 1b, measured from their
pixels; section 1's readings by eye are kept for the test that compares the two) and the
grid-search tables its authors logged (exact). The book sets them beside our own
numbers; nothing here is ever used to choose, tune or fill in one of ours.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

SOURCE = Path(__file__).resolve().parent / "paper_results.md"
DATASET_SLUGS = {"MNIST": "mnist", "Fashion-MNIST": "fashion-mnist", "CIFAR-10": "cifar10"}
SETTING_COLUMNS = {"cont. tanh": ("continuous", "tanh"), "cont. sign": ("continuous", "sign"),
                   "bin. tanh": ("binary", "tanh"), "bin. sign": ("binary", "sign")}
#: uncertainty of a median read by eye from the paper's figures, in accuracy (paper_results.md, section 1)
READING_UNCERTAINTY = {"mnist": 0.001, "fashion-mnist": 0.002, "cifar10": 0.002}
#: uncertainty of a median or quartile measured from the figures' pixels (section 1b: "about ±0.01
#: points"), in accuracy: the numbers the book sets ours beside
MEASUREMENT_UNCERTAINTY = {"mnist": 0.0001, "fashion-mnist": 0.0001, "cifar10": 0.0001}


def _tables(text: str):
    """(heading, rows) for every Markdown table, rows as lists of cell strings."""
    heading, rows, out = None, [], []
    for line in text.splitlines() + [""]:
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif rows:
            out.append((heading, rows))
            rows = []
    return out


@lru_cache(maxsize=1)
def _parsed():
    finals, quartiles, grid = [], [], []
    for heading, rows in _tables(SOURCE.read_text()):
        header, body = rows[0], rows[1:]
        if header[:3] == ["dataset", "BN", "algorithm"]:
            for cells in body:
                record = dict(zip(header, cells))
                for column, (weights, activation) in SETTING_COLUMNS.items():
                    row = dict(dataset=DATASET_SLUGS[record["dataset"]], batch_norm=record["BN"] == "yes",
                               algorithm=record["algorithm"], weights=weights, activation=activation)
                    values = record[column].replace("*", "").split("/")
                    if len(values) == 3:  # section 1b: "Q1 / **median** / Q3" measured from the figures' pixels
                        quartiles.append({**row, **dict(zip(("paper_q1", "paper_median", "paper_q3"),
                                                            map(float, values)))})
                    else:
                        finals.append({**row, "paper_median": float(record[column])})
        elif header[:5] == ["algorithm", "weights", "activation", "init", "lr"]:
            match = re.fullmatch(r"(MNIST|Fashion-MNIST|CIFAR-10) (with|without) Batch Normalization", heading)
            if match is None:
                raise ValueError(f"{SOURCE.name}: a grid table under an unexpected heading {heading!r}")
            for cells in body:
                record = dict(zip(header, cells))
                grid.append(dict(dataset=DATASET_SLUGS[match.group(1)], batch_norm=match.group(2) == "with",
                                 algorithm=record["algorithm"], weights=record["weights"],
                                 activation=record["activation"], init=float(record["init"]),
                                 lr=float(record["lr"]), train_accuracy=float(record["train acc"]),
                                 test_accuracy=float(record["test acc"]), test_f1=float(record["test F1"])))
    if not finals or not quartiles or not grid:
        raise ValueError(f"{SOURCE} holds no final-run medians, no final-run quartiles or no grid-search table")
    return pd.DataFrame(finals), pd.DataFrame(grid), pd.DataFrame(quartiles)


def paper_final_medians(dataset: str = None, batch_norm: bool = None) -> pd.DataFrame:
    """Median best test accuracy of the paper's final runs, measured from its box plots' pixels
    (section 1b), per dataset × BN × algorithm × weights × activation, with ``uncertainty`` (the
    measurement's)."""
    table = _parsed()[2].drop(columns=["paper_q1", "paper_q3"])
    table["uncertainty"] = table["dataset"].map(MEASUREMENT_UNCERTAINTY)
    return _filter(table, dataset, batch_norm)


def paper_final_medians_by_eye(dataset: str = None, batch_norm: bool = None) -> pd.DataFrame:
    """The same medians as section 1 reads them by eye, with its stated ``uncertainty``: kept to
    check the measured ones against (tests/test_paper.py), not shown beside ours."""
    table = _parsed()[0].copy()
    table["uncertainty"] = table["dataset"].map(READING_UNCERTAINTY)
    return _filter(table, dataset, batch_norm)


def paper_final_quartiles(dataset: str = None, batch_norm: bool = None) -> pd.DataFrame:
    """The same box plots measured from their pixels (paper_results.md, section 1b): the paper's
    ``paper_q1``, ``paper_median`` and ``paper_q3`` per dataset × BN × algorithm × weights ×
    activation, to about ±0.0001 in accuracy."""
    return _filter(_parsed()[2].copy(), dataset, batch_norm)


def paper_grid(dataset: str = None, batch_norm: bool = None) -> pd.DataFrame:
    """The paper's grid-search selections with the accuracies its authors logged (exact)."""
    return _filter(_parsed()[1].copy(), dataset, batch_norm)


def paper_selection(batch_norm: bool) -> pd.DataFrame:
    """The paper's selected (init, lr) per algorithm × weights × activation (MNIST grid search)."""
    grid = paper_grid("mnist", batch_norm)
    return grid[["algorithm", "weights", "activation", "init", "lr"]].reset_index(drop=True)


#: the sentence of paper_results.md describing the paper's published learning curve
CURVE_SENTENCE = re.compile(
    r"plateaus by about epoch (\d+) \(([\d.]+)–([\d.]+)\);.*?BP with binary weights \+ sign climbs slowly, from "
    r"about ([\d.]+) after the first epoch to about ([\d.]+) at epoch (\d+) and ([\d.]+) at epoch (\d+)")


@lru_cache(maxsize=1)
def paper_learning_curve() -> dict:
    """The paper's published learning curve (Fashion-MNIST, sign activations, no BN), as read
    from its figure: BP with binary weights + sign at a few epochs, and the plateau every other
    configuration reaches — ``{"setting": …, "bp_binary_sign": [(epoch, accuracy), …],
    "plateau_from": epoch, "plateau": (low, high)}``."""
    match = CURVE_SENTENCE.search(" ".join(SOURCE.read_text().split()))
    if match is None:
        raise ValueError(f"{SOURCE}: the sentence describing the published learning curve was not found")
    g = match.groups()
    return {"setting": ("fashion-mnist", False), "plateau_from": int(g[0]), "plateau": (float(g[1]), float(g[2])),
            "bp_binary_sign": [(1, float(g[3])), (int(g[5]), float(g[4])), (int(g[7]), float(g[6]))]}


def _filter(table: pd.DataFrame, dataset, batch_norm) -> pd.DataFrame:
    if dataset is not None:
        table = table[table["dataset"] == dataset]
    if batch_norm is not None:
        table = table[table["batch_norm"] == batch_norm]
    return table.reset_index(drop=True)
