"""The paper's multilayer perceptron, with a leading *member* axis.

One :class:`BinaryMLP` holds S ≥ 1 independent networks ("members") stacked on a leading
dimension: every weight has shape (S, fan_in, fan_out) and every activation (S, batch,
features), and all layers are computed with batched matmuls. A single run is S = 1 through
the same code. Members never mix: each has its own seed, init scale and learning rate.

Architecture (the paper's protocol, as the Methods chapter states it): no biases; hidden blocks Linear → (BN) → activation, default
700, 500, 300, 200 units; output Linear → tanh. With binary weights the hidden Linear layers
compute with sign(W) and the latent W is what is updated; the output layer stays real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import List, Optional, Sequence, Union

import torch

from . import kernels
from .binarize import ACTIVATIONS, WEIGHT_BINARISERS, tanh
from .checks import check_positive, reject
from .seeding import member_generator, uniform

PAPER_HIDDEN_SIZES = (700, 500, 300, 200)
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # running ← (1 − momentum)·running + momentum·batch

#: Version of the training arithmetic: bumped whenever a change alters any recorded number, so
#: that every run records which arithmetic produced it (one budget, one arithmetic).
#: 1 — BN batch statistics by torch.var_mean (Welford); 2 — by two passes (mean, then the mean
#: of squared deviations), as NumPy and the paper's original code compute them, 9× faster here;
#: 3 — with binary weights and pixel inputs, the first layer's sums are exact: x = (2p − 255)/255,
#: so x·sign(W) is computed as (Σ(2p − 255)·s)/255 with integer sums, instead of a float32 sum
#: of rounded x whose rounding decided the sign of pre-activations that are exactly 0.
ARITHMETIC_VERSION = 3

FloatOrPerMember = Union[float, Sequence[float]]


def per_member(value: FloatOrPerMember, n_members: int, name: str) -> List[float]:
    """Broadcast a scalar to every member, or check a per-member sequence; must be > 0."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    values = [value] * n_members if isinstance(value, Real) else list(value)
    if len(values) != n_members:
        raise ValueError(f"{name} has {len(values)} values for {n_members} members; "
                         f"give one value or one per member")
    return [float(check_positive(name, v)) for v in values]


def check_sizes(name: str, sizes: Sequence[int], allow_empty: bool = False) -> tuple:
    sizes = tuple(sizes) if not isinstance(sizes, Integral) else (sizes,)
    if not sizes and not allow_empty:
        raise reject(name, sizes, f"positive integers, e.g. {PAPER_HIDDEN_SIZES}")
    for s in sizes:
        if not isinstance(s, Integral) or isinstance(s, bool) or s <= 0:
            raise reject(name, sizes, f"positive integers, e.g. {PAPER_HIDDEN_SIZES}")
    return tuple(int(s) for s in sizes)


@dataclass
class ForwardCache:
    """What the trainers need from a training-mode forward pass.

    ``inputs[k]`` is the input of Linear layer k (``inputs[0]`` is x, ``inputs[k+1]`` is the
    output y_k of hidden block k); ``effective_weights[k]`` the weights layer k computed with
    (sign(W) for binary layers); ``pre_activations[k]`` block k's activation input (after BN);
    ``normalised[k]`` and ``inv_std[k]`` BN's x̂ and 1/√(σ²+ε) (None without BN).
    """

    inputs: List[torch.Tensor] = field(default_factory=list)
    effective_weights: List[torch.Tensor] = field(default_factory=list)
    pre_activations: List[torch.Tensor] = field(default_factory=list)
    normalised: List[Optional[torch.Tensor]] = field(default_factory=list)
    inv_std: List[Optional[torch.Tensor]] = field(default_factory=list)
    output: Optional[torch.Tensor] = None


class BinaryMLP:
    """S independent copies of the paper's MLP, trained by the trainers in :mod:`bnnlib.trainers`.

    Parameters
    ----------
    seeds: one integer per member; its initial weights come from ``member_generator(seed, "init")``.
    input_size, n_classes, hidden_sizes: layer sizes (all positive).
    activation: a name in ``ACTIVATIONS`` (``"tanh"``, ``"sign"``).
    binary_weights: hidden Linear layers compute with sign(W) (identity STE to W).
    pixel_inputs: inputs are x = p/127.5 − 1 for integer pixels p (the datasets' case; the
        runner sets it): with binary weights the first layer's sums are then computed exactly.
    batch_norm: BN after each hidden Linear, as the paper's protocol places it.
    init: U(−init, init) for every weight; a float or one per member.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        input_size: int = 784,
        n_classes: int = 10,
        hidden_sizes: Sequence[int] = PAPER_HIDDEN_SIZES,
        activation: str = "tanh",
        binary_weights: bool = False,
        batch_norm: bool = False,
        init: FloatOrPerMember = 0.1,
        device: Union[str, torch.device] = "cpu",
        pixel_inputs: bool = False,
    ):
        if isinstance(seeds, Integral):
            seeds = [seeds]
        seeds = list(seeds)
        if not seeds or not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise reject("seeds", seeds, "a non-empty list of integers ≥ 0")
        self.seeds = [int(s) for s in seeds]
        self.n_members = len(self.seeds)
        (self.input_size,) = check_sizes("input_size", [input_size])
        (self.n_classes,) = check_sizes("n_classes", [n_classes])
        self.hidden_sizes = check_sizes("hidden_sizes", hidden_sizes)
        self.activation = ACTIVATIONS.get(activation)
        for name, flag in (("binary_weights", binary_weights), ("batch_norm", batch_norm)):
            if not isinstance(flag, bool):
                raise reject(name, flag, "True, False")
        self.binary_weights = binary_weights
        self.batch_norm = batch_norm
        self.hidden_binariser = WEIGHT_BINARISERS.get("sign" if binary_weights else "identity")
        self.init = per_member(init, self.n_members, "init")
        self.device = torch.device(device)
        kernels.requested()  # a bad BNNLIB_INT8_GEMM is refused here, before any compute
        if not isinstance(pixel_inputs, bool):
            raise reject("pixel_inputs", pixel_inputs, "True, False")
        self.pixel_inputs = pixel_inputs

        sizes = (self.input_size, *self.hidden_sizes, self.n_classes)
        per_layer = [[] for _ in range(len(sizes) - 1)]
        for seed, bound in zip(self.seeds, self.init):
            generator = member_generator(seed, "init")
            for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                per_layer[k].append(uniform((fan_in, fan_out), bound, generator))
        #: latent weights, one (S, fan_in, fan_out) tensor per Linear layer (output layer last)
        self.weights = [torch.stack(ws).to(self.device) for ws in per_layer]
        S = self.n_members
        ones = lambda n: torch.ones(S, 1, n, device=self.device)  # noqa: E731
        zeros = lambda n: torch.zeros(S, 1, n, device=self.device)  # noqa: E731
        if batch_norm:
            self.bn_gamma = [ones(n) for n in self.hidden_sizes]
            self.bn_beta = [zeros(n) for n in self.hidden_sizes]
            self.running_mean = [zeros(n) for n in self.hidden_sizes]
            self.running_var = [ones(n) for n in self.hidden_sizes]
        else:
            self.bn_gamma = self.bn_beta = self.running_mean = self.running_var = []
        #: running statistics are initialised by the first training batch, then averaged
        self.bn_initialised = False

    # ------------------------------------------------------------------ structure
    @property
    def n_hidden(self) -> int:
        return len(self.hidden_sizes)

    def effective_weight(self, k: int) -> torch.Tensor:
        """The weights Linear layer k computes with (sign(W) for binary hidden layers)."""
        if k < self.n_hidden:
            return self.hidden_binariser.forward(self.weights[k])
        return self.weights[k]

    def state_dict(self) -> dict:
        """Every tensor and flag that defines the model's state (for checkpoints)."""
        return {
            "weights": [w.cpu().clone() for w in self.weights],
            "bn_gamma": [t.cpu().clone() for t in self.bn_gamma],
            "bn_beta": [t.cpu().clone() for t in self.bn_beta],
            "running_mean": [t.cpu().clone() for t in self.running_mean],
            "running_var": [t.cpu().clone() for t in self.running_var],
            "bn_initialised": self.bn_initialised,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("weights", "bn_gamma", "bn_beta", "running_mean", "running_var"):
            mine = getattr(self, name)
            if len(mine) != len(state[name]):
                raise ValueError(f"checkpoint has {len(state[name])} {name} tensors, model has {len(mine)}")
            for dst, src in zip(mine, state[name]):
                if dst.shape != src.shape:
                    raise ValueError(f"checkpoint {name} shape {tuple(src.shape)} != model {tuple(dst.shape)}")
                dst.copy_(src)
        self.bn_initialised = bool(state["bn_initialised"])

    @property
    def integer_layers(self) -> range:
        """Linear layers whose inputs and weights are both ±1: hidden layers 1 … n_hidden−1 of a
        network with binary weights and a ±1 activation. Their products are ±1 and their sums
        integers of magnitude ≤ fan_in, so an int8 GEMM with int32 accumulation gives exactly
        the float32 result (every integer below 2²⁴ is a float32); where the processor runs it
        faster (:mod:`bnnlib.kernels`), it is used."""
        if self.binary_weights and self.activation.binary_output:
            return range(1, self.n_hidden)
        return range(0)

    @property
    def exact_first_layer(self) -> bool:
        """With binary weights and pixel inputs x = (2p − 255)/255, block 1's pre-activation is an
        integer over 255: it is computed exactly (ARITHMETIC_VERSION 3)."""
        return self.binary_weights and self.pixel_inputs

    # ------------------------------------------------------------------ forward
    def _linear(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # input shared by all members (evaluation): one (N, in) matrix
            return torch.matmul(x, w)
        return torch.bmm(x, w)

    def _hidden_linear(self, k: int, y: torch.Tensor, w: torch.Tensor,
                       w_int8: Optional[torch.Tensor]) -> torch.Tensor:
        """Hidden Linear k; ``w_int8`` is given where the int8 kernel computes it. The float32
        branches compute the same integers (|sum| < 2²⁴ is exact in any order), so both kernels
        give the same bits."""
        if k == 0 and self.exact_first_layer:
            if w_int8 is not None:
                return kernels.pixel_matmul_int8(y, w_int8)
            z = self._linear(torch.round(y * 127.5 - 0.5).mul_(2).add_(1), w)  # 2p − 255, summed exactly
            return z.div_(255.0)
        if w_int8 is not None and y.dim() == 3:
            return kernels.pm1_matmul_int8(y, w_int8)
        return self._linear(y, w)

    def _int8_layers(self) -> set:
        """The hidden layers the int8 kernel computes: the exact ones, where it is the faster."""
        if not kernels.use_int8(self.device):
            return set()
        return set(self.integer_layers) | ({0} if self.exact_first_layer else set())

    def integer_weights(self, effective_weights: Sequence[torch.Tensor]) -> List[Optional[torch.Tensor]]:
        """int8 copies of the ±1 weights of the layers the int8 kernel computes (None elsewhere)."""
        int8 = self._int8_layers()
        return [w.to(torch.int8) if k in int8 else None for k, w in enumerate(effective_weights)]

    def forward_train(self, x: torch.Tensor) -> ForwardCache:
        """Training-mode forward pass (batch statistics in BN; running stats updated)."""
        cache = ForwardCache()
        y = x
        int8 = self._int8_layers()
        for k in range(self.n_hidden):
            w = self.effective_weight(k)
            cache.inputs.append(y)
            cache.effective_weights.append(w)
            z = self._hidden_linear(k, y, w, w.to(torch.int8) if k in int8 else None)
            if self.batch_norm:
                z, x_hat, inv_std = self._batch_norm_train(k, z)
                cache.normalised.append(x_hat)
                cache.inv_std.append(inv_std)
            else:
                cache.normalised.append(None)
                cache.inv_std.append(None)
            cache.pre_activations.append(z)
            y = self.activation.forward(z)
        if self.batch_norm:
            self.bn_initialised = True
        w = self.weights[-1]
        cache.inputs.append(y)
        cache.effective_weights.append(w)
        cache.output = tanh(self._linear(y, w))
        return cache

    def _batch_norm_train(self, k: int, z: torch.Tensor):
        # two passes (mean, then the biased mean of squared deviations), as NumPy computes
        # them: an order of magnitude faster than torch.var_mean's Welford kernel on a training
        # batch (benchmarks/primitives.py), which cost a BP + BN step ~12 % (ARITHMETIC_VERSION 2)
        mean = z.mean(dim=1, keepdim=True)
        centred = z - mean
        var = centred.square().mean(dim=1, keepdim=True)
        inv_std = torch.rsqrt(var + BN_EPS)
        x_hat = centred.mul_(inv_std)
        if self.bn_initialised:
            self.running_mean[k].lerp_(mean, BN_MOMENTUM)
            self.running_var[k].lerp_(var, BN_MOMENTUM)
        else:
            self.running_mean[k].copy_(mean)
            self.running_var[k].copy_(var)
        out = torch.addcmul(self.bn_beta[k], x_hat, self.bn_gamma[k])
        return out, x_hat, inv_std

    def eval_batch_norm(self, k: int) -> tuple:
        """(scale, shift), each (S, 1, n_k): evaluation-mode BN of block k is z·scale + shift
        (``torch.addcmul(shift, z, scale)``), from the running statistics. The deployed
        network's thresholds are folded from this very expression."""
        scale = torch.rsqrt(self.running_var[k] + BN_EPS).mul_(self.bn_gamma[k])
        return scale, self.bn_beta[k] - self.running_mean[k] * scale

    @torch.no_grad()
    def forward_eval(self, x: torch.Tensor, effective_weights: Optional[List[torch.Tensor]] = None,
                     integer_weights: Optional[List[Optional[torch.Tensor]]] = None) -> torch.Tensor:
        """Evaluation-mode forward pass: BN uses running statistics; nothing is updated.

        ``x`` is (N, in) — the same inputs for every member — or (S, N, in).
        ``effective_weights`` (and their ``integer_weights``) let a caller evaluating many
        chunks binarise the weights once. Returns (S, N, n_classes).
        """
        if effective_weights is None:
            effective_weights = [self.effective_weight(k) for k in range(self.n_hidden)]
        if integer_weights is None:
            integer_weights = self.integer_weights(effective_weights)
        y = x
        for k in range(self.n_hidden):
            z = self._hidden_linear(k, y, effective_weights[k], integer_weights[k])
            if self.batch_norm:
                scale, shift = self.eval_batch_norm(k)
                z = torch.addcmul(shift, z, scale)
            y = self.activation.forward(z)
        return tanh(self._linear(y, self.weights[-1]))

    @property
    def eval_batch_size(self) -> int:
        """Rows per evaluated chunk. Small chunks keep each layer's activations in cache for the
        elementwise passes: 1024 rows (one member) or 512 rows × S ran at 70–90% of the matmul
        peak here, 16k–64k rows at ~50% (benchmarks/train_speed.py measures the result)."""
        return 1024 if self.n_members <= 2 else 512

    def gemm_shapes(self, batch_size: int) -> tuple:
        """What decides the shapes of this model's GEMMs when trained at ``batch_size`` and
        evaluated: (units from input to output, (batch_size, evaluated chunk), members), as
        :func:`bnnlib.cores.thread_count_changes_sums` takes them."""
        return (self.input_size, *self.hidden_sizes, self.n_classes), (batch_size, self.eval_batch_size), \
            self.n_members

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: Optional[int] = None) -> torch.Tensor:
        """Predicted class per member and sample, (S, N), evaluated in chunks."""
        if batch_size is None:
            batch_size = self.eval_batch_size
        weights = [self.effective_weight(k) for k in range(self.n_hidden)]
        integer = self.integer_weights(weights)
        chunks = [self.forward_eval(x[i:i + batch_size].to(self.device), weights, integer).argmax(dim=2)
                  for i in range(0, x.shape[-2], batch_size)]
        return torch.cat(chunks, dim=1)

    # ------------------------------------------------------------------ local backward
    def block_backward(self, k: int, cache: ForwardCache, grad_y: torch.Tensor) -> tuple:
        """(δz_k, δγ_k, δβ_k): the gradient at hidden Linear k's output from δy_k, through the
        activation's derivative/STE and, with BN, through BN; δγ and δβ are None without BN.
        The trainer applies every update (it owns the learning rate).

        ``grad_y`` may be overwritten.
        """
        grad = self.activation.backward(cache.pre_activations[k], cache.inputs[k + 1], grad_y)
        if not self.batch_norm:
            return grad, None, None
        x_hat, inv_std, gamma = cache.normalised[k], cache.inv_std[k], self.bn_gamma[k]
        grad_gamma = (grad * x_hat).sum(dim=1, keepdim=True)
        grad_beta = grad.sum(dim=1, keepdim=True)
        grad_x_hat = grad.mul_(gamma)  # uses γ before its update
        n = grad_x_hat.shape[1]
        # dz = inv_std/n · (n·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂)): the exact derivative of batch normalisation
        sum_dxhat_xhat = (grad_x_hat * x_hat).sum(dim=1, keepdim=True)
        sum_dxhat = grad_x_hat.sum(dim=1, keepdim=True)
        grad_z = grad_x_hat.mul_(n).sub_(sum_dxhat).sub_(x_hat * sum_dxhat_xhat).mul_(inv_std / n)
        return grad_z, grad_gamma, grad_beta
