"""Direct Feedback Alignment, one of the paper's two alternatives to BP."""

import torch

from ..trainers import TRAINERS, RandomFeedback


@TRAINERS.register("DFA")
class DFA(RandomFeedback):
    """Direct Feedback Alignment (Nøkland 2016): δy_k = e B_k."""

    role = "paper"
    colour = "#de8f05"

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        return torch.bmm(error, self.feedback[k])
