"""The deployment chapter (``06b_deployment``): the exported fully binary models, their size and
agreement with the float model, and the committed inference benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import torch

from .. import runner
from ..paths import PROJECT_ROOT
from ..protocol import ALGORITHMS, get_budget
from .labels import DATASET_RANK, algorithms_in, bn_with, dataset_name
from .records import epochs_label, open_store
from .render import READABLE_WIDTH, prose, readable

#: the committed inference benchmarks, one per processor kind (``benchmarks/inference_speed.py --save``
#: writes ``inference_speed_<kind>.json``, kind as torch names the CPU's capability: avx512, avx2, …)
BENCHMARKS = PROJECT_ROOT / "benchmarks" / "results"
#: the one the page reads where none was committed for the processor executing it
BENCHMARK_KIND = "avx512"

#: the benchmark's comparisons with other engines (rows where they were installed)
ANCHORS = {"TFLite float32 (XNNPACK)": "TFLite float32 (XNNPACK)",
           "Larq Compute Engine, blocks 2–4 binary": "Larq Compute Engine with blocks 2–4 binary",
           "Larq Compute Engine, all four blocks binary": "with all four blocks binary"}

#: the benchmark's rows the page shows, with their labels: predict's default engine first
SPEED_ROWS = {"bits": "packed engine, bits kernel\n(predict's default)",
              "C engine (cc -O3 -march=native)": "C engine, export-c\n(-O3 native; 1 thread)",
              "packed engine (integer thresholds)": "packed engine,\nint8 GEMMs",
              "Larq Compute Engine, all four blocks binary": "Larq Compute Engine\n(all four blocks binary)",
              "Larq Compute Engine, blocks 2–4 binary": "Larq Compute Engine\n(blocks 2–4 binary)",
              "TFLite float32 (XNNPACK)": "TFLite float32\n(XNNPACK)",
              "float32, every layer": "float32,\nevery layer",
              "float32 model (bnnlib's evaluation)": "float32,\nbnnlib's evaluation"}



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


def header_bytes(path: str, layers: pd.DataFrame) -> int:
    """Bytes of a packed file beyond its weights and thresholds (``deploy.summary``'s total): the
    header with the run's configuration and provenance."""
    return Path(path).stat().st_size - int(layers.iloc[-1]["deployed bytes"])


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
        frame["dataset"] = [f"{dataset_name(d)} ({epochs_label(get_budget(b))})" for d, b in zip(frame["dataset"], frame["budget"])]
    # MNIST, then Fashion-MNIST (then CIFAR-10), as every page orders them
    frame["dataset"] = pd.Categorical(frame["dataset"], list(dict.fromkeys(frame["dataset"])), ordered=True)
    frame["algorithm"] = pd.Categorical(frame["algorithm"], algorithms_in(frame), ordered=True)
    grouped = frame.groupby(["dataset", "batch_norm", "algorithm"], observed=True, sort=True)
    table = pd.DataFrame({
        "models": grouped.size(),
        # bytes, not KB: files differ by a few header bytes (the dataset's name), enough to move a
        # ratio's last digit while sizes rounded to 0.1 KB read equal
        "file (bytes)": grouped["file_bytes"].median(),
        "float32 (bytes)": grouped["float32_bytes"].median(),
        "agreement, lowest (%)": 100 * grouped["agreement"].min(),
    }).reset_index()
    table["smaller"] = (table["float32 (bytes)"] / table["file (bytes)"]).map(lambda v: f"{v:.1f}×")
    table["dataset"] = table["dataset"].astype(str).map(dataset_name)
    table["BN"] = table["batch_norm"].map({True: "with", False: "without"})
    table["file (bytes)"] = table["file (bytes)"].map(lambda v: f"{round(v):,}")
    table["float32 (bytes)"] = table["float32 (bytes)"].map(lambda v: f"{round(v):,}")
    table["agreement, lowest (%)"] = table["agreement, lowest (%)"].map(lambda v: f"{v:.2f}")
    table["algorithm"] = table["algorithm"].astype(str)
    return table[["dataset", "BN", "algorithm", "models", "file (bytes)", "float32 (bytes)", "smaller",
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


def speed_rows(report: dict) -> dict:
    """The benchmark's rows the page shows, by label: the bits kernel of the fastest path this
    processor ran, the C engine (where a compiler was there), the GEMM engine, the two float32 models."""
    rows = {}
    for name, label in SPEED_ROWS.items():
        if name == "bits":
            name = report["engines"].get(f"bits {report['bits_paths'][0]}") if report.get("bits_paths") else None
            label = label.replace("kernel", f"kernel ({report['bits_paths'][0]})") if name else label
        if name in report["rows"]:
            rows[label] = report["rows"][name]
    return rows


def inference_figure(report: dict):
    """Latency at batch 1 and throughput at batch N of each engine (log scales: they span 100×)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    rows = speed_rows(report)
    labels = list(rows)
    colours = sns.color_palette("colorblind", len(labels))
    latency = [1e6 * row["latency_s"] for row in rows.values()]
    throughput = [report["batch"] / row["batch_s"] for row in rows.values()]
    # one panel above the other, each with its labels: the figure keeps a phone's width
    with readable({"ytick.labelsize": 11}):
        fig, axes = plt.subplots(2, 1, figsize=(READABLE_WIDTH, 2 * (0.9 + 0.55 * len(labels))))
        for ax, values, what, fmt in ((axes[0], latency, "µs per image at batch 1 (lower is better)", "{:,.1f}"),
                                      (axes[1], throughput, f"images per second at batch {report['batch']:,} "
                                       "(higher is better)", "{:,.0f}")):
            bars = ax.barh(labels, values, color=colours)
            ax.set_xscale("log")
            ax.set_xlabel(what)
            ax.invert_yaxis()
            ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=11)
            ax.set_xlim(min(values) / 2, max(values) * 8)
        fig.tight_layout()
    return fig


def benchmark_file(kind: Optional[str] = None) -> Path:
    """The committed benchmark of this processor's kind (torch's CPU capability), else of
    :data:`BENCHMARK_KIND`."""
    kind = kind or torch.backends.cpu.get_cpu_capability().lower()
    own = BENCHMARKS / f"inference_speed_{kind}.json"
    return own if own.exists() else BENCHMARKS / f"inference_speed_{BENCHMARK_KIND}.json"


def read_benchmark(path: Optional[str] = None) -> dict:
    """The inference benchmark's results (``path``, or the committed :func:`benchmark_file`), with
    the file it came from."""
    path = Path(path) if path else benchmark_file()
    return {**json.loads(path.read_text()), "file": path.relative_to(PROJECT_ROOT).as_posix()
            if path.is_relative_to(PROJECT_ROOT) else str(path)}


def benchmark_glue(speed: dict) -> dict:
    """The page's sentences about the benchmark, by glue name: predict's default engine (the bits
    kernel) and the C engine against the float32 model that computes every layer, at batch 1
    and at batch N, and where it ran."""
    rows = speed["rows"]
    path = speed["bits_paths"][0]
    bits, plain, gemm = rows[speed["engines"][f"bits {path}"]], rows["float32, every layer"], \
        rows["packed engine (integer thresholds)"]
    glue = {"deploy_bits_path": path,
            "deploy_bits_us": f"{1e6 * bits['latency_s']:.1f}",
            "deploy_bits_rate": f"{speed['batch'] / bits['batch_s']:,.0f}",
            "deploy_speed_1": times_faster(plain["latency_s"] / bits["latency_s"]),
            "deploy_speed_batch": times_faster(plain["batch_s"] / bits["batch_s"]),
            "deploy_gemm_1": times_faster(gemm["latency_s"] / bits["latency_s"]),
            "deploy_batch": f"{speed['batch']:,}",
            "deploy_threads": str(speed["threads"]),
            "deploy_processor": speed["processor"],
            "deploy_kernel": speed["kernel"],
            "deploy_benchmark_file": speed["file"],
            "deploy_where": benchmark_processor_phrase(speed["processor"])}
    c_row = rows.get("C engine (cc -O3 -march=native)")
    glue["deploy_c_sentence"] = (
        f"The standalone C engine (python -m bnnlib export-c: one dependency-free C99 file, compiled with "
        f"cc -O3 -march=native and timed by its own driver) takes {1e6 * c_row['latency_s']:.1f} µs per image."
        if c_row else "The standalone C engine was not timed (no C compiler where the benchmark ran).")
    anchors = [(label, rows[name]) for name, label in ANCHORS.items() if name in rows]
    if anchors:  # the fastest engine of another project at batch 1 (by its row's full name): a reader's baseline
        name = min((name for name in ANCHORS if name in rows), key=lambda name: rows[name]["latency_s"])
        glue["deploy_anchor_1"] = f"{times_faster(rows[name]['latency_s'] / bits['latency_s'])} than {name}"
    glue["deploy_anchor_sentence"] = (
        "In the same run, " + "; ".join(f"{label}: {1e6 * row['latency_s']:.1f} µs per image at batch 1 and "
                                        f"{speed['batch'] / row['batch_s']:,.0f} images per second at batch "
                                        f"{speed['batch']:,}" for label, row in anchors)
        + f": the bits kernel is {times_faster(min(r['latency_s'] for _, r in anchors) / bits['latency_s'])} than "
          f"the fastest of them at batch 1 and {times_faster(min(r['batch_s'] for _, r in anchors) / bits['batch_s'])} "
          f"at batch {speed['batch']:,}."
        if anchors else "TFLite and Larq Compute Engine were not installed where the benchmark ran (an optional "
                        "extra: benchmarks/README.md).")
    return glue


def finding(packed: pd.DataFrame, speed: dict) -> str:
    """The page's opening, from its own table (:func:`deployment_table`) and benchmark
    (:func:`benchmark_glue`): how small the exported models are, whether every one predicts as its
    float model, and how fast the default engine classifies an image."""
    if packed.empty:
        return "No fully binary final model has been exported yet: this page shows their size and speed once one is."
    table = deployment_table(packed)
    glue = benchmark_glue(speed)
    files = sorted(set(table["file (bytes)"]), key=lambda v: int(v.replace(",", "")))
    ratios = sorted(set(table["smaller"]), key=lambda r: float(r.rstrip("×")))
    span = (lambda values, unit="": values[0] + unit if len(values) == 1 else f"{values[0]} to {values[-1]}{unit}")
    lowest = min(table["agreement, lowest (%)"], key=float)
    agreement = ("every one predicts exactly what its float model predicts, on every test image it was checked on"
                 if float(lowest) == 100 else f"each agrees with its float model on at least {lowest} % of the test "
                                              f"images it was checked on")
    return (f"**What we found.** The {len(packed)} fully binary final models pack into files of "
            f"{span(files, ' bytes')} (the median per rule and setting), {span(ratios)} smaller than their float32 "
            f"weights, and {agreement}. "
            f"`predict`'s default engine classifies an image in {glue['deploy_bits_us']} µs at batch 1, "
            f"{glue['deploy_speed_1']} than the same network as a plain float32 PyTorch model"
            + (f" and {glue['deploy_anchor_1']} (the fastest engine of another project we ran at batch 1)"
               if "deploy_anchor_1" in glue else "")
            + f"; at batch {glue['deploy_batch']} with {glue['deploy_threads']} threads it classifies "
            f"{glue['deploy_bits_rate']} images per second ({glue['deploy_processor']}).")
