"""The measurement-only baseline of the fairness table: how much of the group is in the low-resolution
measurement itself, with no generative prior at all.

A logistic regression on the measurements (the same bicubic operator the methods invert, at each factor),
fit on the world's labelled training images of the two groups (never the fairness images), predicts the
group of every fairness image from its measurement. A method whose accuracy does not beat this line has
not shown that its prior adds group information.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

BASELINE_METHOD = "measurement only (linear)"


def measure(images: torch.Tensor, factor: int) -> torch.Tensor:
    """The superres task's noise-free measurements of ``images`` [N, C, H, W], flattened [N, m]."""
    import tasks

    op = tasks.get("superres").build(float(factor), tuple(images.shape[1:]), seed=0)
    return torch.cat([op(images[i:i + 2000]).flatten(1) for i in range(0, len(images), 2000)])


def measurement_only_predictions(train_x: torch.Tensor, train_group: torch.Tensor, test_x: torch.Tensor,
                                 factor: int) -> torch.Tensor:
    """Group predictions (0/1) of ``test_x`` from its measurements, by a logistic regression fit on the
    training images' measurements (two groups only)."""
    from bench.core.linear import fit_logistic, predict_logistic

    w, b = fit_logistic(measure(train_x, factor), train_group.float())
    return predict_logistic(measure(test_x, factor), w, b)


def measurement_only_rows(cfg, planned, clf) -> pd.DataFrame:
    """Per-image rows (method BASELINE_METHOD) for every factor, in the classifier's group order; empty when
    the world has no labelled training images of the groups or there are not exactly two groups."""
    from bench.priors.catalog import get_world, load_images

    fair = get_world(cfg.prior).fairness
    if fair is None or fair.train_groups is None or len(planned.groups) != 2:
        return pd.DataFrame()
    train_x, train_g = fair.train_groups()
    images, ids = load_images(cfg.prior, "fairness")
    pos = list(planned.positions)
    x = images[pos]
    ref = clf.predict(x).tolist()
    rows = []
    for factor in cfg.factors:
        pred = measurement_only_predictions(train_x, train_g, x, factor).tolist()
        for j, p in enumerate(pos):
            name = planned.groups[planned.labels[j]]
            rows.append({"factor": int(factor), "method": BASELINE_METHOD, "seed": 0,
                         "params_source": "logistic regression on the measurement (no prior), fit on training images",
                         "image_index": p, "image_id": ids[p], "group": name, "label": clf.groups.index(name),
                         "ref_pred": ref[j], "status": "ok",
                         "pred": clf.groups.index(planned.groups[int(pred[j])]), "samples": 1, "pred_majority": -1,
                         "agreement": math.nan})
    return pd.DataFrame(rows)
