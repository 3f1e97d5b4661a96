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
from typing import Optional

from .binarize import ACTIVATIONS
from .checks import check_choice, check_count, check_positive, reject
from .data import DATASETS
from .trainers import TRAINERS

WEIGHTS = ("continuous", "binary")
#: how a yes/no run field is spelled on the command line and in the book (YAML sweeps read the same words)
SWITCH = {"off": False, "on": True}
DEVICES = ("cpu", "cuda")
#: how each epoch's test set is evaluated: "standard" (BN from the running statistics the training
#: batches left; every record of record) or "paper-code", the original code's order — its per-epoch
#: HSIC measurement runs the first 2000 training images through the network in training mode
#: between the train and test evaluations, which moves BN's running statistics (momentum 0.1)
#: before the test set is seen (the original's utils/hsic.py, called from train.py). Training is
#: the same either way; only a test evaluation with BN can differ.
EVALUATIONS = ("standard", "paper-code")
#: a field added after runs were recorded joins a run's identity only where it differs from its
#: default, so the ids of every recorded run stay what they were
LATER_IDENTITY_FIELDS = {"evaluation": "standard"}
IDENTITY_FIELDS = ("dataset", "algorithm", "weights", "activation", "batch_norm", "init", "lr",
                   "batch_size", "seed", "n_train", "n_test")
GROUP_FIELDS = ("dataset", "algorithm", "weights", "activation", "batch_norm", "batch_size", "n_train", "n_test")


def switch_word(value: bool) -> str:
    """``True`` → "on", ``False`` → "off" (the word SWITCH maps to that value)."""
    return next(word for word, meaning in SWITCH.items() if meaning is bool(value))


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
    batch_norm: bool = field(default=False, metadata=_about("batch normalisation after each hidden Linear",
                                                            lambda: SWITCH))
    init: float = field(default=0.1, metadata=_about("initial weights ~ U(-init, init)"))
    lr: float = field(default=1e-4, metadata=_about("learning rate"))
    epochs: int = field(default=100, metadata=_about("epochs; the paper trains 100"))
    batch_size: int = field(default=128, metadata=_about("batch size; the paper uses 128"))
    seed: int = field(default=1, metadata=_about("seed of initial weights, feedback matrices and shuffling"))
    # first n training samples (smoke budgets); None = all
    n_train: Optional[int] = field(default=None, metadata=_about("use only the first N training samples"))
    n_test: Optional[int] = field(default=None, metadata=_about("use only the first N test samples"))
    evaluation: str = field(default="standard", metadata=_about(
        "test evaluation: standard, or paper-code (the original code's BN-moving pass over the first 2000 "
        "training images before each test evaluation; opt-in, for measuring that difference)", lambda: EVALUATIONS))
    device: str = field(default="cpu", metadata=_about("cpu, cuda or cuda:N", cli=False))  # an execution option

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("algorithm", self.algorithm, TRAINERS.names())
        check_choice("weights", self.weights, WEIGHTS)
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("evaluation", self.evaluation, EVALUATIONS)
        if not isinstance(self.batch_norm, bool):  # 0 == False: a 0 in a sweep file is a typo, not "off"
            raise reject("batch_norm", self.batch_norm, "True, False")
        check_positive("init", self.init)
        check_positive("lr", self.lr)
        check_positive("epochs", self.epochs, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("n_train", self.n_train, integer=True, allow_none=True)
        check_positive("n_test", self.n_test, integer=True, allow_none=True)
        if self.n_train is not None and self.n_train < self.batch_size:
            raise reject("n_train", self.n_train, f"None (the full set) or at least one batch "
                         f"(batch_size={self.batch_size}): the last incomplete batch is dropped")
        check_count("seed", self.seed, 0)
        if str(self.device).split(":")[0] not in DEVICES:
            raise reject("device", self.device, "cpu, cuda, cuda:N")
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
        """The fields that define the run's numbers (the run id hashes them)."""
        later = {name: getattr(self, name) for name, default in LATER_IDENTITY_FIELDS.items()
                 if getattr(self, name) != default}
        return {**{name: getattr(self, name) for name in IDENTITY_FIELDS}, **later}

    @property
    def run_id(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def group_key(self) -> tuple:
        return tuple(getattr(self, name) for name in GROUP_FIELDS + ("evaluation",))

    @property
    def binary_weights(self) -> bool:
        return self.weights == "binary"

    def as_dict(self) -> dict:
        return asdict(self)
