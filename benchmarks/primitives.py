"""Why some of bnnlib's primitives are written the way they are: each against its obvious form.

    python benchmarks/primitives.py           # the report (about 20 s)
    python benchmarks/primitives.py --save    # also results/primitives_KIND.{json,txt}
    python benchmarks/primitives.py --quick   # a few repeats: checks that it runs (not a measurement)

Each row times bnnlib's form of a primitive and the obvious one in the same run, on the shapes
training uses, one thread (a training worker's), and reports both medians and their ratio; both
forms are first checked to give the same values (the ones a test pins). The docstrings that
give the reason for a form cite this benchmark instead of numbers measured once:

* ``binarize.sign``: sign(sign(x) − ½) against ``torch.where(x > 0, 1, −1)``, on a 784 × 700
  weight matrix (binary layers binarise their weights at every step);
* ``binarize.tanh``: 2σ(2x) − 1 against ``torch.tanh``, on a 128 × 700 batch (five per step);
* BN's batch statistics by two passes (``model.BinaryMLP._batch_norm_train``, arithmetic version
  2) against ``torch.var_mean``, on a 128 × 700 batch;
* ``binary.environment`` against ``os.environ.get`` for an unset name (read twice per ``predict``).

Run it on a quiet machine (pause a training run with ``kill -STOP`` and resume it after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import bnnlib  # noqa: F401  (first, as the CLI does: it sets libgomp's spin count before torch loads)
import torch

from bnnlib.binarize import sign, tanh
from bnnlib.binary import environment
from bnnlib.runner import processor

RESULTS = Path(__file__).resolve().parent / "results"


def median_seconds(function, repeats: int, number: int) -> float:
    """Median over ``repeats`` of the mean time of ``number`` consecutive calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def two_pass_statistics(z: torch.Tensor):
    mean = z.mean(dim=1, keepdim=True)  # (members, batch, features), as the model holds a batch
    return mean, (z - mean).square().mean(dim=1, keepdim=True)


def cases():
    """(what, bnnlib's form, the obvious form, how to check they agree)."""
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(784, 700, generator=g)
    weights[0, :10] = 0.0  # sign(0) = −1 in both forms
    batch = torch.randn(1, 128, 700, generator=g)
    unset = "BNNLIB_BENCHMARK_UNSET_NAME"
    os.environ.pop(unset, None)
    return [
        ("sign of a 784×700 weight matrix", lambda: sign(weights),
         lambda: torch.where(weights > 0, 1.0, -1.0), lambda a, b: torch.equal(a, b)),
        ("tanh of a 128×700 batch", lambda: tanh(batch), lambda: torch.tanh(batch),
         lambda a, b: (a - b).abs().max().item() <= 2.5e-7),
        ("BN statistics of a 128×700 batch", lambda: two_pass_statistics(batch),
         lambda: tuple(reversed(torch.var_mean(batch, dim=1, keepdim=True, unbiased=False))),
         lambda a, b: all(torch.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a, b))),
        ("an unset environment variable", lambda: environment(unset), lambda: os.environ.get(unset),
         lambda a, b: a is None and b is None),
    ]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few repeats: checks that it runs")
    parser.add_argument("--save", action="store_true", help="write results/primitives_KIND.{json,txt}")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a training worker's; given back at the end (a test calls main in-process)
    try:
        return _measure(args, 3 if args.quick else 41)
    finally:
        torch.set_num_threads(threads)


def _measure(args, repeats: int) -> dict:
    report = {"processor": processor("cpu"), "torch": torch.__version__, "threads": 1, "rows": []}
    lines = [f"{report['processor']}, torch {torch.__version__}, 1 thread; medians of {repeats} repeats"]
    for what, ours, obvious, agree in cases():
        if not agree(ours(), obvious()):
            raise AssertionError(f"{what}: bnnlib's form and the obvious one disagree")
        # enough calls per repeat for ~10 ms, so the timer's resolution does not matter
        single = median_seconds(obvious, 3, 1)
        number = max(1, min(100_000, int(0.01 / max(single, 1e-8))))
        ours_s, obvious_s = (median_seconds(f, repeats, number) for f in (ours, obvious))
        report["rows"].append({"what": what, "bnnlib_seconds": ours_s, "obvious_seconds": obvious_s,
                               "ratio": obvious_s / ours_s})
        lines.append(f"{what:<36} bnnlib {1e6 * ours_s:9.2f} µs   obvious {1e6 * obvious_s:9.2f} µs   "
                     f"obvious / bnnlib {obvious_s / ours_s:5.1f}×")
    print("\n".join(lines))
    if args.save and not args.quick:
        kind = torch.backends.cpu.get_cpu_capability().lower()
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"primitives_{kind}.json").write_text(json.dumps(report, indent=1) + "\n")
        (RESULTS / f"primitives_{kind}.txt").write_text("\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
