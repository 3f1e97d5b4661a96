"""The learning rules as peers: backpropagation (BP), Direct Feedback Alignment (DFA),
Direct Random Target Projection (DRTP) — the paper's three —, SHALLOW, a control, and our
extensions (FA, SDFA). Each rule is one module of :mod:`bnnlib.rules`; this module holds what
they share and the registry they join.

They share everything but one line — where hidden block k's learning signal δy_k comes
from — so :class:`Trainer` writes the shared part once (the paper's protocol; Methods chapter):

* forward pass; J = mean over batch and outputs of (ŷ − y*)²; error e = 2(ŷ − y*), not
  divided by the batch size, so weight gradients are sums over the batch;
* output layer: its true gradient δz_L = e ⊙ tanh′(z_L), for all three algorithms;
* hidden block k: δz_k from δy_k through its own activation derivative/STE and BN;
* plain SGD, W_k ← W_k − lr · y_{k−1}ᵀ δz_k, every Linear weight clipped to [−1, 1];

and each subclass gives :meth:`Trainer.hidden_signal`:

* BP: δy_k = δz_{k+1} W_{k+1}ᵀ (sign(W_{k+1}) for binary layers);
* DFA: δy_k = e B_k, B_k ∈ R^{classes × n_k} ~ U(−1, 1) fixed per member;
* DRTP: δy_k = t B_k with t the one-hot target in {0, 1};
* SHALLOW: no signal at all — only the output layer learns, the hidden blocks keep their
  initial weights (the DRTP reference code's "shallow" baseline): a rule whose result is no
  better than SHALLOW's has not trained its hidden layers.

In DFA and DRTP nothing flows between hidden blocks and no backward chain is computed.

**Adding a learning rule** takes one file, ``bnnlib/rules/<name>.py``, with a :class:`Trainer`
subclass registered by name that gives ``hidden_signal``, its ``role`` ("paper", "control" or
"extension") and its ``colour`` on figures (``bnnlib/rules/fa.py`` is a worked example).
Every module of :mod:`bnnlib.rules` is imported with this one, so the rule is at once a
choice of ``run --algorithm``, of sweeps and of ``protocol --algorithm``, counted by ``status``
and shown in the results tables as an extension — never in the paper's claims.
All expose ``step(x, targets) -> loss per member``. ``observer`` (None in every protocol run)
lets :mod:`bnnlib.diagnostics` see a step's forward pass and per-layer updates without
changing any number.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from .model import BinaryMLP, ForwardCache, FloatOrPerMember, per_member
from .registry import Registry
from .seeding import member_generator, uniform

TRAINERS: Registry[type] = Registry("trainer")
#: what a rule is to the book, in table order: the paper's rules, our controls, our extensions
ROLES = ("paper", "control", "extension")


class Trainer:
    """Shared training step; subclasses say where each hidden block's signal comes from."""

    name = ""  # set by TRAINERS.register
    #: one of ROLES: decides where the book shows the rule (the paper's claims: "paper" only)
    role = ""
    #: its colour on every figure (any matplotlib colour)
    colour = None
    #: False for a rule that trains the output layer only (SHALLOW)
    trains_hidden = True
    #: diagnostics hook: ``on_forward(cache)`` and ``on_update(k, layer_input, delta_z)``; it
    #: must not modify what it is shown (the step's numbers stay those of an unobserved step)
    observer = None

    def __init__(self, model: BinaryMLP, lr: FloatOrPerMember):
        if not isinstance(model, BinaryMLP):
            raise ValueError(f"model must be a BinaryMLP, got {type(model).__name__}")
        self.model = model
        self.lr_values = per_member(lr, model.n_members, "lr")
        self.lr = torch.tensor(self.lr_values, device=model.device).view(-1, 1, 1)

    # ------------------------------------------------------------------ to override
    def hidden_signal(self, k: int, delta_z_above: torch.Tensor, cache: ForwardCache,
                      error: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """δy_k for hidden block k, given δz of the Linear layer above it (k + 1)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared part
    def check_batch(self, x: torch.Tensor, targets: torch.Tensor):
        """Validate shapes and values before any compute; returns (S, B, ·) tensors."""
        model, S = self.model, self.model.n_members
        if not isinstance(x, torch.Tensor) or not isinstance(targets, torch.Tensor):
            raise ValueError("x and targets must be torch tensors")
        x_shape, targets_shape = tuple(x.shape), tuple(targets.shape)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(S, -1, -1)
        if targets.dim() == 2:
            targets = targets.unsqueeze(0).expand(S, -1, -1)
        expected_x = f"(batch, {model.input_size}) or ({S}, batch, {model.input_size})"
        if x.dim() != 3 or x.shape[0] != S or x.shape[2] != model.input_size:
            raise ValueError(f"x has shape {x_shape}; expected {expected_x}")
        if targets.dim() != 3 or targets.shape[0] != S or targets.shape[2] != model.n_classes:
            raise ValueError(f"targets has shape {targets_shape}; expected "
                             f"(batch, {model.n_classes}) or ({S}, batch, {model.n_classes})")
        if targets.shape[1] != x.shape[1]:
            raise ValueError(f"targets hold {targets.shape[1]} samples but x holds {x.shape[1]}")
        if x.shape[1] == 0:
            raise ValueError("empty batch")
        # one reduction instead of an elementwise isfinite pass (a NaN or inf propagates to
        # the sum); only a failing batch pays for locating the culprit
        if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or infinite values")
        if not bool(((targets == 1) | (targets == -1)).all()):
            raise ValueError("targets must be ±1 vectors (one-hot × 2 − 1)")
        return x, targets

    @torch.no_grad()
    def step(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One SGD step on a batch; returns the loss J of each member, shape (S,)."""
        x, targets = self.check_batch(x, targets)
        model = self.model
        cache = model.forward_train(x)
        if self.observer is not None:
            self.observer.on_forward(cache)
        output = cache.output
        difference = output - targets
        loss = difference.square().mean(dim=(1, 2))
        error = difference.mul_(2.0)  # e = 2(ŷ − y*), a batch sum follows: no 1/B
        # output layer: its true gradient e ⊙ (1 − ŷ²), as e − e·ŷ·ŷ in one fused pass
        delta_z = torch.addcmul(error, error * output, output, value=-1.0)
        onehot = (targets + 1.0).mul_(0.5)
        lowest = 0 if self.trains_hidden else model.n_hidden
        for k in range(model.n_hidden, lowest - 1, -1):  # Linear layers, output first
            if k > lowest:  # the signal for the hidden block below, computed before W_k moves
                delta_y = self.hidden_signal(k - 1, delta_z, cache, error, onehot)
            self._sgd_update(k, cache.inputs[k], delta_z)
            if k > lowest:
                delta_z, grad_gamma, grad_beta = model.block_backward(k - 1, cache, delta_y)
                if grad_gamma is not None:  # BN's γ and β: plain SGD, not clipped
                    model.bn_gamma[k - 1].sub_(grad_gamma.mul_(self.lr))
                    model.bn_beta[k - 1].sub_(grad_beta.mul_(self.lr))
        return loss

    def _sgd_update(self, k: int, layer_input: torch.Tensor, delta_z: torch.Tensor) -> None:
        # W ← clip(W − lr · inputᵀ δz): scaling δz (batch × out) is cheaper than the gradient
        if self.observer is not None:
            self.observer.on_update(k, layer_input, delta_z)
        model = self.model
        weight = model.weights[k]
        binariser = model.hidden_binariser if k < model.n_hidden else None
        if binariser is None or binariser.identity_ste:  # the gradient reaches W unchanged: one GEMM
            weight.baddbmm_(layer_input.transpose(1, 2), delta_z.mul_(self.lr), alpha=-1.0)
        else:  # the binariser's own STE maps the gradient for sign(W) to the latent W
            grad = torch.bmm(layer_input.transpose(1, 2), delta_z)
            weight.sub_(binariser.backward(weight, model.effective_weight(k), grad).mul_(self.lr))
        weight.clamp_(-1.0, 1.0)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class RandomFeedback(Trainer):
    """Fixed random matrices B_k ~ U(−1, 1) of shape (classes, n_k), one set per member (seed
    purpose "feedback"): shared by DFA, DRTP and SDFA."""

    def __init__(self, model: BinaryMLP, lr: FloatOrPerMember):
        super().__init__(model, lr)
        per_block: List[List[torch.Tensor]] = [[] for _ in model.hidden_sizes]
        for seed in model.seeds:
            generator = member_generator(seed, "feedback")
            for k, n in enumerate(model.hidden_sizes):
                per_block[k].append(uniform((model.n_classes, n), 1.0, generator))
        #: B_k, one (S, classes, n_k) tensor per hidden block
        self.feedback = [torch.stack(bs).to(model.device) for bs in per_block]

    def state_dict(self) -> dict:
        return {"feedback": [b.cpu().clone() for b in self.feedback]}

    def load_state_dict(self, state: dict) -> None:
        for dst, src in zip(self.feedback, state["feedback"]):
            dst.copy_(src)


def make_trainer(name: str, model: BinaryMLP, lr: FloatOrPerMember) -> Trainer:
    """``make_trainer("DFA", model, lr=1e-4)`` (any registered rule); unknown names raise a ValueError listing the accepted."""
    return TRAINERS.get(name)(model, lr)


def rules(role: Optional[str] = None) -> Tuple[str, ...]:
    """The registered rules of one role (None: all), in table order: by role as ROLES, then by
    name. A rule whose role is not one of ROLES is refused here, naming it."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown rule role {role!r}; accepted: {', '.join(ROLES)}")
    by_role = []
    for name in TRAINERS.names():
        trainer = TRAINERS.get(name)
        if trainer.role not in ROLES:
            raise ValueError(f"rule {name} ({trainer.__module__}) has role {trainer.role!r}; accepted: "
                             f"{', '.join(ROLES)}")
        by_role.append((ROLES.index(trainer.role), name))
    return tuple(name for rank, name in sorted(by_role) if role is None or ROLES[rank] == role)


def rule_colours() -> dict:
    """rule → its colour, for every registered rule."""
    return {name: TRAINERS.get(name).colour for name in rules()}


# every rule of bnnlib.rules registers itself on import (after the names above exist)
from . import rules as _rules  # noqa: E402,F401
