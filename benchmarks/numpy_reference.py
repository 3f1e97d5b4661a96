"""A plain NumPy float64 implementation of the protocol, in the style of the paper's code.

Used as the baseline of ``train_speed.py`` (measured in the same run) and as a float64
cross-check of bnnlib in the tests. One network (no member axis), explicit per-layer loops.
Unlike the paper's code it does not compute and discard BP's chain in DFA/DRTP, and it has
no HSIC diagnostics, so it is faster than the original; see train_speed.py's report.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-3


#: the rules this reference computes (the paper's three): any other is refused, never guessed
RULES = ("BP", "DFA", "DRTP")


def sign(x):
    return np.where(x > 0, 1.0, -1.0)


class NumpyMLP:
    def __init__(self, weights, activation="tanh", binary=False, batch_norm=False, feedback=None):
        self.W = [np.array(w, dtype=np.float64) for w in weights]
        self.activation, self.binary, self.batch_norm = activation, binary, batch_norm
        n_hidden = len(self.W) - 1
        self.gamma = [np.ones(w.shape[1]) for w in self.W[:n_hidden]]
        self.beta = [np.zeros(w.shape[1]) for w in self.W[:n_hidden]]
        self.running = None
        self.B = None if feedback is None else [np.array(b, dtype=np.float64) for b in feedback]

    def _effective(self, k):
        return sign(self.W[k]) if self.binary and k < len(self.W) - 1 else self.W[k]

    def step(self, x, t, algorithm, lr):
        if algorithm not in RULES:
            raise ValueError(f"the float64 reference knows the rules {', '.join(RULES)}; got {algorithm!r}")
        L = len(self.W) - 1
        ys, zs, xhats, invs, wf = [x], [], [], [], []
        batch_stats = []
        for k in range(L):
            wf.append(self._effective(k))
            z = ys[-1] @ wf[k]
            if self.batch_norm:
                mean, var = z.mean(0), z.var(0)
                inv = 1 / np.sqrt(var + EPS)
                xhat = (z - mean) * inv
                xhats.append(xhat)
                invs.append(inv)
                batch_stats.append((mean, var))
                z = xhat * self.gamma[k] + self.beta[k]
            zs.append(z)
            ys.append(np.tanh(z) if self.activation == "tanh" else sign(z))
        if self.batch_norm:
            if self.running is None:
                self.running = [(m.copy(), v.copy()) for m, v in batch_stats]
            else:
                self.running = [(0.9 * rm + 0.1 * m, 0.9 * rv + 0.1 * v)
                                for (rm, rv), (m, v) in zip(self.running, batch_stats)]
        wf.append(self.W[-1])
        out = np.tanh(ys[-1] @ self.W[-1])
        e = 2 * (out - t)
        loss = np.mean((out - t) ** 2)
        dz = e * (1 - out ** 2)
        onehot = (t + 1) / 2
        for k in range(L, -1, -1):
            if k > 0:
                if algorithm == "BP":
                    dy = dz @ wf[k].T
                elif algorithm == "DFA":
                    dy = e @ self.B[k - 1]
                else:  # DRTP: step() refused every other rule before computing anything
                    dy = onehot @ self.B[k - 1]
            self.W[k] = np.clip(self.W[k] - lr * ys[k].T @ dz, -1, 1)
            if k > 0:
                j = k - 1
                d = dy * (1 - ys[k] ** 2) if self.activation == "tanh" else dy * (np.abs(zs[j]) < 1)
                if self.batch_norm:
                    n = d.shape[0]
                    dgamma, dbeta = (d * xhats[j]).sum(0), d.sum(0)
                    dxhat = d * self.gamma[j]
                    d = invs[j] / n * (n * dxhat - dxhat.sum(0) - xhats[j] * (dxhat * xhats[j]).sum(0))
                    self.gamma[j] -= lr * dgamma
                    self.beta[j] -= lr * dbeta
                dz = d
        return loss

    def predict(self, x):
        y = x
        for k in range(len(self.W) - 1):
            z = y @ self._effective(k)
            if self.batch_norm:
                rm, rv = self.running[k]
                z = (z - rm) / np.sqrt(rv + EPS) * self.gamma[k] + self.beta[k]
            y = np.tanh(z) if self.activation == "tanh" else sign(z)
        return np.tanh(y @ self.W[-1]).argmax(1)
