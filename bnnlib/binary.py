"""Inference on the packed bits: the kernel behind ``PackedNetwork.predict`` (issue #47).

The packed file's hidden blocks are rows of sign bits; this kernel computes on those bits
directly, in C (``bnnlib/_binary.c``, compiled by ``pip install`` through ``setup.py``):

* block 1 on the uint8 pixels p: a = Σ(2p − 255)·s = 4·S − 2·Σp + 255·(n − 2·#(+1)), where S is
  the sum of the pixels whose weight bit is set — each 64-bit word of the row is used as a byte
  mask (AVX512BW) and the masked pixels summed by VNNI's vpdpbusd, or the word is expanded to a
  byte mask (AVX2) and summed by vpsadbw; exact integers (at most 784 · 255 per unit);
* blocks 2–4 on ±1 activations packed 64 to a word: a = n − 2·popcount(w XOR x) (AVX512
  VPOPCNTDQ, else the popcnt instruction, else plain C);
* each hidden unit's output is its integer threshold (mode, T) exactly as
  :class:`bnnlib.deploy.PackedNetwork`, packed to a bit for the next block;
* the output layer: float32 sums of ±w and tanh. The reference engine computes them with a
  float32 GEMM, whose summation order is its own, and takes the *first* largest tanh (saturated
  tanh values tie). So the kernel returns a class only where it is certain: the winner's tanh,
  lowered by a bound on any float32 summation's error, stays above every other class's, raised by
  the same, by more than any float32 tanh can err. For the other images (near ties; a handful
  in 10 000, or none) the kernel gives the last hidden block's ±1 outputs and the reference
  engine's own output layer (float32 GEMM and tanh, in torch) decides. Predictions are therefore those of the
  reference engine, image for image, which the tests prove equal to the float model's.

Paths, chosen at run time by CPU feature: ``avx512`` (AVX512F/BW + VPOPCNTDQ + VNNI), ``avx2``
(AVX2 + POPCNT), ``generic`` (plain C). ``BNNLIB_BINARY_KERNEL=auto|avx512|avx2|generic`` (or the
``path`` argument) forces one; the tests run every path. Large batches are split over
``threads`` threads (default: torch's thread count); a batch under 64 images per thread runs on
the calling thread, so batch 1 pays nothing for threading. Where the extension could not be
compiled, ``PackedNetwork.predict`` uses the torch engine, with the same predictions.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

try:  # compiled by pip install (setup.py); optional
    from . import _binary
except ImportError:  # pragma: no cover - depends on the install
    _binary = None

ENV = "BNNLIB_BINARY_KERNEL"
PATHS = ("avx512", "avx2", "generic")
CHOICES = ("auto", *PATHS)


def compiled() -> bool:
    """Whether the C extension was built (``pip install -e .`` compiles it)."""
    return _binary is not None


_AVAILABLE = tuple(_binary.available_paths()) if _binary is not None else ()


def available_paths() -> List[str]:
    """The paths this processor runs, fastest first (empty without the extension)."""
    return list(_AVAILABLE)


#: CPython's dict behind os.environ (bytes keys on POSIX; os.environ[...] = … and putenv through
#: os.environ update this same dict), else None
_ENVIRON = getattr(os.environ, "_data", None) if os.name == "posix" else None
if not isinstance(_ENVIRON, dict):
    _ENVIRON = None
_ENCODED: dict = {}  # name → its bytes key


def environment(name: str) -> Optional[str]:
    """``os.environ.get(name)``, at a fraction of its cost for an unset name: ``os.environ.get``
    raises and catches a KeyError then, and ``predict`` reads two names per call — a noticeable
    part of its time at batch 1 (``benchmarks/primitives.py`` measures both). Reads the live
    environment, so a change is seen at once."""
    if _ENVIRON is None:
        return os.environ.get(name)
    key = _ENCODED.get(name)
    if key is None:
        key = _ENCODED[name] = os.fsencode(name)
    value = _ENVIRON.get(key)
    return None if value is None else os.fsdecode(value)


def requested(path: Optional[str] = None) -> str:
    """The path asked for: ``path`` if given, else ``$BNNLIB_BINARY_KERNEL`` (default auto); a bad
    value is refused in one line naming the field and the accepted values."""
    if path is not None:
        field, value = "path", path
    else:
        field, value = ENV, environment(ENV) or "auto"
    choice = value.strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{field}={value!r} is not one of {', '.join(CHOICES)}")
    return choice


def choose(path: Optional[str] = None) -> str:
    """The path that will run: the requested one, or for ``auto`` the fastest available."""
    choice = requested(path)
    available = _AVAILABLE
    if not available:
        raise ValueError(f"{ENV}={choice}: the compiled kernel bnnlib._binary is not built; accepted: "
                         f"reinstall with a C compiler (pip install -e .), or engine='gemm'")
    if choice == "auto":
        return available[0]
    if choice not in available:
        raise ValueError(f"{ENV}={choice} is not supported by this processor; accepted here: "
                         f"{', '.join(['auto', *available])}")
    return choice


class BitKernel:
    """One network's bits laid out for one path (built once per network and path)."""

    def __init__(self, sizes: Sequence[int], rows: Sequence[np.ndarray], modes: Sequence[np.ndarray],
                 limits: Sequence[np.ndarray], output: np.ndarray, path: str):
        layers = [(np.ascontiguousarray(r, dtype=np.uint8), np.ascontiguousarray(m, dtype=np.int8),
                   np.ascontiguousarray(t, dtype="<i4")) for r, m, t in zip(rows, modes, limits)]
        self.input_size = int(sizes[0])
        self.path = path
        self._units = int(sizes[-2])
        self._kernel = _binary.Kernel([int(s) for s in sizes], layers,
                                      np.ascontiguousarray(output, dtype="<f4"), path)

    def hidden(self, images: np.ndarray) -> np.ndarray:
        """The last hidden block's ±1 outputs (N, units) as int8."""
        out = np.empty((len(images), self._units), dtype=np.int8)
        self._kernel.hidden(images, out)
        return out

    def predict(self, images: np.ndarray, threads: int = 1) -> tuple:
        """(classes as int64, with −1 where the reference engine must decide; how many are −1)."""
        out = np.empty(len(images), dtype=np.int64)
        flagged = self._kernel.predict(images, out, threads)
        return out, flagged
