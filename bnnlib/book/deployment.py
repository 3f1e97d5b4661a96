"""The deployment chapter (``06b_deployment``): the exported fully binary models, their size and
agreement with the float model, and the committed inference benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from .. import runner
from ..paths import PROJECT_ROOT
from ..protocol import ALGORITHMS
from .labels import DATASET_RANK, algorithms_in, bn_with, dataset_name
from .records import open_store
from .render import prose

#: the committed inference benchmark the page reads (``benchmarks/inference_speed.py`` writes it)
BENCHMARK = PROJECT_ROOT / "benchmarks" / "results" / "inference_speed.json"



def model_summary_table(layers: pd.DataFrame) -> pd.DataFrame:
    """deploy.summary for a page: short headers, thousands separated, the thresholds column left
    to the text (one per hidden unit)."""
    columns = {"layer": "layer", "shape": "shape", "1-bit parameters": "1-bit params",
               "32-bit parameters": "32-bit params", "deployed bytes": "bytes", "float32 bytes": "float32 bytes",
               "binary MACs": "±1 MACs", "float MACs": "float MACs", "compression": "smaller"}
    table = layers[list(columns)].rename(columns=columns).copy()
    for column in ("1-bit params", "32-bit params", "bytes", "float32 bytes", "±1 MACs", "float MACs"):
        table[column] = table[column].map(lambda v: f"{int(v):,}")
    table["smaller"] = table["smaller"].map(lambda v: f"{v:.1f}×")
    return table


def packed_by_setting(requested: str, results_base: Optional[str], settings: Sequence[tuple]) -> pd.DataFrame:
    """The exported fully binary final models (``packed.csv``) of each (dataset, BN) setting at its
    own budget — with ``best``, paper once all of that setting's runs are recorded at it, else
    cpu — with the budget's name and the packed file's path in two more columns."""
    parts = []
    for dataset, batch_norm in settings:
        budget, store = open_store(requested, results_base, needs=[(dataset, batch_norm)])
        packed = store.table("packed.csv")
        if packed.empty:
            continue
        mine = packed[(packed["dataset"] == dataset) & (packed["batch_norm"].astype(bool) == batch_norm)]
        parts.append(mine.assign(budget=budget.name,
                                 path=[str(store.directory / "packed" / f"{run_id}.bnn") for run_id in mine["run_id"]]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def deployment_example(packed: pd.DataFrame) -> str:
    """The packed file a page describes layer by layer: a model of the paper's rules with BN (its
    thresholds fold BN: the fullest case) where there is one, else the first exported."""
    rules = packed["algorithm"].isin(ALGORITHMS)
    preferred = packed[rules & packed["batch_norm"].astype(bool)]
    for candidates in (preferred, packed[rules], packed):
        if len(candidates):
            return str(candidates.sort_values("run_id")["path"].iloc[0])
    raise LookupError("no exported model")


def deployment_gaps(packed: pd.DataFrame, settings: Sequence[tuple], algorithms=ALGORITHMS) -> str:
    """A sentence naming the settings × rules (the paper's, by default) with no exported model
    ("" when none is missing)."""
    exported = set() if packed.empty else set(zip(packed["dataset"], packed["batch_norm"].astype(bool),
                                                  packed["algorithm"]))
    gaps = []
    for dataset, batch_norm in settings:
        missing = [a for a in algorithms if (dataset, batch_norm, a) not in exported]
        if missing:
            rules = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
            gaps.append(f"{rules} on {dataset_name(dataset)} {bn_with(batch_norm)} BN")
    if not gaps:
        return ""
    return prose("Not exported: " + "; ".join(gaps) + " (their final runs are not all complete yet, or were "
                  "trained before final runs kept their trained state).")


def deployment_table(packed: pd.DataFrame) -> pd.DataFrame:
    """Per dataset × BN × algorithm: how many fully binary final models were exported, their file
    size, how much smaller than their float32 weights, and their lowest agreement with the float
    model (how many test images it was measured on goes in the text: one number for the table).
    With a ``budget`` column (:func:`packed_by_setting`) the dataset names it: "MNIST (cpu)"."""
    if packed.empty:
        return pd.DataFrame()
    frame = packed.sort_values("dataset", key=lambda c: c.map(lambda d: DATASET_RANK.get(d, len(DATASET_RANK))),
                               kind="stable")
    if "budget" in frame:
        frame["dataset"] = [f"{dataset_name(d)} ({b})" for d, b in zip(frame["dataset"], frame["budget"])]
    # MNIST, then Fashion-MNIST (then CIFAR-10), as every page orders them
    frame["dataset"] = pd.Categorical(frame["dataset"], list(dict.fromkeys(frame["dataset"])), ordered=True)
    frame["algorithm"] = pd.Categorical(frame["algorithm"], algorithms_in(frame), ordered=True)
    grouped = frame.groupby(["dataset", "batch_norm", "algorithm"], observed=True, sort=True)
    table = pd.DataFrame({
        "models": grouped.size(),
        "file (KB)": grouped["file_bytes"].median() / 1000,
        "float32 (KB)": grouped["float32_bytes"].median() / 1000,
        "agreement, lowest (%)": 100 * grouped["agreement"].min(),
    }).reset_index()
    table["smaller"] = (table["float32 (KB)"] / table["file (KB)"]).map(lambda v: f"{v:.1f}×")
    table["dataset"] = table["dataset"].astype(str).map(dataset_name)
    table["BN"] = table["batch_norm"].map({True: "with", False: "without"})
    table["file (KB)"] = table["file (KB)"].map(lambda v: f"{v:.1f}")
    table["float32 (KB)"] = table["float32 (KB)"].map(lambda v: f"{v:.1f}")
    table["agreement, lowest (%)"] = table["agreement, lowest (%)"].map(lambda v: f"{v:.2f}")
    table["algorithm"] = table["algorithm"].astype(str)
    return table[["dataset", "BN", "algorithm", "models", "file (KB)", "float32 (KB)", "smaller",
                  "agreement, lowest (%)"]]


def times_faster(ratio: float) -> str:
    """A speed ratio (baseline time / new time) in words: "3.9× faster", "1.3× slower"."""
    return f"{ratio:.1f}× faster" if ratio >= 1 else f"{1 / ratio:.1f}× slower"


def benchmark_processor_phrase(benchmark_processor: str) -> str:
    """Where a committed benchmark ran, set against the processor executing the page: a result
    file travels with the repository, so the page may be built on another kind of machine."""
    here = runner.processor("cpu")
    if here == benchmark_processor:
        return "the kind of processor that executed this page"
    return f"not the {here} that executed this page, where the timings and the kernel chosen may differ"


def inference_figure(report: dict):
    """Latency at batch 1 and throughput at batch N of the float32 model and the packed engine."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    rows = report["rows"]
    names = list(rows)
    labels = ["float32,\nbnnlib's evaluation", "float32,\nevery layer",
              f"packed engine,\n{report['kernel']} GEMMs\n+ thresholds"]
    colours = sns.color_palette("colorblind", 3)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].bar(labels, [1e6 * rows[n]["latency_s"] for n in names], color=colours)
    axes[0].set_ylabel("µs per image at batch 1\n(lower is better)")
    axes[1].bar(labels, [report["batch"] / rows[n]["batch_s"] for n in names], color=colours)
    axes[1].set_ylabel(f"images per second at batch {report['batch']}\n(higher is better)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=9)
    fig.tight_layout()
    return fig


def read_benchmark(path: Optional[str] = None) -> dict:
    """The inference benchmark's results (``path``, or the committed :data:`BENCHMARK`)."""
    return json.loads((Path(path) if path else BENCHMARK).read_text())


def benchmark_glue(speed: dict) -> dict:
    """The page's sentences about the benchmark, by glue name: how much faster the packed engine is
    than float32 at batch 1 and at batch N, with what, and where it ran."""
    rows = speed["rows"]
    plain, packed_row = rows["float32, every layer"], rows["packed engine (integer thresholds)"]
    return {"deploy_speed_1": times_faster(plain["latency_s"] / packed_row["latency_s"]),
            "deploy_speed_batch": times_faster(plain["batch_s"] / packed_row["batch_s"]),
            "deploy_batch": f"{speed['batch']:,}",
            "deploy_threads": str(speed["threads"]),
            "deploy_processor": speed["processor"],
            "deploy_kernel": speed["kernel"],
            "deploy_where": benchmark_processor_phrase(speed["processor"])}
