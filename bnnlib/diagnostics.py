"""Per-layer diagnostics: what each learning rule does to each layer of a binary network.

Opt-in (``--diagnostics N`` / ``execute(..., diagnostics_every=N)``): every N-th batch of an
epoch is *probed*, the others are trained exactly as without diagnostics — and so is the
probed one: the probe only reads what the step computes (:attr:`Trainer.observer`), so a run's
numbers are the same with and without it (a test pins it). Off, a step pays two ``is None``
checks (``benchmarks/train_speed.py``, section ``diagnostics``, measures it).

Measured per member and Linear layer (blocks 1 … L−1, then the output layer) and written, one
row per run × epoch × layer, to ``<results>/diagnostics.csv``:

* ``pass_fraction`` — share of the hidden block's pre-activations (after BN) with |z| < 1:
  where the sign activation's straight-through estimator lets a signal through;
* ``flip_ratio`` — share of the layer's latent weights whose sign differs between the start
  and the end of the epoch (for binary layers: the share of binary weights that flipped);
* ``update_norm`` — ‖lr · Gᵢ‖_F, the Frobenius norm of the rule's update of the layer before
  clipping, mean over probed batches; ``bp_update_norm`` — the same for BP's update at the same
  weights and batch;
* ``alignment_cosine`` — cos(Gᵢ, G_BP), the cosine between the rule's update and BP's, mean
  over probed batches, with its standard deviation and the mean angle in degrees. BP's update
  comes from a *twin*: a copy of the model at the same weights, BN state and batch, stepped by
  BP; the twin's step changes only the twin. An undefined cosine (a zero update) is NaN;
* ``weight_change_norm`` — ‖W_end − W_start‖_F over the epoch (clipping included);
* ``parameters`` — the layer's weights per member (norms over layers of different sizes compare
  as root mean squares, norm / √parameters).
"""

from __future__ import annotations

import math
from typing import Dict, List

import torch

from .checks import check_count
from .model import BinaryMLP, ForwardCache
from .trainers import Trainer, make_trainer

DIAGNOSTICS_TABLE = "diagnostics.csv"
DIAGNOSTICS_KEY = ("run_id", "epoch", "layer")
#: columns of diagnostics.csv after the key, in order
DIAGNOSTIC_FIELDS = ("layer_name", "parameters", "pass_fraction", "flip_ratio", "update_norm", "bp_update_norm",
                     "alignment_cosine", "alignment_cosine_std", "alignment_angle", "weight_change_norm",
                     "probed_batches")


def check_every(every) -> int:
    """0 (off) or a positive number of batches; anything else is one clear error."""
    return check_count("diagnostics", every, 0, "0: off; N: probe every N-th batch")


def layer_names(n_hidden: int) -> List[str]:
    return [f"block {k + 1}" for k in range(n_hidden)] + ["output"]


def pass_fraction(pre_activation: torch.Tensor) -> torch.Tensor:
    """Share of |z| < 1 per member: (S, B, n) → (S,)."""
    return (pre_activation.abs() < 1).to(torch.float64).mean(dim=(1, 2))


def flip_ratio(before_positive: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Share of weights whose sign (w > 0, the paper's sign) changed, per member: (S,)."""
    return ((weights > 0) != before_positive).to(torch.float64).mean(dim=(1, 2))


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine between two (S, m, n) stacks, per member, in float64; NaN where one is zero."""
    a, b = a.to(torch.float64).flatten(1), b.to(torch.float64).flatten(1)
    norms = a.norm(dim=1) * b.norm(dim=1)
    dot = (a * b).sum(dim=1)
    return torch.where(norms > 0, dot / norms.clamp_min(1e-300), torch.full_like(dot, float("nan")))


class _Capture:
    """A trainer observer that keeps one step's per-layer gradients Gᵢ = inputᵀ δz and the
    pre-activations' pass fractions (it computes new tensors, never writes into the step's)."""

    def __init__(self):
        self.gradients: Dict[int, torch.Tensor] = {}
        self.pass_fractions: List[torch.Tensor] = []

    def on_forward(self, cache: ForwardCache) -> None:
        self.pass_fractions = [pass_fraction(z) for z in cache.pre_activations]

    def on_update(self, k: int, layer_input: torch.Tensor, delta_z: torch.Tensor) -> None:
        self.gradients[k] = torch.bmm(layer_input.transpose(1, 2), delta_z)


def _copy_model(dst: BinaryMLP, src: BinaryMLP) -> None:
    for name in ("weights", "bn_gamma", "bn_beta", "running_mean", "running_var"):
        for d, s in zip(getattr(dst, name), getattr(src, name)):
            d.copy_(s)
    dst.bn_initialised = src.bn_initialised


class LayerProbe:
    """Probes every ``every``-th batch of a :class:`~bnnlib.training.MemberTraining`'s epochs."""

    def __init__(self, model: BinaryMLP, trainer: Trainer, every: int):
        self.model, self.trainer, self.every = model, trainer, check_every(every)
        self.twin = BinaryMLP(model.seeds, input_size=model.input_size, hidden_sizes=model.hidden_sizes,
                              n_classes=model.n_classes, activation=model.activation.name,
                              binary_weights=model.binary_weights, batch_norm=model.batch_norm,
                              init=model.init, device=model.device, pixel_inputs=model.pixel_inputs)
        self.twin_trainer = make_trainer("BP", self.twin, lr=trainer.lr_values)
        self.lr = trainer.lr.view(-1).to(torch.float64).cpu()
        self.start_epoch()

    def wants(self, batch: int) -> bool:
        return self.every > 0 and batch % self.every == 0

    def start_epoch(self) -> None:
        self.start_weights = [w.clone() for w in self.model.weights]
        self.samples: List[dict] = []

    def step(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """BP's update on the twin at the current weights, then the rule's own (observed) step."""
        _copy_model(self.twin, self.model)
        bp = _Capture()
        self.twin_trainer.observer = bp
        try:
            self.twin_trainer.step(x, targets)
        finally:
            self.twin_trainer.observer = None
        own = _Capture()
        self.trainer.observer = own
        try:
            loss = self.trainer.step(x, targets)
        finally:
            self.trainer.observer = None
        # per measure, {layer: (S,) tensor}: hidden blocks only for "pass", trained layers for the rest
        sample = {"pass": {k: p.cpu() for k, p in enumerate(own.pass_fractions)}, "norm": {}, "bp_norm": {},
                  "cos": {}}
        for k, g_bp in bp.gradients.items():
            sample["bp_norm"][k] = g_bp.to(torch.float64).flatten(1).norm(dim=1).cpu() * self.lr
            g = own.gradients.get(k)
            if g is None:  # a layer the rule does not train (SHALLOW's hidden blocks)
                sample["norm"][k] = torch.zeros_like(sample["bp_norm"][k])
                sample["cos"][k] = torch.full_like(sample["bp_norm"][k], float("nan"))
            else:
                sample["norm"][k] = g.to(torch.float64).flatten(1).norm(dim=1).cpu() * self.lr
                sample["cos"][k] = cosine(g, g_bp).cpu()
        self.samples.append(sample)
        return loss

    def end_epoch(self) -> List[List[dict]]:
        """Per member, one dict per layer: the epoch's measurements (then a new epoch starts)."""
        names = layer_names(self.model.n_hidden)
        n_layers, S = len(names), self.model.n_members
        out: List[List[dict]] = [[] for _ in range(S)]
        for k in range(n_layers):
            weights = self.model.weights[k]
            flips = flip_ratio(self.start_weights[k] > 0, weights).cpu()
            change = (weights - self.start_weights[k]).to(torch.float64).flatten(1).norm(dim=1).cpu()

            def stack(part):  # (probed batches, S), or None where layer k has no such measure
                rows = [sample[part][k] for sample in self.samples if k in sample[part]]
                return torch.stack(rows) if rows else None

            passes, norms, bp_norms, cosines = stack("pass"), stack("norm"), stack("bp_norm"), stack("cos")
            for s in range(S):
                row = {"layer": k + 1, "layer_name": names[k], "parameters": int(weights[s].numel()),
                       "flip_ratio": float(flips[s]),
                       "weight_change_norm": float(change[s]), "probed_batches": len(self.samples)}
                row["pass_fraction"] = float(passes[:, s].mean()) if passes is not None else math.nan
                row["update_norm"] = float(norms[:, s].mean()) if norms is not None else math.nan
                row["bp_update_norm"] = float(bp_norms[:, s].mean()) if bp_norms is not None else math.nan
                if cosines is not None and bool(torch.isfinite(cosines[:, s]).any()):
                    c = cosines[:, s][torch.isfinite(cosines[:, s])]
                    row["alignment_cosine"] = float(c.mean())
                    row["alignment_cosine_std"] = float(c.std(unbiased=False))
                    row["alignment_angle"] = float(torch.rad2deg(torch.arccos(c.clamp(-1, 1))).mean())
                else:
                    row.update(alignment_cosine=math.nan, alignment_cosine_std=math.nan, alignment_angle=math.nan)
                out[s].append({"layer": row["layer"], **{name: row[name] for name in DIAGNOSTIC_FIELDS}})
        self.start_epoch()
        return out
