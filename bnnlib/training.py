"""Epochs: per-member shuffling, the batch loop, and evaluation on full splits.

:class:`MemberTraining` couples a model, its trainer and one shuffling generator per member
(``member_generator(seed, "shuffle")``). Each epoch every member draws its own permutation
of the training set, the last incomplete batch is dropped (as in the paper's protocol), and the members
step together. Its state (model, trainer, generators, epoch) round-trips through
``state_dict`` so an interrupted run resumes bit-identically.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from .checks import check_choice, check_positive
from .config import EVALUATIONS
from .cores import CoreShare
from .data import Dataset
from .diagnostics import LayerProbe
from .metrics import evaluate
from .model import BinaryMLP
from .seeding import member_generator
from .trainers import Trainer

PAPER_BATCH_SIZE = 128
#: the original code's HSIC measurement uses the first 2000 training images (utils/hsic.py's row limit)
PAPER_CODE_PASS_IMAGES = 2000


class MemberTraining:
    def __init__(self, model: BinaryMLP, trainer: Trainer, batch_size: int = PAPER_BATCH_SIZE,
                 evaluation: str = "standard"):
        check_positive("batch_size", batch_size, integer=True)
        check_choice("evaluation", evaluation, EVALUATIONS)
        self.model, self.trainer, self.batch_size = model, trainer, batch_size
        #: "paper-code": the original code's BN-moving pass before each test evaluation (RunConfig.evaluation)
        self.evaluation = evaluation
        self.shufflers = [member_generator(seed, "shuffle") for seed in model.seeds]
        self.epochs_done = 0
        #: per-layer diagnostics (:mod:`bnnlib.diagnostics`), None unless asked for
        self.probe: Optional[LayerProbe] = None
        #: the thread count follows the cores the machine leaves free (:mod:`bnnlib.cores`), None: fixed
        self.cores: Optional[CoreShare] = None

    def enable_diagnostics(self, every: int) -> None:
        """Probe every ``every``-th batch of each epoch (0: off); read with ``probe.end_epoch()``."""
        self.probe = LayerProbe(self.model, self.trainer, every) if every else None

    def permutations(self, n: int) -> torch.Tensor:
        """(S, n) — one permutation of the training set per member, from its own stream."""
        return torch.stack([torch.randperm(n, generator=g) for g in self.shufflers])

    def train_epoch(self, dataset: Dataset, progress=None) -> torch.Tensor:
        """One epoch; returns each member's mean batch loss, (S,) float64 on the CPU."""
        device = self.model.device
        x_all = dataset.x_train.to(device)
        targets_all = dataset.targets(dataset.labels_train).to(device)
        n = x_all.shape[0]
        n_batches = n // self.batch_size
        if n_batches == 0:
            raise ValueError(f"the training set has {n} samples, fewer than one batch of {self.batch_size}")
        if self.evaluation == "paper-code" and self.epochs_done == 0:
            self.paper_code_pass(dataset)  # the original measures HSIC once before training too
        order = self.permutations(n).to(device)
        loss_sum = torch.zeros(self.model.n_members, dtype=torch.float64, device=device)
        probe, cores = self.probe, self.cores
        if probe is not None:
            probe.start_epoch()
        for b in range(n_batches):
            if cores is not None:
                cores.tick()
            index = order[:, b * self.batch_size:(b + 1) * self.batch_size]
            step = probe.step if probe is not None and probe.wants(b) else self.trainer.step
            loss_sum += step(x_all[index], targets_all[index])
            if progress is not None:
                progress.update(1)
        self.epochs_done += 1
        return (loss_sum / n_batches).cpu()

    def evaluate(self, dataset: Dataset, batch_size: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Accuracy, precision and F1 per member on the full train and test sets.

        Keys ``train_accuracy``, ``test_accuracy``, ``train_precision``, …; values (S,). With the
        paper-code evaluation also ``standard_test_accuracy``, … : the test set evaluated before the
        pass, as every other run is.
        """
        out = {}
        for split, x, labels in (("train", dataset.x_train, dataset.labels_train),
                                 ("test", dataset.x_test, dataset.labels_test)):
            if self.cores is not None:
                self.cores.tick()
            if split == "test" and self.evaluation == "paper-code":
                # the standard evaluation first, so one run holds both: their difference is the pass's
                for metric, values in evaluate(self.model, x, labels, batch_size).items():
                    out[f"standard_test_{metric}"] = values.cpu()
                self.paper_code_pass(dataset)
            for metric, values in evaluate(self.model, x, labels, batch_size).items():
                out[f"{split}_{metric}"] = values.cpu()
        return out

    @torch.no_grad()
    def paper_code_pass(self, dataset: Dataset) -> None:
        """The original code's HSIC measurement as it touches the network: the first 2000
        training images (in the file's order) through every layer in training mode, one batch,
        so each BN layer's running statistics move to 0.9 · running + 0.1 · that batch's (or,
        before any training batch, are set to them). No weight changes; without BN, nothing does."""
        self.model.forward_train(dataset.x_train[:PAPER_CODE_PASS_IMAGES].to(self.model.device))

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "trainer": self.trainer.state_dict(),
            "shufflers": [g.get_state() for g in self.shufflers],
            "epochs_done": self.epochs_done,
        }

    # ------------------------------------------------------------------ per-member states
    # Every tensor of the model's and the trainer's states that comes in a list carries the member
    # axis first (weights, BN parameters and statistics, feedback matrices): a member's state is
    # its slice of each, its shuffling generator and the epoch. Checkpoints hold member states,
    # so runs trained in different groups (or alone) resume anywhere.
    def member_state(self, s: int, state: Optional[dict] = None) -> dict:
        """Member s's resumable state (from ``state``, a :meth:`state_dict`, or the current one)."""
        state = state if state is not None else self.state_dict()

        def cut(value):
            if isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                return [t[s].clone() for t in value]
            if isinstance(value, dict):
                return {k: cut(v) for k, v in value.items()}
            return value
        return {"model": cut(state["model"]), "trainer": cut(state["trainer"]),
                "shuffler": state["shufflers"][s], "epochs_done": state["epochs_done"]}

    def load_member_states(self, member_states) -> None:
        """Load one state per member (None keeps that member as initialised); all at one epoch."""
        if all(m is None for m in member_states):
            return
        full = self.state_dict()
        for s, member in enumerate(member_states):
            if member is None:
                continue
            for part in ("model", "trainer"):
                for name, tensors in member[part].items():
                    if isinstance(tensors, list):
                        for i, t in enumerate(tensors):
                            full[part][name][i][s] = t
                    else:
                        full[part][name] = tensors
            full["shufflers"][s] = member["shuffler"]
            full["epochs_done"] = member["epochs_done"]
        self.load_state_dict(full)

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.trainer.load_state_dict(state["trainer"])
        for g, s in zip(self.shufflers, state["shufflers"]):
            g.set_state(s)
        self.epochs_done = int(state["epochs_done"])
