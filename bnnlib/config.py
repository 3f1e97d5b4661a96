"""A run is data: a validated, hashable description of one training run.

``RunConfig`` holds everything that defines a run's numbers. Its ``run_id`` is a hash of
those fields, so the same run is recognised across sessions, machines and sweeps. Two
fields are deliberately *not* in the id:

* ``epochs`` — a run's first E epochs do not depend on how many follow (same seed, same
  shuffles), so a 100-epoch run extends a 20-epoch one instead of starting over;
* ``device`` — where it runs is recorded in the run's metadata, not part of its identity.

Runs whose structure matches (:meth:`RunConfig.group_key`: same dataset, algorithm,
weights, activation, BN, batch size and data subset) can be trained together as members of
one :class:`~bnnlib.model.BinaryMLP`; their seeds, init scales and learning rates differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real
from typing import Optional

from .binarize import ACTIVATIONS
from .data import DATASETS
from .trainers import TRAINERS

WEIGHTS = ("continuous", "binary")
DEVICES = ("cpu", "cuda")
IDENTITY_FIELDS = ("dataset", "algorithm", "weights", "activation", "batch_norm", "init", "lr",
                   "batch_size", "seed", "n_train", "n_test")
GROUP_FIELDS = ("dataset", "algorithm", "weights", "activation", "batch_norm", "batch_size", "n_train", "n_test")


def _choice(name, value, accepted):
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not accepted; accepted: {', '.join(map(str, accepted))}")


def _positive(name, value, kind=Real, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, kind) or isinstance(value, bool) or not value > 0 or value != value \
            or value == float("inf"):
        what = "a positive integer" if kind is Integral else "a finite number > 0"
        raise ValueError(f"{name}={value!r} is not accepted; accepted: {what}" +
                         (" or None (the full set)" if allow_none else ""))


def _about(help_text: str, choices=None, cli: bool = True) -> dict:
    """A field's metadata: its help, its accepted values (a callable: registries fill up at
    import), and whether ``python -m bnnlib run`` takes it. The CLI is generated from these."""
    return {"help": help_text, "choices": choices, "cli": cli}


@dataclass(frozen=True)
class RunConfig:
    dataset: str = field(metadata=_about("dataset", lambda: DATASETS))
    algorithm: str = field(metadata=_about("learning rule (SHALLOW: a control that trains only the output layer)",
                                           lambda: TRAINERS.names()))
    weights: str = field(default="continuous", metadata=_about("hidden weights", lambda: WEIGHTS))
    activation: str = field(default="tanh", metadata=_about("hidden activation", lambda: ACTIVATIONS.names()))
    batch_norm: bool = field(default=False, metadata=_about("batch normalisation after each hidden Linear"))
    init: float = field(default=0.1, metadata=_about("initial weights ~ U(-init, init)"))
    lr: float = field(default=1e-4, metadata=_about("learning rate"))
    epochs: int = field(default=100, metadata=_about("epochs; the paper trains 100"))
    batch_size: int = field(default=128, metadata=_about("batch size; the paper uses 128"))
    seed: int = field(default=1, metadata=_about("seed of initial weights, feedback matrices and shuffling"))
    # first n training samples (smoke budgets); None = all
    n_train: Optional[int] = field(default=None, metadata=_about("use only the first N training samples"))
    n_test: Optional[int] = field(default=None, metadata=_about("use only the first N test samples"))
    device: str = field(default="cpu", metadata=_about("cpu, cuda or cuda:N", cli=False))  # an execution option

    def __post_init__(self):
        _choice("dataset", self.dataset, DATASETS)
        _choice("algorithm", self.algorithm, TRAINERS.names())
        _choice("weights", self.weights, WEIGHTS)
        _choice("activation", self.activation, ACTIVATIONS.names())
        if not isinstance(self.batch_norm, bool):  # 0 == False: a 0 in a sweep file is a typo, not "off"
            raise ValueError(f"batch_norm={self.batch_norm!r} is not accepted; accepted: True, False")
        _positive("init", self.init)
        _positive("lr", self.lr)
        _positive("epochs", self.epochs, Integral)
        _positive("batch_size", self.batch_size, Integral)
        _positive("n_train", self.n_train, Integral, allow_none=True)
        _positive("n_test", self.n_test, Integral, allow_none=True)
        if self.n_train is not None and self.n_train < self.batch_size:
            raise ValueError(f"n_train={self.n_train!r} is not accepted; accepted: None (the full set) or at least "
                             f"one batch (batch_size={self.batch_size}): the last incomplete batch is dropped")
        if not isinstance(self.seed, Integral) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is not accepted; accepted: an integer ≥ 0")
        device = str(self.device)
        if device.split(":")[0] not in DEVICES:
            raise ValueError(f"device={self.device!r} is not accepted; accepted: cpu, cuda, cuda:N")
        # normalise numbers so 1e-4 and 0.0001, or 1 and 1.0, give the same id
        object.__setattr__(self, "init", float(self.init))
        object.__setattr__(self, "lr", float(self.lr))

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown run field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}")
        return cls(**values)

    def identity(self) -> dict:
        return {name: getattr(self, name) for name in IDENTITY_FIELDS}

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def group_key(self) -> tuple:
        return tuple(getattr(self, name) for name in GROUP_FIELDS)

    @property
    def binary_weights(self) -> bool:
        return self.weights == "binary"

    def as_dict(self) -> dict:
        return asdict(self)
