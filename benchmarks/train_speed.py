"""Training and evaluation speed of bnnlib on MNIST-shaped data, against the matmul peak.

    python benchmarks/train_speed.py            # the full report (about 2-3 minutes on 2 cores)
    python benchmarks/train_speed.py --quick    # a few batches, to check that it runs

All numbers are measured in one run on this machine: the float32 matmul throughput (a
2048³ GEMM, median of repetitions), then for the protocol's MLP (784-700-500-300-200-10,
batch 128, 60 000 training and 10 000 test samples):

The machine's speed drifts (a shared VM: the same GEMM has measured 100 to 195 GFLOP/s here
within an hour), so the peak is measured again right before every timing and each fraction
uses its own neighbouring peak; the spread of those peaks is printed.

* seconds per epoch per member for BP, DFA and DRTP with S = 1 and S = 10 members —
  training loop (shuffled batch gathering included) and full-set evaluation apart — and the
  fraction of the peak each reaches, counting each algorithm's own FLOPs (BP computes no
  input gradient for the first layer; DFA and DRTP compute no backward chain at all);
* every (activation, weights, BN) setting against a float64 NumPy implementation of the
  protocol (benchmarks/numpy_reference.py), and against the per-epoch times of the paper's
  original NumPy code quoted in issue #2 (measured by the issue's author on this machine
  kind; that code is not in this repository).

Training times are extrapolated from a run of ``--batches`` consecutive batches to the
468 batches of an epoch (median of ``--repeats`` runs); evaluation runs the full sets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


import bnnlib  # noqa: E402,F401  (first, as the CLI does: it sets libgomp's spin count before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bnnlib import BinaryMLP, kernels, make_trainer  # noqa: E402
from bnnlib.data import Dataset  # noqa: E402
from bnnlib.runner import processor  # noqa: E402
from bnnlib.training import PAPER_BATCH_SIZE  # noqa: E402
from numpy_reference import NumpyMLP  # noqa: E402

SIZES = (784, 700, 500, 300, 200, 10)
N_TRAIN, N_TEST = 60_000, 10_000
BATCHES_PER_EPOCH = N_TRAIN // PAPER_BATCH_SIZE
ALGORITHMS = ("BP", "DFA", "DRTP")
# Seconds per Fashion-MNIST epoch of the paper's original NumPy code, quoted from issue #2.
PAPER_CODE_SECONDS = {"tanh/continuous/no BN": {"BP": 12.0, "DFA": 12.5, "DRTP": 12.5},
                      "sign/binary/no BN": {a: 13.5 for a in ALGORITHMS},
                      "BN": {a: 17.0 for a in ALGORITHMS}}


def paper_code_seconds(activation, binary, bn, algorithm):
    if bn:
        return PAPER_CODE_SECONDS["BN"][algorithm]
    if activation == "sign" and binary:
        return PAPER_CODE_SECONDS["sign/binary/no BN"][algorithm]
    # continuous tanh was quoted; other no-BN settings take the cheapest quoted time
    return PAPER_CODE_SECONDS["tanh/continuous/no BN"][algorithm]


def matmul_peak(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def flops_per_sample(algorithm, phase):
    """Multiply-adds × 2 of one sample; elementwise work is not counted."""
    layers = list(zip(SIZES[:-1], SIZES[1:]))
    forward = sum(i * o for i, o in layers)
    if phase == "eval":
        return 2 * forward
    weight_gradients = forward
    if algorithm == "BP":
        signals = sum(i * o for i, o in layers[1:])  # input gradients of every layer but the first
    else:
        signals = SIZES[-1] * sum(SIZES[1:-1])  # e B_k (or t B_k) for each hidden block
    return 2 * (forward + weight_gradients + signals)


def synthetic_mnist(seed=0):
    g = torch.Generator().manual_seed(seed)
    # pixels on the datasets' grid (x = p/127.5 − 1), so the exact first layer applies as in a run
    pixels = lambda n: torch.randint(0, 256, (n, 784), generator=g).to(torch.float32).div_(127.5).sub_(1.0)  # noqa: E731
    return Dataset("synthetic", pixels(N_TRAIN), torch.randint(0, 10, (N_TRAIN,), generator=g),
                   pixels(N_TEST), torch.randint(0, 10, (N_TEST,), generator=g), pixel_inputs=True)


def time_training(algorithm, data, members, batches, repeats, activation="tanh", binary=False, bn=False):
    model = BinaryMLP(list(range(members)), activation=activation, binary_weights=binary, batch_norm=bn,
                      pixel_inputs=True)
    trainer = make_trainer(algorithm, model, lr=1e-4)
    targets = data.targets(data.labels_train)
    g = torch.Generator().manual_seed(1)
    order = torch.stack([torch.randperm(N_TRAIN, generator=g) for _ in range(members)])
    runs = []
    for repeat in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        for b in range(batches):
            index = order[:, b * PAPER_BATCH_SIZE:(b + 1) * PAPER_BATCH_SIZE]
            trainer.step(data.x_train[index], targets[index])
        runs.append(time.perf_counter() - start)
    return statistics.median(runs[1:]) / batches * BATCHES_PER_EPOCH / members, model


def time_evaluation(model, data, repeats):
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(data.x_train)
        model.predict(data.x_test)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) / model.n_members


def time_numpy(algorithm, data, batches, activation, binary, bn, eval_samples):
    model = BinaryMLP([0], activation=activation, binary_weights=binary, batch_norm=bn)
    trainer = make_trainer(algorithm, model, lr=1e-4)
    feedback = [b[0].double().numpy() for b in getattr(trainer, "feedback", [])] or None
    reference = NumpyMLP([w[0].double().numpy() for w in model.weights], activation, binary, bn, feedback)
    x = data.x_train.double().numpy()
    t = data.targets(data.labels_train).double().numpy()
    order = np.random.default_rng(1).permutation(N_TRAIN)
    start = time.perf_counter()
    for b in range(batches):
        index = order[b * PAPER_BATCH_SIZE:(b + 1) * PAPER_BATCH_SIZE]
        reference.step(x[index], t[index], algorithm, 1e-4)
    train = (time.perf_counter() - start) / batches * BATCHES_PER_EPOCH
    start = time.perf_counter()
    reference.predict(x[:eval_samples])
    evaluation = (time.perf_counter() - start) / eval_samples * (N_TRAIN + N_TEST)
    return train, evaluation


FLOOR_TARGET = 1.2


class FloatOnlyMLP(BinaryMLP):
    """bnnlib's model with its exact int8 paths switched off (every layer in float32)."""

    @property
    def integer_layers(self):
        return range(0)

    @property
    def exact_first_layer(self):
        return False


def epoch_seconds(algorithm, data, batches, repeats, activation, binary, bn, model_class=BinaryMLP,
                  evaluation=True):
    """Seconds of one epoch of one member: training (extrapolated from ``batches``) + evaluation
    of the full training and test sets (NaN with ``evaluation=False``)."""
    model = model_class([0], activation=activation, binary_weights=binary, batch_norm=bn, pixel_inputs=True)
    trainer = make_trainer(algorithm, model, lr=1e-4)
    targets = data.targets(data.labels_train)
    order = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(1))
    runs = []
    for repeat in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        for b in range(batches):
            index = order[b * PAPER_BATCH_SIZE:(b + 1) * PAPER_BATCH_SIZE]
            trainer.step(data.x_train[index], targets[index])
        runs.append(time.perf_counter() - start)
    train = statistics.median(runs[1:]) / batches * BATCHES_PER_EPOCH
    if not evaluation:
        return train, float("nan")
    model.predict(data.x_test[:2048])  # warm-up: the first call of a shape prepares its kernels
    return train, time_evaluation(model, data, max(repeats // 2, 1))


def floors(data, args, local_peak, report):
    """Every setting of issue #8 against the float32 FLOP floor of its epoch, and the exact
    integer path of the ±1 × ±1 layers, by either kernel, against the same model in float32 alone."""
    n_eval = data.x_train.shape[0] + data.x_test.shape[0]
    settings = [(a, "tanh", False, False) for a in ALGORITHMS] + [(a, "sign", True, False) for a in ALGORITHMS] \
        + [(a, "sign", True, True) for a in ALGORITHMS] + [(a, "tanh", False, True) for a in ALGORITHMS]
    print(f"\nEvery setting, one member, default threads ({torch.get_num_threads()}): seconds per epoch "
          f"(training + evaluation of 70 000 samples) against the float32 FLOP floor at the peak measured "
          f"just before; target ≤ {FLOOR_TARGET}× the floor")
    print(f"{'algorithm':<6} {'activation':<6} {'weights':<10} {'BN':<3} {'train s':>8} {'eval s':>7} "
          f"{'s/epoch':>8} {'floor s':>8} {'× floor':>8}")
    rows = []
    for algorithm, activation, binary, bn in settings:
        peak = local_peak()
        train, evaluation = epoch_seconds(algorithm, data, args.batches, args.repeats, activation, binary, bn)
        seconds = train + evaluation
        flops = flops_per_sample(algorithm, "train") * BATCHES_PER_EPOCH * PAPER_BATCH_SIZE \
            + flops_per_sample(algorithm, "eval") * n_eval
        floor = flops / peak / 1e9
        rows.append(dict(algorithm=algorithm, activation=activation, binary=binary, batch_norm=bn, train_s=train,
                         eval_s=evaluation, seconds=seconds, floor_s=floor, ratio=seconds / floor))
        print(f"{algorithm:<6} {activation:<6} {'binary' if binary else 'continuous':<10} {'BN' if bn else '-':<3} "
              f"{train:8.3f} {evaluation:7.3f} {seconds:8.3f} {floor:8.3f} {seconds / floor:7.2f}×")
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"    worst: {worst['ratio']:.2f}× the floor ({worst['algorithm']} {worst['activation']} "
          f"{'binary' if worst['binary'] else 'continuous'}{' BN' if worst['batch_norm'] else ''}); "
          f"{sum(r['ratio'] <= FLOOR_TARGET for r in rows)}/{len(rows)} settings within {FLOOR_TARGET}×")
    report["floors"] = rows

    chosen = kernels.chosen(torch.device("cpu"))
    print(f"\nExact integer paths (binary weights: block 1 on pixel integers; with sign activations blocks 2–4 "
          f"±1 × ±1), seconds per epoch of training: every layer in float32 (no exact path) against the exact "
          f"path's two kernels, which give the same bits — int8 GEMMs with int32 sums, or float32 GEMMs of the "
          f"same integers. Kernel chosen on this processor ({processor('cpu')}, measured by bnnlib.kernels): "
          f"{chosen}")
    # where int8 is the slow kernel (~30× float32 on AVX2), a few batches measure it well enough
    int8_batches = args.batches if chosen == "int8" else max(2, args.batches // 10)
    print(f"{'algorithm':<6} {'activation':<10} {'BN':<3} {'float32 s':>9} {'exact/f32 s':>11} "
          f"{'exact/int8 s':>12} {'chosen × float32':>16}")
    integer = []
    for algorithm, activation, bn in [(a, act, bn) for act in ("sign", "tanh") for bn in (False, True)
                                      for a in ALGORITHMS]:
        local_peak()
        plain = epoch_seconds(algorithm, data, args.batches, args.repeats, activation, True, bn, FloatOnlyMLP,
                              evaluation=False)[0]
        by_kernel, asked = {}, os.environ.get(kernels.ENV)
        for kernel, batches in (("float32", args.batches), ("int8", int8_batches)):
            os.environ[kernels.ENV] = kernel
            try:
                by_kernel[kernel] = epoch_seconds(algorithm, data, batches, args.repeats, activation, True, bn,
                                                  evaluation=False)[0]
            finally:  # the caller's own choice, if any, again
                if asked is None:
                    del os.environ[kernels.ENV]
                else:
                    os.environ[kernels.ENV] = asked
        integer.append(dict(algorithm=algorithm, activation=activation, batch_norm=bn, float32_s=plain,
                            exact_float32_kernel_s=by_kernel["float32"], exact_int8_kernel_s=by_kernel["int8"],
                            chosen=chosen))
        print(f"{algorithm:<6} {activation:<10} {'BN' if bn else '-':<3} {plain:9.3f} {by_kernel['float32']:11.3f} "
              f"{by_kernel['int8']:12.3f} {plain / by_kernel[chosen]:15.2f}×")
    report["integer_path"] = integer


CONTENTION_CHILD = """
import os, sys, time
import bnnlib  # first, as the CLI and the book do: it sets libgomp's spin count before torch loads
import torch
from bnnlib import BinaryMLP, make_trainer
from bnnlib.cores import CoreShare
threads = {threads!r}
model = BinaryMLP([0])
if threads == "adaptive":  # what a run does by default: threads follow the free cores
    share = CoreShare.for_run("cpu", *model.gemm_shapes(128))
else:
    torch.set_num_threads(threads)
    share = None
g = torch.Generator().manual_seed(0)
x = torch.rand(1, 128, 784, generator=g) * 2 - 1
t = torch.nn.functional.one_hot(torch.randint(0, 10, (1, 128), generator=g), 10).float() * 2 - 1
trainer = make_trainer("BP", model, lr=1e-4)
for _ in range(5):
    trainer.step(x, t)
start = time.perf_counter()
for _ in range({batches}):
    if share is not None:
        share.tick()
    trainer.step(x, t)
print((time.perf_counter() - start) / {batches} * {per_epoch})
"""


def _children(n, threads, batches):
    """Start n timing processes at once ("adaptive": bnnlib's default, or a fixed thread count);
    returns each one's training seconds per epoch."""
    import subprocess
    code = CONTENTION_CHILD.format(threads=threads, batches=batches, per_epoch=BATCHES_PER_EPOCH)
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    processes = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(n)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in processes]


def contention(args, report):
    """A run beside a busy core, and two runs at once, against a run alone (BP, tanh, MNIST
    shapes, training only, about one epoch of batches: the threads have time to follow the free
    cores, as in a real run). Children import bnnlib first, as the CLI and the book do. Each
    case with bnnlib's default (threads follow the free cores, bnnlib/cores.py), with torch's
    own fixed thread count, and with one thread (the --workers processes)."""
    import subprocess
    batches = args.contention_batches
    cores = torch.get_num_threads()
    modes = {"adaptive": "adaptive", "fixed": cores, "one thread": 1}
    alone = statistics.median([_children(1, "adaptive", batches)[0] for _ in range(3)])
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        beside_busy = {mode: statistics.median([_children(1, threads, batches)[0] for _ in range(3)])
                       for mode, threads in modes.items()}
    finally:
        busy.kill()
        busy.wait()
    pair = {mode: _children(2, threads, batches) for mode, threads in modes.items()}
    sequential = 2 * alone
    from bnnlib import BinaryMLP
    from bnnlib.cores import thread_count_changes_sums
    model = BinaryMLP([0])
    kept = thread_count_changes_sums(*model.gemm_shapes(128), cores)
    labels = {"adaptive": "threads follow the free cores (default)" if not kept else
              "default: threads kept, the sums here depend on them", "fixed": f"{cores} threads, fixed",
              "one thread": "one thread (--workers)"}
    print("\nContention (BP tanh, one member, training only, s/epoch; targets: ≤ 2.5× alone with one core "
          "taken, two runs at once no slower together than one after the other)")
    print(f"    alone, {labels['adaptive'] + ':':<65} {alone:7.2f}")
    for mode in modes:
        print(f"    one core taken by a busy loop, {labels[mode] + ':':<41} {beside_busy[mode]:7.2f}  "
              f"{beside_busy[mode] / alone:5.2f}× alone")
    for mode in modes:
        print(f"    two runs at once, {labels[mode] + ':':<41} {pair[mode][0]:.2f} and {pair[mode][1]:.2f}; together "
              f"{max(pair[mode]):.2f} s for 2 epochs ({max(pair[mode]) / sequential:.2f}× one after the other)")
    report["contention"] = dict(alone_s=alone, sequential_s=sequential, threads=cores, batches=batches,
                                threads_adapted=not kept,
                                busy_core_s=beside_busy, pair_s=pair)


def diagnostics_cost(data, args, report):
    """What per-layer diagnostics cost: an epoch off, probing every 10th batch, every batch; and
    the hook an unprobed step pays (one ``is None`` check per layer and one per step)."""
    from bnnlib.training import MemberTraining

    print("\nPer-layer diagnostics, binary weights + sign, no BN, S = 1, seconds per epoch of training "
          f"({BATCHES_PER_EPOCH} batches, extrapolated from {args.batches}; median of {args.repeats})")
    rows = {}
    for algorithm in ("BP", "DFA"):
        times = {}
        for every in (0, 10, 1):
            model = BinaryMLP([0], activation="sign", binary_weights=True, pixel_inputs=True)
            training = MemberTraining(model, make_trainer(algorithm, model, lr=1e-4))
            training.enable_diagnostics(every)
            targets = data.targets(data.labels_train)
            order = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(1)).unsqueeze(0)
            runs = []
            for _ in range(args.repeats + 1):
                if training.probe is not None:
                    training.probe.start_epoch()
                start = time.perf_counter()
                for b in range(args.batches):
                    index = order[:, b * PAPER_BATCH_SIZE:(b + 1) * PAPER_BATCH_SIZE]
                    probe = training.probe
                    step = probe.step if probe is not None and probe.wants(b) else training.trainer.step
                    step(data.x_train[index], targets[index])
                runs.append(time.perf_counter() - start)
            times[every] = statistics.median(runs[1:]) / args.batches * BATCHES_PER_EPOCH
        trainer = make_trainer(algorithm, BinaryMLP([0]), lr=1e-4)
        checks = 1_000_000
        start = time.perf_counter()
        for _ in range(checks):
            if trainer.observer is not None:
                pass
        hook = (time.perf_counter() - start) / checks * 6 * BATCHES_PER_EPOCH  # 5 layers + the forward
        rows[algorithm] = {"off_s": times[0], "every_10_s": times[10], "every_batch_s": times[1],
                           "hook_s_per_epoch": hook}
        print(f"  {algorithm:<5} off {times[0]:6.2f}   every 10th batch {times[10]:6.2f} ({times[10] / times[0]:.2f}×)   "
              f"every batch {times[1]:6.2f} ({times[1] / times[0]:.2f}×)   hook when off: {1e3 * hook:.2f} ms per "
              f"epoch ({100 * hook / times[0]:.4f} % of it)")
    report["diagnostics"] = rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60, help="batches timed per run (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the median is kept")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 10], help="member counts S to time")
    parser.add_argument("--numpy-batches", type=int, default=15, help="batches timed for the NumPy reference")
    parser.add_argument("--quick", action="store_true", help="a few batches only: checks that it runs")
    parser.add_argument("--contention-batches", type=int, default=468,
                        help="batches timed per contention child (default 468: one MNIST epoch)")
    parser.add_argument("--sections", nargs="+", default=["floors", "contention", "members", "numpy", "diagnostics"],
                        choices=["floors", "contention", "members", "numpy", "diagnostics"],
                        help="what to measure (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats, args.members, args.numpy_batches = 2, 1, [1, 2], 2
        args.contention_batches = 3
    torch.manual_seed(0)
    data = synthetic_mnist()
    if args.quick:
        data = Dataset(data.name, data.x_train, data.labels_train, data.x_test[:500], data.labels_test[:500])
    peaks = []

    def local_peak():
        peaks.append(matmul_peak(repeats=2 if args.quick else 5))
        return peaks[-1]

    report = {"machine": processor("cpu"), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "members": {}, "settings": []}
    print(f"float32 matmul peak (2048³ GEMM, median of 5), measured before each timing: "
          f"{local_peak():.1f} GFLOP/s now, on {torch.get_num_threads()} threads")
    if "floors" in args.sections:
        floors(data, args, local_peak, report)
    if "contention" in args.sections:
        contention(args, report)
    if "members" in args.sections:
        print(f"\nProtocol MLP, tanh, continuous weights, no BN; batch {PAPER_BATCH_SIZE}; "
              f"seconds per epoch per member ({BATCHES_PER_EPOCH} batches; evaluation = 70 000 samples)")
        print(f"{'S':>3} {'algorithm':<6} {'train s':>8} {'% peak':>7} {'eval s':>7} {'% peak':>7} {'total s':>8}")
        n_eval = data.x_train.shape[0] + data.x_test.shape[0]
        for S in args.members:
            rows = {}
            for algorithm in ALGORITHMS:
                peak = local_peak()
                train, model = time_training(algorithm, data, S, args.batches, args.repeats)
                train_fraction = flops_per_sample(algorithm, "train") * BATCHES_PER_EPOCH * PAPER_BATCH_SIZE / train / 1e9 / peak
                if algorithm == "BP":  # evaluation is the same forward pass for every algorithm
                    peak = local_peak()
                    evaluation = time_evaluation(model, data, args.repeats)
                    eval_fraction = flops_per_sample(algorithm, "eval") * n_eval / evaluation / 1e9 / peak
                rows[algorithm] = dict(train_s=train, train_peak_fraction=train_fraction,
                                       eval_s=evaluation, eval_peak_fraction=eval_fraction)
                print(f"{S:>3} {algorithm:<6} {train:8.3f} {100 * train_fraction:6.1f}% {evaluation:7.3f} "
                      f"{100 * eval_fraction:6.1f}% {train + evaluation:8.3f}")
            report["members"][S] = rows
            print(f"    DFA / BP training time: {rows['DFA']['train_s'] / rows['BP']['train_s']:.3f}   "
                  f"DRTP / BP: {rows['DRTP']['train_s'] / rows['BP']['train_s']:.3f}   "
                  f"(FLOP ratio {flops_per_sample('DFA', 'train') / flops_per_sample('BP', 'train'):.3f})")
        if len(args.members) >= 2:
            small, large = min(args.members), max(args.members)
            print(f"\nS = {large} against {large // small} × S = {small}, per member (training + evaluation):")
            for algorithm in ALGORITHMS:
                a, b = report["members"][small][algorithm], report["members"][large][algorithm]
                ratio = (b["train_s"] + b["eval_s"]) / (a["train_s"] + a["eval_s"])
                print(f"    {algorithm:<5} {ratio:.3f}  -> {'S = %d' % (large if ratio < 1 else small)} is faster per member here")
                report["members"][large][algorithm]["cost_vs_single"] = ratio

    if "diagnostics" in args.sections:
        diagnostics_cost(data, args, report)

    if "numpy" in args.sections:
        print("\nEvery setting, S = 1, seconds per epoch (training + evaluation), against NumPy float64")
        print(f"{'activation':<6} {'weights':<10} {'BN':<5} {'algorithm':<6} {'bnnlib':>7} {'NumPy':>7} "
              f"{'speed-up':>8} {'paper code':>10} {'speed-up':>8}")
        for activation, binary, bn in [("tanh", False, False), ("sign", False, False), ("tanh", True, False),
                                       ("sign", True, False), ("tanh", False, True), ("sign", True, True)]:
            for algorithm in ALGORITHMS:
                local_peak()
                train, model = time_training(algorithm, data, 1, max(args.batches // 2, 1), args.repeats,
                                             activation, binary, bn)
                if bn:
                    model.forward_train(data.x_train[:PAPER_BATCH_SIZE].unsqueeze(0))  # running stats exist
                evaluation = time_evaluation(model, data, 1)
                np_train, np_eval = time_numpy(algorithm, data, args.numpy_batches, activation, binary, bn,
                                               eval_samples=min(10_000, data.x_test.shape[0]))
                ours, numpy_total = train + evaluation, np_train + np_eval
                quoted = paper_code_seconds(activation, binary, bn, algorithm)
                weights = "binary" if binary else "continuous"
                print(f"{activation:<6} {weights:<10} {'BN' if bn else '-':<5} {algorithm:<6} {ours:7.3f} "
                      f"{numpy_total:7.2f} {numpy_total / ours:7.2f}× {quoted:10.1f} {quoted / ours:7.2f}×")
                report["settings"].append(dict(activation=activation, binary=binary, batch_norm=bn,
                                               algorithm=algorithm, bnnlib_s=ours, numpy_s=numpy_total,
                                               paper_code_s=quoted))
    report["peak_gflops"] = dict(median=statistics.median(peaks), min=min(peaks), max=max(peaks))
    print(f"\nfloat32 peak over the run: median {statistics.median(peaks):.1f}, "
          f"min {min(peaks):.1f}, max {max(peaks):.1f} GFLOP/s ({len(peaks)} measurements)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
