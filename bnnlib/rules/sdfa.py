"""Sign-DFA (SDFA), our extension: DFA whose feedback path is binary too.

δy_k = e sign(B_k), with B_k DFA's own fixed random matrix (the same draw, so SDFA and DFA of
one seed differ only by the sign): the feedback is ±1, as the binary feedback of Han & Yoo
(2019), so a binary network's learning signal needs no multiplication either. Whether the
magnitudes of DFA's feedback matter is what comparing the two answers.
"""

import torch

from ..model import BinaryMLP, FloatOrPerMember
from ..trainers import TRAINERS, RandomFeedback


@TRAINERS.register("SDFA")
class SDFA(RandomFeedback):
    """Sign-DFA: δy_k = e sign(B_k), sign(b) = +1 for b > 0 else −1 (the paper's sign)."""

    role = "extension"
    colour = "#cc78bc"

    def __init__(self, model: BinaryMLP, lr: FloatOrPerMember):
        super().__init__(model, lr)
        self.feedback = [torch.where(b > 0, 1.0, -1.0).to(b.dtype) for b in self.feedback]

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        return torch.bmm(error, self.feedback[k])
