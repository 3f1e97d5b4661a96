"""Sweeps as data, and the protocol's selection helpers.

A sweep is a dict (or a YAML file) whose values are lists to cross, or single values::

    dataset: mnist
    batch_norm: [false, true]
    algorithm: [BP, DFA, DRTP]
    weights: [continuous, binary]
    activation: [tanh, sign]
    init: [0.1, 0.001]
    lr: [1.0e-4, 1.0e-5, 1.0e-6]
    seed: 1
    epochs: 100

``grids:`` may hold a list of such dicts (their union; top-level keys are shared defaults).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import pandas as pd
import yaml

from .config import RunConfig

SELECTION_KEYS = ["algorithm", "weights", "activation"]
SETTING_KEYS = ["dataset", "batch_norm"]


def expand_grid(spec: dict) -> List[RunConfig]:
    """Every combination of the listed values, as validated RunConfigs (in a stable order)."""
    if not isinstance(spec, dict):
        raise ValueError(f"a sweep must be a mapping of run fields to values or lists, got {type(spec).__name__}")
    spec = dict(spec)
    grids = spec.pop("grids", None)
    if grids is not None and (not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids)):
        raise ValueError(f"grids={grids!r} is not accepted; accepted: a list of mappings of run fields to values")
    if grids is not None:
        configs = []
        for grid in grids:
            configs.extend(expand_grid({**spec, **grid}))
        return _unique(configs)
    keys = list(spec)
    values = [v if isinstance(v, list) else [v] for v in spec.values()]
    for key, options in zip(keys, values):
        if not options:
            raise ValueError(f"sweep field {key!r} has an empty list")
    return _unique(RunConfig.from_dict(dict(zip(keys, combo))) for combo in itertools.product(*values))


def _unique(configs: Iterable[RunConfig]) -> List[RunConfig]:
    seen, out = set(), []
    for c in configs:
        if c.run_id not in seen:
            seen.add(c.run_id)
            out.append(c)
    return out


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a sweep means the number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def load_sweep(path: Union[str, Path]) -> List[RunConfig]:
    """Every run of a sweep file, validated before anything runs; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"sweep file {path} does not exist")
    try:
        spec = parse_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"sweep file {path} is not valid YAML: {' '.join(str(error).split())}") from error
    try:
        return expand_grid(spec)
    except ValueError as error:
        raise ValueError(f"sweep file {path}: {error}") from error


def restrict(configs: Sequence[RunConfig], filters: Union[Dict[str, object], Sequence[str]]) -> List[RunConfig]:
    """Keep the configs matching every filter: {"dataset": "mnist"} or ["dataset=mnist", "lr=1e-4,1e-5"]."""
    if not isinstance(filters, dict):
        parsed = {}
        for item in filters:
            if "=" not in item:
                raise ValueError(f"restriction {item!r} is not FIELD=VALUE[,VALUE…]")
            key, text = item.split("=", 1)
            parsed[key.strip()] = [parse_yaml(v) for v in text.split(",")]
        filters = parsed
    fields = set(RunConfig.__dataclass_fields__)
    for key in filters:
        if key not in fields:
            raise ValueError(f"cannot restrict on unknown field {key!r}; accepted: {', '.join(sorted(fields))}")
    wanted = {k: (v if isinstance(v, list) else [v]) for k, v in filters.items()}

    def matches(config):
        for key, options in wanted.items():
            value = getattr(config, key)
            if not any(value == o or (isinstance(value, float) and isinstance(o, (int, float)) and float(o) == value)
                       for o in options):
                return False
        return True

    return [c for c in configs if matches(c)]


# ---------------------------------------------------------------------- selection helpers
def count_by_rule(runs: pd.DataFrame) -> str:
    """"BP 6, DFA 4, DRTP 2": how many of ``runs`` each learning rule has, rules in name order
    (the one phrase the status command and the book use to say which rules a set of runs had)."""
    return ", ".join(f"{rule} {n}" for rule, n in runs["algorithm"].value_counts().sort_index().items())


def run_summary(epochs: pd.DataFrame, runs: pd.DataFrame = None) -> pd.DataFrame:
    """One row per run: best (max over epochs) and last-epoch metrics, and whether it diverged.

    Diverged runs keep their row with ``diverged = True``; callers must not average them in.
    """
    config_columns = [c for c in epochs.columns if c in RunConfig.__dataclass_fields__]
    grouped = epochs.sort_values("epoch").groupby("run_id", sort=True)
    summary = grouped[config_columns].first()
    summary["epochs_done"] = grouped["epoch"].max()
    for split in ("train", "test"):
        summary[f"best_{split}_accuracy"] = grouped[f"{split}_accuracy"].max()
        summary[f"last_{split}_accuracy"] = grouped[f"{split}_accuracy"].last()
        best_index = epochs.loc[epochs.groupby("run_id")[f"{split}_accuracy"].idxmax()].set_index("run_id")
        summary[f"best_{split}_epoch"] = best_index["epoch"]
        for metric in ("precision", "f1"):
            # precision and F1 at the epoch of best accuracy on the same split
            summary[f"{split}_{metric}_at_best"] = best_index[f"{split}_{metric}"]
    summary["diverged"] = grouped["loss"].apply(lambda s: not s.map(lambda v: v == v and abs(v) != float("inf")).all())
    # collapsed: its last epoch predicts one class for every test image. Class counts are
    # recorded since a later version: for a run whose last epoch lacks them it is unknown (NA),
    # never "not collapsed" — a count of collapsed runs must not be a silent undercount
    if "test_classes_predicted" in epochs.columns:
        last_rows = epochs.sort_values("epoch", kind="stable").drop_duplicates("run_id", keep="last")
        classes = last_rows.set_index("run_id")["test_classes_predicted"].reindex(summary.index)
    else:
        classes = pd.Series(float("nan"), index=summary.index)
    summary["collapsed"] = pd.array([pd.NA if c != c else c == 1 for c in classes], dtype="boolean")
    if runs is not None and not runs.empty:
        status = runs.set_index("run_id")["status"]
        summary["diverged"] |= summary.index.map(lambda r: status.get(r) == "diverged").astype(bool)
    return summary.reset_index()


def select_hyperparameters(summary: pd.DataFrame) -> pd.DataFrame:
    """The protocol's grid-search choice: per dataset × BN × algorithm × weights × activation,
    the (init, lr) whose run has the best training accuracy (max over epochs).

    Diverged runs are never selected. Ties go to the larger init, then the larger lr (a
    deterministic rule; the paper does not say).
    """
    usable = summary[~summary["diverged"]]
    keys = [k for k in SETTING_KEYS if k in usable.columns] + SELECTION_KEYS
    ordered = usable.sort_values(keys + ["best_train_accuracy", "init", "lr"],
                                 ascending=[True] * len(keys) + [False, False, False], kind="stable")
    return ordered.groupby(keys, sort=True).head(1).reset_index(drop=True)
