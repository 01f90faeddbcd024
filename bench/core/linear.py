"""An L2-regularised logistic regression (two classes), fit by L-BFGS: the linear baselines' model."""
from __future__ import annotations

import torch


def fit_logistic(x: torch.Tensor, y: torch.Tensor, steps: int = 200, l2: float = 1e-3
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, b) minimising mean BCE(x @ w + b, y) + l2 |w|^2 on features ``x`` [N, D] and 0/1 labels ``y`` [N]."""
    x, y = x.double(), y.double()
    torch.manual_seed(0)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def predict_logistic(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """0/1 predictions [N]."""
    return ((x.double() @ w + b) > 0).long()
