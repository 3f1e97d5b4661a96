"""Direct Random Target Projection, one of the paper's two alternatives to BP."""

import torch

from ..trainers import TRAINERS, RandomFeedback


@TRAINERS.register("DRTP")
class DRTP(RandomFeedback):
    """Direct Random Target Projection (Frenkel et al. 2021): δy_k = t B_k, t ∈ {0, 1} one-hot."""

    role = "paper"
    colour = "#029e73"

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        return torch.bmm(onehot, self.feedback[k])
