"""Inference of the paper's fully binary MLP: every engine of bnnlib, and the anchors, in one run.

    python benchmarks/inference_speed.py                 # the report (a few minutes)
    python benchmarks/inference_speed.py --save          # also benchmarks/results/inference_speed_KIND.{json,txt}
    python benchmarks/inference_speed.py --quick         # a few repeats: checks that it runs
    python benchmarks/inference_speed.py --json out.json

Measured in one run, on MNIST-shaped pixel images and a network with binary weights, sign
activations and BN (random weights: speed does not depend on training), for each engine:
latency at batch 1 (median of ``--repeats`` ≥ 500 calls, each through the engine's Python API,
the call included, each on the next image), throughput at batch ``--batch`` (1 000) with 1 and with 2 threads, and bytes:

* the packed engine's **bits kernel** (``PackedNetwork.predict``'s default, :mod:`bnnlib.binary`),
  once per path this processor runs (avx512, avx2, generic);
* the packed engine's **GEMM engine** (``engine="gemm"``: int8 × int8 → int32 or float32 GEMMs
  of the unpacked ±1 weights, whichever :mod:`bnnlib.kernels` finds faster here);
* the float32 model as it evaluates during training (``BinaryMLP.predict``) and with every
  layer in float32;
* the **C engine** (``python -m bnnlib export-c``), compiled by the system's ``cc`` with ``-O2``
  and with ``-O3 -march=native``, timed by its own C driver (no Python call) — where ``cc`` exists;
* the anchors, only where installed (``pip install -e ".[anchors]"``, not a dependency of the
  book or the tests): TFLite float32 (XNNPACK) and Larq Compute Engine with blocks 2–4 binary
  and with all four blocks binary (±1 input). Not installed: the row says so, the run goes on.

Every engine's predictions on the benchmark's images are checked equal to the reference first
(the anchors excepted: they run the architecture, not this network's arithmetic). The report
names the processor; ``--save`` writes it under the processor kind (``avx512``, ``avx2``: torch's
CPU capability): the book's deployment chapter reads the file of the kind of processor that
executes it, else ``inference_speed_avx512.json`` (``bnnlib.book.deployment.benchmark_file``).
benchmarks/README.md explains the kernel and the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import bnnlib  # noqa: E402,F401  (first: libgomp's spin count, as the CLI)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bnnlib import BinaryMLP, binary, cexport, deploy, kernels  # noqa: E402
from bnnlib.runner import processor  # noqa: E402

from train_speed import FloatOnlyMLP  # noqa: E402  (every layer in float32: the plain float model)

HERE = Path(__file__).resolve().parent
PACKED = "packed engine (integer thresholds)"  # the GEMM engine: the name the deployment chapter reads
FLOAT_EVAL = "float32 model (bnnlib's evaluation)"
FLOAT_PLAIN = "float32, every layer"
THREADS = (1, 2)


def bits_row(path: str) -> str:
    return f"packed engine, bits kernel ({path})"


def _median_seconds(function, repeats):
    """Median seconds of ``function(i)`` over ``repeats`` calls, i = 0, 1, … (after a warm-up)."""
    for i in range(min(repeats, 20)):
        function(i)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        function(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _with_torch_threads(threads, function):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return function()
    finally:
        torch.set_num_threads(before)


def _time_engine(single, batch, repeats, batch_repeats, torch_threads=True):
    """latency at batch 1 and seconds per batch at 1 and 2 threads; ``batch(threads)`` runs a batch."""
    row = {"latency_s": _with_torch_threads(1, lambda: _median_seconds(single, repeats)) if torch_threads
           else _median_seconds(single, repeats)}  # single(i): image i of the batch, a new one each call
    for threads in THREADS:
        run = (lambda t=threads: _with_torch_threads(t, lambda: _median_seconds(lambda i: batch(t), batch_repeats))) \
            if torch_threads else (lambda t=threads: _median_seconds(lambda i: batch(t), batch_repeats))
        row[f"batch_s_{threads}_threads"] = run()
    return row


# ---------------------------------------------------------------------- the C engine
TIMING_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int bnn_predict(const unsigned char pixels[784]);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    int n = atoi(argv[1]), repeats = atoi(argv[2]), i, r;
    unsigned char *images = malloc((size_t)n * 784);
    double *single = malloc(sizeof(double) * repeats), start, best = 1e30;
    volatile int sink = 0;
    if (fread(images, 784, n, stdin) != (size_t)n) return 1;
    for (i = 0; i < n; i++) putchar(bnn_predict(images + (size_t)784 * i));
    for (r = 0; r < repeats; r++) {  /* batch 1: one image per call */
        start = now(); sink += bnn_predict(images + (size_t)784 * (r % n)); single[r] = now() - start;  /* the next image each call */
    }
    for (r = 0; r < 5; r++) {  /* throughput: every image, one thread */
        start = now();
        for (i = 0; i < n; i++) sink += bnn_predict(images + (size_t)784 * i);
        if (now() - start < best) best = now() - start;
    }
    qsort(single, repeats, sizeof(double), cmp);
    fprintf(stderr, "%.9f %.9f\n", single[repeats / 2], best);
    return sink == -1;
}
"""


def c_engine_rows(network, images, expected, repeats):
    """The exported C file compiled two ways, timed by its own driver; {} without ``cc``."""
    cc = shutil.which("cc")
    if cc is None:
        return {}, {"C engine": "no cc on PATH"}
    rows, info = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "model.c").write_text(cexport.source(network))
        (folder / "driver.c").write_text(TIMING_DRIVER)
        info["c_source_bytes"] = (folder / "model.c").stat().st_size
        for name, flags in (("C engine (cc -O2)", ["-O2"]), ("C engine (cc -O3 -march=native)", ["-O3", "-march=native"])):
            subprocess.run([cc, *flags, "-std=c99", "-c", str(folder / "model.c"), "-o", str(folder / "model.o")],
                           check=True)
            subprocess.run([cc, *flags, str(folder / "model.o"), str(folder / "driver.c"), "-lm", "-o",
                            str(folder / "bench")], check=True)
            sizes = subprocess.run(["size", str(folder / "model.o")], capture_output=True, text=True)
            if sizes.returncode == 0:  # text, data, bss of the compiled model
                info[f"{name} object bytes"] = sum(int(v) for v in sizes.stdout.splitlines()[1].split()[:3])
            ran = subprocess.run([str(folder / "bench"), str(len(images)), str(repeats)], input=images.tobytes(),
                                 capture_output=True, check=True)
            predictions = np.frombuffer(ran.stdout, dtype=np.uint8)
            assert np.array_equal(predictions, expected), f"{name} differs from the packed engine"
            latency, batch = map(float, ran.stderr.split())
            rows[name] = {"latency_s": latency, "batch_s_1_threads": batch, "note": "timed in C, no Python call"}
    return rows, info


# ---------------------------------------------------------------------- the anchors (optional)
def _keras_model(reference, binary_blocks, binary_input):
    """The architecture in Keras: float32 Dense + BN + sign, or larq QuantDense (±1 kernel and
    input) for the blocks in ``binary_blocks``; this network's ±1 weights."""
    import tensorflow as tf
    layers = [tf.keras.Input(shape=(reference.input_size,))]
    model_layers = []
    for k in range(reference.n_hidden):
        units = reference.hidden_sizes[k]
        if k in binary_blocks:
            import larq as lq
            quantizer = "ste_sign" if (k > 0 or binary_input) else None
            dense = lq.layers.QuantDense(units, input_quantizer=quantizer, kernel_quantizer="ste_sign",
                                         kernel_constraint="weight_clip", use_bias=False)
        else:
            dense = tf.keras.layers.Dense(units, use_bias=False)
        model_layers += [dense, tf.keras.layers.BatchNormalization()]
        if k + 1 not in binary_blocks:  # a float block next: it needs the sign here
            model_layers.append(tf.keras.layers.Activation(tf.math.sign))
    model_layers += [tf.keras.layers.Dense(reference.n_classes, use_bias=False), tf.keras.layers.Activation("tanh")]
    model = tf.keras.Sequential(layers + model_layers)
    dense_layers = [layer for layer in model.layers if hasattr(layer, "kernel")]
    for layer, weight in zip(dense_layers, reference.weights):
        w = weight[0].detach().numpy()
        layer.kernel.assign(np.where(w > 0, 1.0, -1.0).astype(np.float32) if layer is not dense_layers[-1] else w)
    return model


def _keras_conv_model(reference, binary_blocks, binary_input, batch_size):
    """The architecture for Larq Compute Engine: each block a 1×1 convolution on a 1×1 image.
    LCE converts a binary QuantConv2D to its binary op (LceBconv2d) but a binary QuantDense to a
    float FULLY_CONNECTED between quantize and dequantize ops (it has no binary dense op:
    larq/compute-engine#53), which would time float products."""
    import larq as lq
    import tensorflow as tf
    inputs = tf.keras.Input(shape=(reference.input_size,), batch_size=batch_size)
    h = tf.keras.layers.Reshape((1, 1, reference.input_size))(inputs)
    convs = []
    for k in range(reference.n_hidden):
        if k in binary_blocks:
            conv = lq.layers.QuantConv2D(reference.hidden_sizes[k], 1, kernel_quantizer="ste_sign",
                                         input_quantizer="ste_sign" if (k > 0 or binary_input) else None,
                                         kernel_constraint="weight_clip", use_bias=False)
        else:
            conv = tf.keras.layers.Conv2D(reference.hidden_sizes[k], 1, use_bias=False)
        convs.append(conv)
        h = tf.keras.layers.BatchNormalization()(conv(h))
        if k + 1 not in binary_blocks:  # a float block next: it needs the sign here
            h = tf.keras.layers.Activation(tf.math.sign)(h)
    last = tf.keras.layers.Dense(reference.n_classes, use_bias=False)
    model = tf.keras.Model(inputs, tf.keras.layers.Activation("tanh")(last(tf.keras.layers.Flatten()(h))))
    for layer, weight in zip(convs + [last], reference.weights):
        w = weight[0].detach().numpy()
        layer.kernel.assign(w if layer is last else np.where(w > 0, 1.0, -1.0).astype(np.float32).reshape(layer.kernel.shape))
    return model


def anchor_rows(reference, x, repeats, batch_repeats):
    """TFLite float32 and LCE rows where installed; otherwise why not, per row."""
    rows, skipped = {}, {}
    # TensorFlow ≥ 2.16's tf.keras is Keras 3, which larq and LCE's converter do not support (its
    # TFLite conversion aborts the process): Keras 2 from tf-keras, chosen before TF is imported
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    try:
        import tensorflow as tf
    except ImportError:
        skipped["TFLite float32"] = "tensorflow not installed (pip install -e \".[anchors]\")"
        tf = None
    batch = x.numpy()

    def interpreter_rows(name, make):  # make(threads, batch_size) -> callable(inputs) -> outputs
        try:
            one = {t: make(t, 1) for t in THREADS}
            many = {t: make(t, len(batch)) for t in THREADS}
            row = {"latency_s": _median_seconds(lambda i: one[1](batch[i % len(batch)][None]), repeats)}
            for t in THREADS:
                row[f"batch_s_{t}_threads"] = _median_seconds(lambda i, t=t: many[t](batch), batch_repeats)
            rows[name] = row
        except Exception as error:  # an anchor that fails is reported, never the whole run
            skipped[name] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"

    if tf is not None:
        def tflite(threads, size):
            model = _keras_model(reference, binary_blocks=(), binary_input=False)
            flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
            interpreter = tf.lite.Interpreter(model_content=flat, num_threads=threads)
            inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
            interpreter.resize_tensor_input(inp, [size, reference.input_size])
            interpreter.allocate_tensors()

            def run(images):
                interpreter.set_tensor(inp, images)
                interpreter.invoke()
                return interpreter.get_tensor(out)
            return run
        interpreter_rows("TFLite float32 (XNNPACK)", tflite)
    try:
        import larq_compute_engine as lce
        from larq_compute_engine.tflite.python.interpreter import Interpreter as LceInterpreter
    except ImportError:
        lce = None
        for name in ("Larq Compute Engine, blocks 2–4 binary", "Larq Compute Engine, all four blocks binary"):
            skipped[name] = "larq-compute-engine not installed (pip install -e \".[anchors]\")"
    if lce is not None:
        for name, blocks, binary_input in (("Larq Compute Engine, blocks 2–4 binary", (1, 2, 3), False),
                                           ("Larq Compute Engine, all four blocks binary", (0, 1, 2, 3), True)):
            def make(threads, size, blocks=blocks, binary_input=binary_input):
                model = _keras_conv_model(reference, blocks, binary_input, size)
                interpreter = LceInterpreter(lce.convert_keras_model(model), num_threads=threads)
                # Interpreter.predict feeds its input one sample at a time (a batch axis of 1 added
                # to each row): the wrapper underneath runs the whole batch in one invoke
                return lambda images: interpreter.interpreter.predict([images])[0]
            interpreter_rows(name, make)
    return rows, skipped


# ---------------------------------------------------------------------- the run
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=500, help="timed calls at batch 1 (median kept; ≥ 500)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a few repeats: checks that it runs")
    parser.add_argument("--no-anchors", action="store_true", help="skip TFLite and LCE even where installed")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--save", action="store_true",
                        help="write benchmarks/results/inference_speed_KIND.{json,txt} (KIND: avx512, avx2, …)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 20
    batch_repeats = 3 if args.quick else 11
    g = torch.Generator().manual_seed(0)
    models = {}
    for name, cls in ((FLOAT_EVAL, BinaryMLP), (FLOAT_PLAIN, FloatOnlyMLP)):
        model = cls([2], activation="sign", binary_weights=True, batch_norm=True, pixel_inputs=True, init=0.1)
        model.forward_train((torch.randint(0, 256, (1, 128, 784), generator=g).float() / 127.5 - 1))  # BN stats
        models[name] = model
    reference = models[FLOAT_EVAL]
    for other in models.values():  # the same weights and statistics in both
        for name in ("weights", "bn_gamma", "bn_beta", "running_mean", "running_var"):
            for dst, src in zip(getattr(other, name), getattr(reference, name)):
                dst.copy_(src)
    network = deploy.pack(reference)
    images = torch.randint(0, 256, (args.batch, 784), generator=g).to(torch.uint8)
    x = images.to(torch.float32).div(127.5).sub(1.0)
    pixels = images.numpy()
    expected = reference.predict(x)[0].numpy()
    assert np.array_equal(network.predict(pixels, engine="gemm"), expected)

    rows = {}
    n = len(pixels)  # batch 1 takes a new image each call: the same one would let branches be learnt
    for path in binary.available_paths():
        assert np.array_equal(network.predict(pixels, path=path), expected), path
        network.predict(pixels[:1], path=path)  # builds the path's kernel before timing
        rows[bits_row(path)] = _time_engine(lambda i, p=path: network.predict(pixels[i % n:i % n + 1], path=p),
                                            lambda t, p=path: network.predict(pixels, path=p, threads=t),
                                            args.repeats, batch_repeats, torch_threads=False)
    rows[PACKED] = _time_engine(lambda i: network.predict(pixels[i % n:i % n + 1], engine="gemm"),
                                lambda t: network.predict(pixels, engine="gemm"), args.repeats, batch_repeats)
    for name, model in models.items():
        rows[name] = _time_engine(lambda i, m=model: m.predict(x[i % n:i % n + 1]), lambda t, m=model: m.predict(x),
                                  args.repeats, batch_repeats)
    c_rows, bytes_info = c_engine_rows(network, pixels, expected, max(args.repeats, 1000))
    rows.update(c_rows)
    skipped = {}
    if not args.no_anchors:
        anchor, skipped = anchor_rows(reference, x, args.repeats, batch_repeats)
        rows.update(anchor)
    two = f"batch_s_{max(THREADS)}_threads"
    for row in rows.values():  # the deployment chapter's field: the batch at the report's thread count
        row["batch_s"] = row.get(two, row.get("batch_s_1_threads"))

    with tempfile.TemporaryDirectory() as folder:
        packed_bytes = deploy.save(network, Path(folder) / "model.bnn")
    float_bytes = sum(4 * w.numel() for w in reference.weights) + \
        sum(4 * t.numel() for name in ("bn_gamma", "bn_beta", "running_mean", "running_var")
            for t in getattr(reference, name))

    kernel = kernels.chosen(torch.device("cpu"))
    lines = [f"Fully binary MLP 784-700-500-300-200-10 with BN, {processor('cpu')}, {os.cpu_count()} CPUs; "
             f"batch 1: median of {args.repeats} calls through each engine's Python API (C engine: its own "
             f"driver); batch {args.batch}: median of {batch_repeats}; the GEMM engine's ±1 GEMMs as {kernel}",
             f"{'':<52} {'batch 1 µs':>11} {'img/s, 1 thread':>16} {'img/s, 2 threads':>17}"]
    for name, row in rows.items():
        two_threads = row.get(two)
        lines.append(f"{name:<52} {1e6 * row['latency_s']:11.1f} {args.batch / row['batch_s_1_threads']:16.0f} "
                     + (f"{args.batch / two_threads:17.0f}" if two_threads else f"{'—':>17}"))
    for name, why in skipped.items():
        lines.append(f"{name:<52} skipped: {why}")
    best = rows[bits_row(binary.available_paths()[0])] if binary.available_paths() else None
    plain = rows[FLOAT_PLAIN]
    if best:
        lines.append(f"\nbits kernel ({binary.available_paths()[0]}) against the GEMM engine: "
                     f"{rows[PACKED]['latency_s'] / best['latency_s']:.1f}× at batch 1, "
                     f"{rows[PACKED][two] / best[two]:.1f}× at batch {args.batch}; against float32 (every layer): "
                     f"{plain['latency_s'] / best['latency_s']:.1f}× and {plain[two] / best[two]:.1f}×")
    lines.append(f"model bytes: packed file {packed_bytes}, float32 weights and BN {float_bytes}: "
                 f"{float_bytes / packed_bytes:.1f}× smaller (target ≥ 25×)"
                 + "".join(f"; {name} {value}" for name, value in bytes_info.items()))
    text = "\n".join(lines)
    print(text)
    report = {"rows": rows, "skipped": skipped, "packed_bytes": packed_bytes, "float32_bytes": float_bytes,
              **bytes_info, "threads": max(THREADS), "batch": args.batch, "repeats": args.repeats,
              "processor": processor("cpu"), "kernel": kernel,
              "bits_paths": binary.available_paths(), "engines": {"gemm": PACKED, **{
                  f"bits {path}": bits_row(path) for path in binary.available_paths()}}}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.save:
        kind = torch.backends.cpu.get_cpu_capability().lower()
        (HERE / "results" / f"inference_speed_{kind}.json").write_text(json.dumps(report, indent=1) + "\n")
        (HERE / "results" / f"inference_speed_{kind}.txt").write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
