"""Classification metrics per member, torch-native (sklearn is only the tests' oracle).

Macro averages follow sklearn's ``zero_division=0``: a class never predicted has precision 0,
a class with no true positives and nothing to find has F1 0.
"""

from __future__ import annotations

from typing import Dict

import torch


def confusion_matrices(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(S, C, C) counts, rows = true class, columns = predicted class.

    ``predictions`` is (S, N) or (N,); ``labels`` is (N,).
    """
    if predictions.dim() == 1:
        predictions = predictions.unsqueeze(0)
    S = predictions.shape[0]
    labels = labels.to(predictions.device)
    member_offset = torch.arange(S, device=predictions.device).unsqueeze(1) * n_classes * n_classes
    flat = (member_offset + labels.unsqueeze(0) * n_classes + predictions).reshape(-1)
    return torch.bincount(flat, minlength=S * n_classes * n_classes).view(S, n_classes, n_classes)


def classification_metrics(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> Dict[str, torch.Tensor]:
    """Accuracy, macro precision and macro F1 per member, each a float64 tensor of shape (S,),
    and ``classes_predicted``: how many distinct classes each member predicts (1 = collapsed)."""
    confusion = confusion_matrices(predictions, labels, n_classes).double()
    true_positive = confusion.diagonal(dim1=1, dim2=2)
    predicted = confusion.sum(dim=1)
    actual = confusion.sum(dim=2)
    safe = lambda num, den: torch.where(den > 0, num / den.clamp(min=1), torch.zeros_like(num))  # noqa: E731
    precision = safe(true_positive, predicted)
    f1 = safe(2 * true_positive, predicted + actual)
    return {
        "accuracy": true_positive.sum(dim=1) / confusion.sum(dim=(1, 2)),
        "precision": precision.mean(dim=1),
        "f1": f1.mean(dim=1),
        "classes_predicted": (predicted > 0).sum(dim=1),
    }


@torch.no_grad()
def evaluate(model, x: torch.Tensor, labels: torch.Tensor, batch_size=None) -> Dict[str, torch.Tensor]:
    """Metrics of every member of ``model`` on one split, in evaluation mode."""
    return classification_metrics(model.predict(x, batch_size), labels, model.n_classes)
