"""Inference of the paper's fully binary MLP: the float32 model against the packed integer engine.

    python benchmarks/inference_speed.py            # the report (about a minute)
    python benchmarks/inference_speed.py --json out.json

Measured in one run, on MNIST-shaped pixel images and a network with binary weights, sign
activations and BN (random weights: speed does not depend on training): latency at batch 1
(median over repeated single images) and throughput at batch 1 000, of

* the float32 model as it evaluates during training (``BinaryMLP.predict``, exact integer paths
  included: that is bnnlib's evaluation), and of the same model with every layer in float32;
* the packed engine (``bnnlib.deploy.PackedNetwork``): exact GEMMs on ±1 weights (int8 × int8
  → int32, or float32 GEMMs of the same integers where this processor runs int8 slower:
  ``bnnlib.kernels`` picks, and the report names the kernel and the processor), integer
  thresholds instead of BN and sign, float32 only in the output layer;

and the bytes of the packed file against the float32 weights. Targets (issue #9): weights at
least 25× smaller, the packed engine faster than float32 at batch 1 and at batch 1 000.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


import bnnlib  # noqa: E402,F401  (first: libgomp's spin count, as the CLI)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bnnlib import BinaryMLP, deploy, kernels  # noqa: E402
from bnnlib.runner import processor  # noqa: E402

from train_speed import FloatOnlyMLP  # noqa: E402  (every layer in float32: the plain float model)


PACKED = "packed engine (integer thresholds)"


def _median_seconds(function, repeats):
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls at batch 1 (median kept)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a few repeats: checks that it runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 5
    g = torch.Generator().manual_seed(0)
    models = {}
    for name, cls in (("float32 model (bnnlib's evaluation)", BinaryMLP), ("float32, every layer", FloatOnlyMLP)):
        model = cls([2], activation="sign", binary_weights=True, batch_norm=True, pixel_inputs=True, init=0.1)
        model.forward_train((torch.randint(0, 256, (1, 128, 784), generator=g).float() / 127.5 - 1))  # BN stats
        models[name] = model
    reference = models["float32 model (bnnlib's evaluation)"]
    for other in models.values():  # the same weights and statistics in both
        for name in ("weights", "bn_gamma", "bn_beta", "running_mean", "running_var"):
            for dst, src in zip(getattr(other, name), getattr(reference, name)):
                dst.copy_(src)
    network = deploy.pack(reference)
    images = torch.randint(0, 256, (args.batch, 784), generator=g).to(torch.uint8)
    x = images.to(torch.float32).div(127.5).sub(1.0)
    pixels = images.numpy()
    assert np.array_equal(network.predict(pixels), reference.predict(x)[0].numpy())

    rows = {}
    for name, model in models.items():
        rows[name] = dict(latency_s=_median_seconds(lambda: model.predict(x[:1]), args.repeats),
                          batch_s=_median_seconds(lambda: model.predict(x), max(args.repeats // 20, 3)))
    rows[PACKED] = dict(
        latency_s=_median_seconds(lambda: network.predict(pixels[:1]), args.repeats),
        batch_s=_median_seconds(lambda: network.predict(pixels), max(args.repeats // 20, 3)))

    with tempfile.TemporaryDirectory() as folder:
        packed_bytes = deploy.save(network, Path(folder) / "model.bnn")
    float_bytes = sum(4 * w.numel() for w in reference.weights) + \
        sum(4 * t.numel() for name in ("bn_gamma", "bn_beta", "running_mean", "running_var")
            for t in getattr(reference, name))

    kernel = kernels.chosen(torch.device("cpu"))
    print(f"Fully binary MLP 784-700-500-300-200-10 with BN, {processor('cpu')}, {torch.get_num_threads()} "
          f"threads, exact ±1 GEMMs as {kernel}; median of {args.repeats} single images, batch {args.batch}")
    print(f"{'':<50} {'batch 1 µs':>11} {'images/s at ' + str(args.batch):>20}")
    base = rows["float32 model (bnnlib's evaluation)"]
    plain = rows["float32, every layer"]
    for name, row in rows.items():
        print(f"{name:<50} {1e6 * row['latency_s']:11.1f} {args.batch / row['batch_s']:20.0f}")
    packed = rows[PACKED]
    print(f"\npacked engine against float32 (every layer): {plain['latency_s'] / packed['latency_s']:.2f}× at batch 1, "
          f"{plain['batch_s'] / packed['batch_s']:.2f}× at batch {args.batch}")
    print(f"packed engine against bnnlib's evaluation:   {base['latency_s'] / packed['latency_s']:.2f}× at batch 1, "
          f"{base['batch_s'] / packed['batch_s']:.2f}× at batch {args.batch}")
    print(f"model bytes: packed file {packed_bytes}, float32 weights and BN {float_bytes}: "
          f"{float_bytes / packed_bytes:.1f}× smaller (target ≥ 25×)")
    report = {"rows": rows, "packed_bytes": packed_bytes, "float32_bytes": float_bytes,
              "threads": torch.get_num_threads(), "batch": args.batch, "processor": processor("cpu"),
              "kernel": kernel}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
