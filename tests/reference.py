"""An independent reference for the trainers' updates, written with plain autograd.

It rebuilds the network from the model's tensors with ordinary torch ops (torch.tanh, the
autograd STE functions, a textbook batch norm) and never calls the trainers' own backward
code. BP's reference is the autograd gradient of the summed squared error; DFA's and
DRTP's inject δy_k = e B_k (or t B_k) into each block with its input detached.
"""

import torch

from bnnlib.binarize import ACTIVATIONS, WEIGHT_BINARISERS

EPS = 1e-3


def reference_step(model, trainer_name, x, targets, lr, feedback=None):
    """Return the expected (weights, gammas, betas) after one step of member-stacked SGD."""
    act = ACTIVATIONS.get(model.activation.name)
    binariser = WEIGHT_BINARISERS.get("sign" if model.binary_weights else "identity")
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
        z = torch.bmm(y, binariser.autograd(weights[k]))
        if model.batch_norm:
            mean = z.mean(dim=1, keepdim=True)
            var = ((z - mean) ** 2).mean(dim=1, keepdim=True)
            z = (z - mean) / torch.sqrt(var + EPS) * gammas[k] + betas[k]
        y = act.autograd(z)
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
