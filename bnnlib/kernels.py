"""The exact ±1 GEMMs and which kernel computes them on this processor: int8 or float32.

In a network with binary weights, block 1's sums Σ(2p − 255)·s (pixel inputs) and, with sign
activations, the ±1 × ±1 sums of blocks 2–4 are integers of magnitude below 2²⁴. An
int8 × int8 → int32 GEMM (``torch._int_mm``) and a float32 GEMM therefore give the same
float32 numbers, in any summation order (tests/test_integer_layers.py pins it for both
kernels): the choice changes the speed, never a number.

The speed depends on the processor. On an AVX512 EPYC the int8 GEMM of a paper-sized block
(128 × 700 by 700 × 500) ran about 7× float32; on an AVX2 EPYC, where torch has no fast int8
kernel, about 30× *slower* — a paper epoch took 190 s instead of 5. So, by default, the
choice is measured once per process (and thread count) on that block, a fraction of a second;
``BNNLIB_INT8_GEMM=int8`` or ``=float32`` forces it (benchmarks and tests compare both).
On CUDA the float32 GEMM is used (``torch._int_mm`` wants sizes the paper's do not have).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import torch

ENV = "BNNLIB_INT8_GEMM"
CHOICES = ("auto", "int8", "float32")


def requested() -> str:
    """The kernel asked for by ``BNNLIB_INT8_GEMM`` (default ``auto``); a bad value is refused
    in one line naming the variable and the accepted values."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={os.environ[ENV]!r} is not one of {', '.join(CHOICES)}")
    return value


def _seconds(gemm, repeats: int, give_up_after: float = float("inf")) -> float:
    """Fastest of ``repeats`` timed calls after one warm-up; stops early past ``give_up_after``."""
    gemm()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        gemm()
        best = min(best, time.perf_counter() - start)
        if best > give_up_after:
            break
    return best


@lru_cache(maxsize=None)
def int8_is_faster(threads: int) -> bool:
    """Whether ``torch._int_mm`` beats a float32 GEMM on a paper-sized ±1 block here, at
    ``threads`` threads (measured once: about 0.01 s where int8 is fast, 0.2 s where it is not)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (128, 700), generator=g, dtype=torch.int8).mul_(2).sub_(1)
    b = torch.randint(0, 2, (700, 500), generator=g, dtype=torch.int8).mul_(2).sub_(1)
    a_float, b_float = a.float(), b.float()
    float32 = _seconds(lambda: torch.matmul(a_float, b_float), repeats=5)
    int8 = _seconds(lambda: torch._int_mm(a, b), repeats=5, give_up_after=3 * float32)
    return int8 < float32


def use_int8(device: torch.device) -> bool:
    """Whether the exact ±1 GEMMs on ``device`` run as int8 × int8 → int32 (else float32)."""
    if device.type != "cpu":
        return False
    choice = requested()
    if choice != "auto":
        return choice == "int8"
    return int8_is_faster(torch.get_num_threads())


def chosen(device: torch.device) -> str:
    """The name of the kernel :func:`use_int8` picks on ``device``, for reports: "int8" or "float32"."""
    return "int8" if use_int8(device) else "float32"


# ---------------------------------------------------------------------- the int8 GEMMs themselves
def pm1_matmul_int8(y: torch.Tensor, w_int8: torch.Tensor) -> torch.Tensor:
    """y @ w for y ∈ {±1} (S, B, in) float and w ∈ {±1} (S, in, out) int8, computed with
    int8 × int8 → int32 GEMMs and returned as float32 — bit-identical to ``torch.bmm``
    (the tests pin it): the sums are integers with |z| ≤ in < 2²⁴."""
    y_int8 = y.to(torch.int8)
    out = torch.empty(y.shape[0], y.shape[1], w_int8.shape[2], dtype=torch.float32, device=y.device)
    for s in range(y.shape[0]):  # torch._int_mm is 2-D only
        out[s].copy_(torch._int_mm(y_int8[s], w_int8[s]))
    return out


def pixel_matmul_int8(x: torch.Tensor, w_int8: torch.Tensor) -> torch.Tensor:
    """(Σ(2p − 255)·s)/255 for x = p/127.5 − 1 and s = ±1: Σ(2p − 255)·s = 2·Σ(p − 128)·s + Σs
    with p − 128 an int8, so the sum is an int8 GEMM with int32 accumulation — exact, and
    |sum| ≤ 255·fan_in < 2²⁴ is a float32; one rounding remains, the division by 255. ``x``:
    (S, B, in), or (B, in) shared by every member (evaluation)."""
    centred = torch.round(x * 127.5 - 0.5).to(torch.int8)  # p − 128 (x holds p exactly)
    sums = w_int8.to(torch.int32).sum(dim=-2, keepdim=True)  # Σs per output unit, (S, 1, out)
    shared = centred.dim() == 2
    out = torch.empty(w_int8.shape[0], centred.shape[-2], w_int8.shape[2], dtype=torch.float32,
                      device=x.device)
    for s in range(w_int8.shape[0]):
        total = torch._int_mm(centred if shared else centred[s], w_int8[s]).mul_(2).add_(sums[s])
        out[s].copy_(total)
    return out.div_(255.0)
