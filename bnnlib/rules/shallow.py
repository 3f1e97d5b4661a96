"""SHALLOW, our control: the output layer trained alone on the network's random hidden features."""

from ..trainers import TRAINERS, Trainer


@TRAINERS.register("SHALLOW")
class SHALLOW(Trainer):
    """Control: only the output layer learns (its true gradient, as in every rule); the hidden
    blocks, BN's γ and β included, keep their initial values. Its result is what a network's
    random binary features give by themselves."""

    role = "control"
    colour = (0.45, 0.45, 0.45)
    trains_hidden = False

    def hidden_signal(self, k, delta_z_above, cache, error, onehot):
        # Trainer.step never asks (trains_hidden is False); a caller that does gets told why
        raise NotImplementedError("SHALLOW trains the output layer only and has no hidden signal: its hidden "
                                  "blocks keep their initial weights (trains_hidden is False)")
