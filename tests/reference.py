"""An independent reference for the trainers' updates, written with plain autograd.

It rebuilds the network from the model's tensors with ordinary torch ops (torch.tanh, its own
sign and straight-through estimators written from the protocol's text, a textbook batch norm)
and never calls bnnlib's binarisation or backward code: a wrong sign(0) or STE in bnnlib cannot
hide behind the same mistake here. BP's reference is the autograd gradient of the summed squared error; DFA's and
DRTP's inject δy_k = e B_k (or t B_k) into each block with its input detached.
"""

import itertools

import torch

from bnnlib.trainers import rules

EPS = 1e-3
#: what the references here (and the float64 one of benchmarks/) compute: the paper's rules, from
#: the registry, × activation × binary weights × BN — shared by the tests that check against them
PAPER_RULE_SETTINGS = list(itertools.product(rules("paper"), ["tanh", "sign"], [False, True], [False, True]))


def protocol_sign(x):
    """+1 where x > 0, else −1 (PROTOCOL.md: sign(0) = −1)."""
    return torch.where(x > 0, torch.ones_like(x), -torch.ones_like(x))


class SignActivation(torch.autograd.Function):
    """Forward sign(z); backward δz = δy · 1[|z| < 1] (the saturating STE)."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return protocol_sign(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (z.abs() < 1).to(grad.dtype)


class SignWeights(torch.autograd.Function):
    """Forward sign(W); the gradient reaches the latent W unchanged (identity STE)."""

    @staticmethod
    def forward(ctx, w):
        return protocol_sign(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


def reference_step(model, trainer_name, x, targets, lr, feedback=None):
    """Return the expected (weights, gammas, betas) after one step of member-stacked SGD."""
    activation = torch.tanh if model.activation.name == "tanh" else SignActivation.apply
    binarise = SignWeights.apply if model.binary_weights else (lambda w: w)
    weights = [w.clone().requires_grad_(True) for w in model.weights]
    gammas = [g.clone().requires_grad_(True) for g in model.bn_gamma]
    betas = [b.clone().requires_grad_(True) for b in model.bn_beta]
    L = model.n_hidden
    block_inputs, block_outputs = [], []
    y = x
    for k in range(L):
        if trainer_name != "BP":
            y = y.detach()
        block_inputs.append(y)
        z = torch.bmm(y, binarise(weights[k]))
        if model.batch_norm:
            mean = z.mean(dim=1, keepdim=True)
            var = ((z - mean) ** 2).mean(dim=1, keepdim=True)
            z = (z - mean) / torch.sqrt(var + EPS) * gammas[k] + betas[k]
        y = activation(z)
        block_outputs.append(y)
    top_input = y if trainer_name == "BP" else y.detach()
    output = torch.tanh(torch.bmm(top_input, weights[-1]))
    loss_sum = ((output - targets) ** 2).sum()  # its gradient is e = 2(ŷ − y*), batch-summed
    if trainer_name == "BP":
        loss_sum.backward()
    else:
        error = (2 * (output - targets)).detach()
        signal = error if trainer_name == "DFA" else (targets + 1) / 2
        loss_sum.backward()  # output layer only: the blocks below are detached
        for k in range(L):
            torch.autograd.backward(block_outputs[k], torch.bmm(signal, feedback[k]))
    lr = lr.view(-1, 1, 1)
    with torch.no_grad():
        new_weights = [(w - lr * w.grad).clamp(-1, 1) for w in weights]
        new_gammas = [g - lr * g.grad for g in gammas]
        new_betas = [b - lr * b.grad for b in betas]
    return new_weights, new_gammas, new_betas


def hand_step(model, signal, x, targets, lr):
    """One step of the protocol's formulas written out for a net without BN (S = 1, plain
    matrices), with the rule's δy_k = signal(k, δz_{k+1}, W_{k+1} as the forward pass used it,
    e, t): the shared part of every rule, so each rule's test gives only its own line."""
    from bnnlib.binarize import sign
    W = [w[0].clone() for w in model.weights]
    Wf = [sign(w) if (model.binary_weights and k < len(W) - 1) else w for k, w in enumerate(W)]
    x, t = x[0], targets[0]
    ys, zs = [x], []
    for k in range(len(W) - 1):
        z = ys[-1] @ Wf[k]
        zs.append(z)
        ys.append(torch.tanh(z) if model.activation.name == "tanh" else sign(z))
    out = torch.tanh(ys[-1] @ W[-1])
    e = 2 * (out - t)
    dz = [None] * len(W)
    dz[-1] = e * (1 - out ** 2)
    for k in range(len(W) - 2, -1, -1):
        dy = signal(k, dz[k + 1], Wf[k + 1], e, t)
        derivative = 1 - ys[k + 1] ** 2 if model.activation.name == "tanh" else (zs[k].abs() < 1).float()
        dz[k] = dy * derivative
    return [(w - lr * (y.T @ d)).clamp(-1, 1) for w, y, d in zip(W, ys, dz)]
