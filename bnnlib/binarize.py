"""Binarisation primitives: activations and weight binarisers, forward and STE side by side.

Each primitive is registered by name (``ACTIVATIONS.get("sign")``,
``WEIGHT_BINARISERS.get("sign")``) and offers two equivalent faces:

* ``forward`` / ``backward`` — the explicit local derivative used by the trainers, which
  compute every update by hand so that DFA and DRTP never build a backward chain;
* ``autograd(x)`` — a :class:`torch.autograd.Function` with the same forward and the same
  straight-through estimator, for anyone who wants autograd (the tests use both faces).

Sign convention (the paper's): ``sign(0) = -1`` — the value is +1 where x > 0, else -1.
larq and bitorch map 0 to +1; a test pins ours.
"""

from __future__ import annotations

import torch

from .registry import Registry

ACTIVATIONS: Registry["Activation"] = Registry("activation")
WEIGHT_BINARISERS: Registry["WeightBinariser"] = Registry("weight binariser")


def sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x > 0, else −1 (so sign(0) = −1), in x's dtype.

    Computed as sign(sign(x) − ½): torch.sign maps 0 to 0, and shifting {−1, 0, +1} by −½
    sends 0 to the negative side. Three vectorised passes are several times faster on the CPU
    than ``torch.where(x > 0, 1., −1.)`` (``benchmarks/primitives.py`` measures both), and binary
    layers binarise their weights at every step.
    """
    return torch.sign(x).sub_(0.5).sign_()


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) computed as 2·σ(2x) − 1.

    PyTorch's CPU tanh kernel is several times slower than this whole expression on a training
    batch (``benchmarks/primitives.py`` measures both), and tanh runs five times per training
    step. The identity is exact; in float32 it differs from
    torch.tanh by at most ~2e-7 absolute (pinned by a test).
    """
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


class _Primitive(torch.autograd.Function):
    """The autograd face of every primitive, written once: forward is the primitive's
    ``forward``, backward its ``backward`` (the explicit derivative or STE the trainers use),
    so the two faces cannot drift apart."""

    @staticmethod
    def forward(ctx, x, primitive):
        y = primitive.forward(x)
        ctx.primitive = primitive
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return ctx.primitive.backward(x, y, grad.clone()), None  # backward may overwrite its input


class Activation:
    """A hidden-layer activation y = f(z) with its (possibly straight-through) derivative."""

    name: str = ""
    #: True when every output is −1 or +1 (lets ±1 × ±1 layers use exact integer GEMMs)
    binary_output: bool = False

    @staticmethod
    def forward(z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def backward(z: torch.Tensor, y: torch.Tensor, grad_y: torch.Tensor) -> torch.Tensor:
        """δz from δy; may overwrite and return ``grad_y`` (it is never reused by callers)."""
        raise NotImplementedError

    @classmethod
    def autograd(cls, z: torch.Tensor) -> torch.Tensor:
        """y = forward(z) with ``backward`` as its gradient, for autograd users."""
        return _Primitive.apply(z, cls)


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """y = tanh(z); δz = δy · (1 − y²) — the true derivative."""

    @staticmethod
    def forward(z):
        return tanh(z)

    @staticmethod
    def backward(z, y, grad_y):
        # δy − δy·y·y in one fused pass, written into grad_y
        return torch.addcmul(grad_y, grad_y * y, y, value=-1.0, out=grad_y)


@ACTIVATIONS.register("sign")
class Sign(Activation):
    """y = sign(z) ∈ {−1, +1}; saturating STE δz = δy · 1[|z| < 1] (Courbariaux/Hubara)."""

    binary_output = True

    @staticmethod
    def forward(z):
        return sign(z)

    @staticmethod
    def backward(z, y, grad_y):
        # |z| >= 1 is where the hard-tanh surrogate saturates: no gradient passes there.
        # 1[|z| < 1] = sign(max(1 − |z|, 0)) (1 − |z| is exact near 1), in float passes that
        # run faster here than a boolean mask and masked_fill_.
        inside = torch.abs(z).neg_().add_(1.0).clamp_(min=0.0).sign_()
        return grad_y.mul_(inside)


class WeightBinariser:
    """Maps the latent real weights W to the weights used in the forward pass, with its STE
    beside it: ``backward`` maps the gradient with respect to the effective weights to the
    latent W. Both binarisers here pass it unchanged (``identity_ste``): the trainers then
    accumulate the update straight into W in one GEMM; a binariser with another STE gets its
    ``backward`` applied (:meth:`bnnlib.trainers.Trainer._sgd_update`)."""

    name: str = ""
    binary: bool = False
    #: True when ``backward`` returns its gradient unchanged
    identity_ste: bool = True

    @staticmethod
    def forward(w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def backward(w: torch.Tensor, w_effective: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The gradient for the latent W from the one for the effective weights."""
        return grad

    @classmethod
    def autograd(cls, w: torch.Tensor) -> torch.Tensor:
        return _Primitive.apply(w, cls)


@WEIGHT_BINARISERS.register("identity")
class IdentityWeights(WeightBinariser):
    """Continuous weights: the forward pass uses W itself."""

    @staticmethod
    def forward(w):
        return w


@WEIGHT_BINARISERS.register("sign")
class SignWeights(WeightBinariser):
    """Binary weights: forward with sign(W) ∈ {−1, +1}; identity STE back to the latent W."""

    binary = True

    @staticmethod
    def forward(w):
        return sign(w)
