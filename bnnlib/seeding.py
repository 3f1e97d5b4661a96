"""Per-member random streams.

Every member of a model draws from its own generators, derived from (seed, purpose): its
initial weights, its feedback matrices and its shuffling of the training set come from
independent streams. So BP, DFA and DRTP with the same seed start from the same weights and
see the same batches, and a member's draws do not depend on which other members share its
model. Draws happen on the CPU and are then moved, so a seed means the same thing on any
device.
"""

from __future__ import annotations

import numpy as np
import torch

PURPOSES = ("init", "feedback", "shuffle")


def member_seed(seed: int, purpose: str) -> int:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; accepted: {', '.join(PURPOSES)}")
    sequence = np.random.SeedSequence([int(seed), PURPOSES.index(purpose)])
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def member_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one member and one purpose ("init", "feedback", "shuffle")."""
    return torch.Generator(device="cpu").manual_seed(member_seed(seed, purpose))


def uniform(shape, bound: float, generator: torch.Generator) -> torch.Tensor:
    """U(−bound, +bound) in float32 on the CPU, drawn from ``generator``."""
    return torch.rand(shape, generator=generator, dtype=torch.float32).mul_(2 * bound).sub_(bound)
