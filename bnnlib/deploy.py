"""Deploying a trained fully binary network: a bit-packed file and integer-only inference.

What the paper's abstract promises of binary networks — smaller models and faster inference —
measured for the networks it trains. A final run with binary weights and sign activations
keeps its trained state (``<results>/states/``); :func:`export` turns that state into one file:

* hidden layers: the signs of the latent weights, 8 per byte (``numpy.packbits``), one row of
  bits per output unit;
* each hidden unit's batch normalisation followed by sign (or, without BN, the sign alone)
  folded into one integer threshold on the unit's integer pre-activation — found by bisection
  on the float model's own float32 expression (``BinaryMLP.eval_batch_norm``), so the fold
  reproduces its rounding, its negative γ and its sign(0) = −1 exactly;
* the first layer works on the integer pixels: x = p/127.5 − 1 = (2p − 255)/255, so its
  pre-activation is (1/255)·Σ(2p − 255)·s, an integer over 255;
* the output layer stays float32 (the paper does not binarise it), followed by tanh.

:class:`PackedNetwork` runs that file with exact integer arithmetic for the binary layers, by
one of two engines with the same predictions:

* ``bits`` (the default, :mod:`bnnlib.binary`): a compiled kernel on the packed bits — XNOR and
  popcount in blocks 2–4, the weight bits as masks over the pixels in block 1, activations
  packed to bits between blocks, the same integer thresholds;
* ``gemm`` (the engine before it, kept for comparison and as the fallback where the kernel was
  not compiled): int8 × int8 → int32 GEMMs (``torch._int_mm``; float32 GEMMs of the same
  integers where the processor runs int8 slower, :mod:`bnnlib.kernels`) on ±1 weights unpacked
  once at load, integer thresholds instead of BN and sign.

The tests prove the predictions equal the float model's on every image of the MNIST and
Fashion-MNIST test sets, and the two engines (every path of the first) equal to each other.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import pandas as pd
import torch

from . import binary, kernels
from .binarize import tanh
from .config import IDENTITY_FIELDS, RunConfig
from .model import BinaryMLP
from .store import ResultsStore

MAGIC = b"BNNLIB-PACKED-1\n"
# threshold modes of a hidden unit: y = +1 iff a ≥ T (ABOVE), a ≤ T (BELOW), always (PLUS), never (MINUS)
ABOVE, BELOW, PLUS, MINUS = 1, -1, 2, -2
# the engines of PackedNetwork.predict: on the packed bits (compiled), or int8/float32 torch GEMMs
ENGINES = ("bits", "gemm")
ENGINE_ENV = "BNNLIB_PACKED_ENGINE"


class ExportError(ValueError):
    """A run that cannot be exported (not binary, not complete, no kept state)."""


# ---------------------------------------------------------------------- the float model of a run
def run_config(store: ResultsStore, run_id: str) -> RunConfig:
    record = store.run_record(run_id)
    if record is None:
        raise ExportError(f"run {run_id} is not in {store.runs_path}; accepted: a run id listed there "
                          f"(python -m bnnlib status {store.directory})")
    values = {name: record[name] for name in IDENTITY_FIELDS}
    for name in ("n_train", "n_test"):
        values[name] = None if pd.isna(values[name]) else int(values[name])
    values.update(batch_norm=bool(values["batch_norm"]), batch_size=int(values["batch_size"]),
                  seed=int(values["seed"]), epochs=int(record["epochs_requested"]))
    return RunConfig(**values)


def float_model(store: ResultsStore, run_id: str) -> tuple:
    """(RunConfig, BinaryMLP with one member) of a completed run, from its kept final state."""
    from .runner import build_training

    config = run_config(store, run_id)
    record = store.run_record(run_id)
    if record["status"] != "complete":
        raise ExportError(f"run {run_id} is {record['status']}, not complete; accepted: a complete run")
    if not (config.binary_weights and config.activation == "sign"):
        raise ExportError(f"run {run_id} has {config.weights} weights and {config.activation} activations; "
                          f"accepted: a fully binary run (binary weights, sign activations)")
    state = store.load_final_state(run_id)
    if state is None:
        raise ExportError(f"run {run_id} has no kept trained state ({store.state_path(run_id)}): it was "
                          f"trained without --keep-checkpoints, or on another machine (states stay out of "
                          f"git); train it again with --keep-checkpoints")
    input_size = state["model"]["weights"][0].shape[0]
    training = build_training([config], input_size)
    training.load_member_states([state])
    return config, training.model


# ---------------------------------------------------------------------- folding BN + sign
def _thresholds(model: BinaryMLP, k: int, fan_in: int, scale_divisor: float = 1.0) -> tuple:
    """Integer thresholds of hidden block k: for each unit, (mode, T) such that the float
    model's sign(BN(a / scale_divisor)) is +1 exactly when ``a ≥ T`` (mode ABOVE) or ``a ≤ T``
    (BELOW), for every integer pre-activation a with |a| ≤ fan_in · scale_divisor.

    The float model's own float32 expression is evaluated (BinaryMLP.forward_eval's BN, then
    sign), so the fold inherits its rounding, its sign(0) = −1 and the direction a negative γ
    gives; it is monotone in a, and a bisection per unit finds where it changes."""
    n_units = model.hidden_sizes[k]
    if model.batch_norm:
        scale, shift = (t.view(-1) for t in model.eval_batch_norm(k))

    def positive(a: torch.Tensor) -> torch.Tensor:  # a: (units,) integers as int64
        z = a.to(torch.float32)
        if scale_divisor != 1.0:
            z = z / scale_divisor
        if model.batch_norm:
            z = torch.addcmul(shift, z, scale)
        return model.activation.forward(z) > 0

    limit = int(round(fan_in * scale_divisor))
    low = torch.full((n_units,), -limit, dtype=torch.int64)
    high = torch.full((n_units,), limit, dtype=torch.int64)
    at_low, at_high = positive(low), positive(high)
    modes = torch.where(at_low & at_high, PLUS, torch.where(~at_low & ~at_high, MINUS,
                                                            torch.where(at_high, ABOVE, BELOW)))
    # invariant: f(low) != f(high) for the changing units; bisect until they are neighbours
    while bool(((high - low) > 1).any()):
        middle = (low + high) // 2
        same_as_low = positive(middle) == at_low
        low = torch.where(same_as_low, middle, low)
        high = torch.where(same_as_low, high, middle)
    limits = torch.where(modes == ABOVE, high, torch.where(modes == BELOW, low, torch.zeros_like(low)))
    return modes.to(torch.int8).numpy(), limits.to(torch.int32).numpy()


# ---------------------------------------------------------------------- the file
@dataclass
class PackedLayer:
    signs: np.ndarray        # (out, in) bool: True where the weight is +1
    modes: np.ndarray        # (out,) int8
    limits: np.ndarray       # (out,) int32


def export(store: ResultsStore, run_id: str, path: Union[str, Path], verify_on=None) -> dict:
    """Write a completed fully binary run to ``path``; returns the header written.

    ``verify_on``: optionally a Dataset whose test set both the float model and the packed
    network classify; their agreement is recorded in the header.
    """
    config, model = float_model(store, run_id)
    network = pack(model, {"run_id": run_id, "config": config.as_dict(),
                           "state": "last epoch (the trained state at the end of training)"})
    header = network.header
    if verify_on is not None:
        float_predictions = model.predict(verify_on.x_test)[0].numpy()
        packed_predictions = network.predict(pixels(verify_on.x_test))
        header["verified_on"] = {"dataset": verify_on.name, "images": int(len(float_predictions)),
                                 "agreement": float((float_predictions == packed_predictions).mean())}
    save(network, path)
    return header


def save(network: "PackedNetwork", path: Union[str, Path]) -> int:
    """Write the packed file: magic, header length, JSON header, then per hidden layer its sign
    bits (8 per byte, a row per output unit), threshold modes (int8) and limits (int32), then
    the float32 output weights. Returns the bytes written."""
    body = io.BytesIO()
    for layer in network.layers:
        body.write(np.packbits(layer.signs, axis=1).tobytes())
        body.write(layer.modes.tobytes())
        body.write(layer.limits.astype("<i4").tobytes())
    body.write(network.output.astype("<f4").tobytes())
    encoded = json.dumps(network.header, sort_keys=True).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + struct.pack("<I", len(encoded)) + encoded + body.getvalue())
    return path.stat().st_size


def pack(model: BinaryMLP, about: Optional[dict] = None) -> "PackedNetwork":
    """The packed network of a one-member fully binary model with pixel inputs (in memory)."""
    if model.n_members != 1 or not (model.binary_weights and model.activation.binary_output) \
            or not model.pixel_inputs:
        raise ExportError("accepted: one member with binary weights, sign activations and pixel inputs")
    fan_ins = [model.input_size, *model.hidden_sizes[:-1]]
    layers = []
    for k in range(model.n_hidden):
        signs = (model.effective_weight(k)[0] > 0).T.contiguous().numpy()  # sign(0) = −1
        # block 1 sees a = Σ(2p − 255)·s, i.e. 255 × its float pre-activation
        modes, limits = _thresholds(model, k, fan_ins[k], 255.0 if k == 0 else 1.0)
        layers.append(PackedLayer(signs, modes, limits))
    output = model.weights[-1][0].contiguous().numpy().astype(np.float32)
    header = {"format": "bnnlib packed binary MLP, version 1", **(about or {}), "input_size": model.input_size,
              "hidden_sizes": list(model.hidden_sizes), "n_classes": model.n_classes,
              "batch_norm": model.batch_norm}
    return PackedNetwork(header, layers, output)


def pixels(x: torch.Tensor) -> np.ndarray:
    """The uint8 pixels p behind protocol inputs x = p/127.5 − 1 (exact: x holds every p)."""
    return torch.round((x + 1.0) * 127.5).to(torch.uint8).numpy()


# ---------------------------------------------------------------------- integer-only inference
class PackedNetwork:
    """A packed fully binary MLP; ``predict(pixels)`` uses integer arithmetic for every binary
    layer and float32 only for the output layer (not binarised in the paper)."""

    def __init__(self, header: dict, layers: List[PackedLayer], output: np.ndarray):
        self.header, self.layers, self.output = header, layers, output
        # ±1 weights as int8 (in, out) for the int8 GEMMs, unpacked once here
        self._weights = [torch.from_numpy(np.where(layer.signs.T, 1, -1).astype(np.int8)).contiguous()
                         for layer in layers]
        self._column_sums = [w.sum(dim=0, dtype=torch.int32) for w in self._weights]
        self._weights_float32: Optional[List[torch.Tensor]] = None
        self._modes = [torch.from_numpy(layer.modes) for layer in layers]
        self._limits = [torch.from_numpy(layer.limits) for layer in layers]
        self._output = torch.from_numpy(output)
        self._bit_kernels: dict = {}  # path → binary.BitKernel, built on first use
        self._resolved: dict = {}  # predict's (engine, path, environment) → its kernel, or "gemm"

    @classmethod
    def load(cls, path: Union[str, Path]) -> "PackedNetwork":
        data = Path(path).read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"{path} is not a bnnlib packed network (no {MAGIC!r} header)")
        (length,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        header = json.loads(data[start:start + length])
        offset = start + length
        sizes = [header["input_size"], *header["hidden_sizes"]]
        layers = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            row_bytes = (fan_in + 7) // 8
            packed = np.frombuffer(data, np.uint8, fan_out * row_bytes, offset).reshape(fan_out, row_bytes)
            offset += fan_out * row_bytes
            signs = np.unpackbits(packed, axis=1, count=fan_in).astype(bool)
            modes = np.frombuffer(data, np.int8, fan_out, offset).copy()
            offset += fan_out
            limits = np.frombuffer(data, "<i4", fan_out, offset).astype(np.int32)
            offset += 4 * fan_out
            layers.append(PackedLayer(signs, modes, limits))
        shape = (sizes[-1], header["n_classes"])
        output = np.frombuffer(data, "<f4", shape[0] * shape[1], offset).reshape(shape).astype(np.float32)
        if offset + output.nbytes != len(data):
            raise ValueError(f"{path}: {len(data) - offset - output.nbytes} unexpected bytes at the end "
                             f"(truncated or corrupt file)")
        return cls(header, layers, output)

    def _threshold(self, k: int, a: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        modes, limits = self._modes[k], self._limits[k]
        above = a >= limits
        below = a <= limits
        on = torch.where(modes == ABOVE, above, torch.where(modes == BELOW, below, modes == PLUS))
        return on.to(dtype).mul_(2).sub_(1)  # ±1, the next layer's input

    def _float_weights(self) -> List[torch.Tensor]:
        """The ±1 weights as float32, for processors whose int8 GEMMs are the slower kernel
        (converted once, on first use)."""
        if self._weights_float32 is None:
            self._weights_float32 = [w.to(torch.float32) for w in self._weights]
        return self._weights_float32

    @torch.no_grad()
    def logits(self, images: np.ndarray) -> torch.Tensor:
        """tanh outputs (N, classes) for uint8 images (N, input_size)."""
        p = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        # every hidden sum is an integer below 2²⁴: int8 × int8 → int32 GEMMs, or float32 GEMMs
        # of the same integers where this processor runs int8 slower (bnnlib.kernels)
        if kernels.use_int8(torch.device("cpu")):
            dtype, weights, gemm = torch.int8, self._weights, torch._int_mm
        else:
            dtype, weights, gemm = torch.float32, self._float_weights(), torch.matmul
        # block 1: Σ(2p − 255)·s = 2·Σ(p − 128)·s + Σs, with p − 128 ∈ [−128, 127] an int8
        centred = (p.to(torch.int16) - 128).to(dtype)
        a = gemm(centred, weights[0]).mul_(2).add_(self._column_sums[0])
        y = self._threshold(0, a, dtype)
        for k in range(1, len(self.layers)):
            y = self._threshold(k, gemm(y, weights[k]), dtype)
        return self._output_layer(y)

    def _output_layer(self, y: torch.Tensor) -> torch.Tensor:
        """tanh outputs of the last hidden block's ±1 outputs y: float32, as the float model."""
        return tanh(y.to(torch.float32) @ self._output)

    def engine(self, engine: Optional[str] = None) -> str:
        """The engine ``predict`` uses: ``engine`` if given, else ``$BNNLIB_PACKED_ENGINE``, else
        ``bits`` where the kernel is compiled and ``gemm`` where it is not."""
        field, value = ("engine", engine) if engine is not None else (ENGINE_ENV, binary.environment(ENGINE_ENV) or "")
        choice = value.strip().lower()
        if not choice:
            return "bits" if binary.compiled() else "gemm"
        if choice not in ENGINES:
            raise ValueError(f"{field}={value!r} is not one of {', '.join(ENGINES)}")
        return choice

    def bit_kernel(self, path: Optional[str] = None) -> "binary.BitKernel":
        """The compiled kernel for ``path`` (default ``$BNNLIB_BINARY_KERNEL``, else the fastest here)."""
        chosen = binary.choose(path)
        kernel = self._bit_kernels.get(chosen)
        if kernel is None:
            sizes = [self.header["input_size"], *self.header["hidden_sizes"], self.header["n_classes"]]
            kernel = binary.BitKernel(sizes, [np.packbits(layer.signs, axis=1) for layer in self.layers],
                                      [layer.modes for layer in self.layers], [layer.limits for layer in self.layers],
                                      self.output, chosen)
            self._bit_kernels[chosen] = kernel
        return kernel

    def predict(self, images: np.ndarray, batch_size: int = 1024, engine: Optional[str] = None,
                path: Optional[str] = None, threads: Optional[int] = None) -> np.ndarray:
        """Classes (int64) of uint8 images (N, input_size). ``engine``: ``bits`` or ``gemm`` (see
        :meth:`engine`); ``path`` and ``threads`` choose the ``bits`` kernel's path and threads
        (default: ``$BNNLIB_BINARY_KERNEL`` or the fastest, and torch's thread count);
        ``batch_size`` is the ``gemm`` engine's. Both give the same predictions."""
        # what engine and path the arguments and the environment name, resolved once per distinct
        # request (validating them costs more than the kernel's own call overhead at batch 1)
        request = (engine, path, binary.environment(ENGINE_ENV), binary.environment(binary.ENV))
        kernel = self._resolved.get(request)
        if kernel is None:
            kernel = "gemm" if self.engine(engine) == "gemm" else self.bit_kernel(path)
            self._resolved[request] = kernel
        if kernel == "gemm":
            out = [self.logits(images[i:i + batch_size]).argmax(dim=1) for i in range(0, len(images), batch_size)]
            return torch.cat(out).numpy() if out else np.empty(0, dtype=np.int64)
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.ndim != 2 or images.shape[1] != self.header["input_size"]:
            raise ValueError(f"images has shape {images.shape}; accepted: (N, {self.header['input_size']}) uint8 pixels")
        classes, flagged = kernel.predict(images, torch.get_num_threads() if threads is None else threads)
        if flagged:  # near ties of the float32 output layer: the reference engine decides them
            where = np.flatnonzero(classes < 0)
            y = torch.from_numpy(kernel.hidden(images[where]))
            classes[where] = self._output_layer(y).argmax(dim=1).numpy()
        return classes


# ---------------------------------------------------------------------- the model report
def summary(network: Union[PackedNetwork, BinaryMLP]) -> pd.DataFrame:
    """Per layer: shape, 1-bit and 32-bit parameters, memory as deployed and as float32,
    binary and float multiply-accumulates per image; a last row holds the totals
    (larq's ``models.summary`` is the model). ``compression`` = float32 bytes / deployed bytes."""
    if isinstance(network, PackedNetwork):
        sizes = [network.header["input_size"], *network.header["hidden_sizes"], network.header["n_classes"]]
        batch_norm = network.header["batch_norm"]
        binary = True
    else:
        sizes = [network.input_size, *network.hidden_sizes, network.n_classes]
        batch_norm, binary = network.batch_norm, network.binary_weights and network.activation.binary_output
    rows = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = k < len(sizes) - 2
        packed = hidden and binary
        weights = fan_in * fan_out
        row = {"layer": f"block {k + 1}" if hidden else "output", "shape": f"{fan_in} × {fan_out}",
               "1-bit parameters": weights if packed else 0,
               "32-bit parameters": 0 if packed else weights,
               # a folded threshold per unit (int32 + 1 mode byte) replaces BN's 4 float statistics
               "thresholds": fan_out if packed else 0,
               "deployed bytes": (fan_out * ((fan_in + 7) // 8) + 5 * fan_out) if packed else 4 * weights,
               "float32 bytes": 4 * weights + (4 * 4 * fan_out if hidden and batch_norm else 0),
               "binary MACs": weights if packed else 0, "float MACs": 0 if packed else weights}
        if not packed and hidden and batch_norm:
            row["32-bit parameters"] += 2 * fan_out  # γ and β (running statistics are not trained)
        rows.append(row)
    table = pd.DataFrame(rows)
    total = table.drop(columns=["layer", "shape"]).sum()
    table = pd.concat([table, pd.DataFrame([{"layer": "total", "shape": "", **total.to_dict()}])],
                      ignore_index=True)
    table["compression"] = (table["float32 bytes"] / table["deployed bytes"]).round(2)
    return table
