"""Feedback Alignment (FA), our extension — and the worked example of adding a rule.

A rule is a :class:`~bnnlib.trainers.Trainer` subclass registered by name, with a role and a
colour, that says where hidden block k's learning signal δy_k comes from; the shared step
(forward pass, output layer's true gradient, each block's STE and BN backward, SGD, clipping)
is the Trainer's. Put it in a module of ``bnnlib/rules/`` and it is a rule everywhere — ``run
--algorithm FA``, sweeps, ``protocol --algorithm FA``, ``status``, the results tables — with its
tests beside the others' (``tests/test_rules_extensions.py``).

FA (Lillicrap et al. 2016) is BP with the transposed forward weights replaced by fixed random
matrices of the same shape: δy_k = δz_{k+1} B_{k+1}ᵀ, B_{k+1} ~ U(−1, 1) with W_{k+1}'s shape,
drawn once per member (seed purpose "feedback", as DFA's). The signal still flows block by block
from the output down, as in BP; only the weights it flows through are not the forward ones.
With B_{k+1} set to the weights the forward pass used, an FA step is a BP step, bit for bit.
"""

from typing import List

import torch

from ..model import BinaryMLP, FloatOrPerMember
from ..seeding import member_generator, uniform
from ..trainers import TRAINERS, Trainer


@TRAINERS.register("FA")
class FA(Trainer):
    """Feedback Alignment: δy_k = δz_{k+1} B_{k+1}ᵀ, B_{k+1} fixed random, W_{k+1}'s shape."""

    role = "extension"
    colour = "#d55e00"

    def __init__(self, model: BinaryMLP, lr: FloatOrPerMember):
        super().__init__(model, lr)
        shapes = [tuple(w.shape[1:]) for w in model.weights]
        per_layer: List[List[torch.Tensor]] = [[] for _ in shapes]
        for seed in model.seeds:
            generator = member_generator(seed, "feedback")
            for k, shape in enumerate(shapes[1:], start=1):  # layer 0 passes no signal further down
                per_layer[k].append(uniform(shape, 1.0, generator))
        #: B_k for the Linear layers 1 … L (index 0 unused), each (S, n_in, n_out) as W_k
        self.feedback = [None] + [torch.stack(bs).to(model.device) for bs in per_layer[1:]]

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        return torch.bmm(delta_z_above, self.feedback[k + 1].transpose(1, 2))

    def state_dict(self) -> dict:
        return {"feedback": [b.cpu().clone() for b in self.feedback[1:]]}

    def load_state_dict(self, state: dict) -> None:
        for dst, src in zip(self.feedback[1:], state["feedback"]):
            dst.copy_(src)
