"""Backpropagation, the paper's reference rule."""

import torch

from ..trainers import TRAINERS, Trainer


@TRAINERS.register("BP")
class BP(Trainer):
    """Backpropagation: δy_k = δz_{k+1} W_{k+1}ᵀ, through sign(W_{k+1}) for binary layers."""

    role = "paper"
    colour = "#0173b2"

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        return torch.bmm(delta_z_above, cache.effective_weights[k + 1].transpose(1, 2))
