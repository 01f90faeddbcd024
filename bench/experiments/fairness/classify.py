"""Classifying the fairness run's reconstructions and posterior samples (and the originals)."""
from __future__ import annotations

import json
import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from bench.experiments.fairness.config import Choice, FairnessConfig
from bench.experiments.fairness.stats import agreement_rate, majority_vote
from bench.harness.runner import Cell
from bench.harness.store import ResultStore


def classify(cfg: FairnessConfig, cells: Sequence[Cell], positions: Sequence[int], labels: Sequence[int],
             set_groups: Sequence[str], clf, choices: dict[tuple[int, str], Choice]) -> pd.DataFrame:
    """Per-image predictions of the originals (factor 0, method "original") and of every
    cell's reconstruction and posterior samples, read from ``<out>/images/<key>.pt``."""
    from bench.priors.catalog import load_images

    images, ids = load_images(cfg.prior, "fairness")
    pos = list(positions)
    ref = clf.predict(images[pos]).tolist()
    info = {p: {"image_index": p, "image_id": ids[p], "group": set_groups[lab], "label": clf.groups.index(set_groups[lab]),
                "ref_pred": r} for p, lab, r in zip(pos, labels, ref)}
    rows = [{"factor": 0, "method": "original", "seed": 0, "params_source": "-", **info[p], "status": "ok",
             "pred": info[p]["ref_pred"], "samples": 1, "pred_majority": -1, "agreement": math.nan} for p in pos]
    store = ResultStore(cfg.out)
    for cell in cells:
        base = {"factor": int(cell.level), "method": cell.method, "seed": cell.seed,
                "params_source": choices[(int(cell.level), cell.method)].source}
        rec_path = store.record_path(cell)
        rec = json.loads(rec_path.read_text()) if rec_path.exists() else {"status": "missing", "reason": "not run"}
        status = rec["status"]
        img_path = cfg.out / "images" / f"{cell.key}.pt"
        if status != "ok" or not img_path.exists():
            reason = rec.get("reason", "") if status != "ok" else f"{img_path} is missing"
            rows += [base | info[p] | {"status": status if status != "ok" else "missing images", "reason": reason,
                                       "pred": -1, "samples": cell.num_samples, "pred_majority": -1,
                                       "agreement": math.nan}
                     for p in cell.image_indices]
            continue
        blob = torch.load(img_path, map_location="cpu", weights_only=True)
        single = clf.predict(decode_image(blob["recon"])).numpy()
        S = cell.num_samples
        if blob["samples"] is not None and S > 1:
            smp = decode_image(blob["samples"])
            sp = clf.predict(smp.flatten(0, 1)).numpy().reshape(smp.shape[0], smp.shape[1])
            maj, agr = majority_vote(sp), agreement_rate(sp)
        else:
            maj, agr = np.full(len(single), -1), np.full(len(single), math.nan)
        for j, p in enumerate(blob["image_indices"]):
            rows.append(base | info[p] | {"status": "ok", "pred": int(single[j]), "samples": S,
                                          "pred_majority": int(maj[j]), "agreement": float(agr[j])})
    return pd.DataFrame(rows)


def decode_image(t: torch.Tensor) -> torch.Tensor:
    """Saved images (uint8, see ``bench.harness.runner.image_to_uint8``) back to float in [-1, 1]."""
    return t.float() / 127.5 - 1 if t.dtype == torch.uint8 else t.float()


def build_classifier(cfg: FairnessConfig):
    from bench.core.device import get_device
    from bench.priors.attributes import get_classifier

    opts = dict(cfg.classifier_options)
    opts.setdefault("device", get_device())
    return get_classifier(cfg.classifier, **opts)


def classifier_groups(cfg: FairnessConfig) -> tuple[str, ...] | None:
    """The groups a built-in classifier will decide between, known without loading it (None: unknown)."""
    if cfg.classifier == "clip":
        from bench.priors.attributes import DEFAULT_GROUPS

        return tuple(cfg.classifier_options.get("groups", DEFAULT_GROUPS))
    if cfg.classifier == "embedded":
        from bench.data.evalset import FAIRNESS_GROUPS

        return tuple(FAIRNESS_GROUPS)
    return None


def check_classifier_ready(cfg: FairnessConfig) -> str | None:
    """A message if the classifier's weights are missing (checked before any reconstruction)."""
    from bench.core.assets import MissingAssetError, get_asset

    try:
        if cfg.classifier == "clip":
            from bench.priors.attributes import DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, resolve_clip_weights

            o = cfg.classifier_options
            if not o.get("random_init"):
                resolve_clip_weights(o.get("model", DEFAULT_CLIP_MODEL), o.get("pretrained", DEFAULT_CLIP_PRETRAINED),
                                     o.get("weights"))
        elif cfg.classifier == "embedded" and cfg.classifier_options.get("path") is None:
            get_asset("fmnist-classifier").require()
    except MissingAssetError as err:
        return str(err)
    return None


