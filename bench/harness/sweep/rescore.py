"""Continue a sweep after its prior's score models were re-installed, re-running only what they touch.

A sweep folder refuses a config whose weight fingerprints differ from the stored ones, because results
of two priors must never mix. When the *only* difference is the score files of some layers, most cells
are still valid: CSGM, ILO, ILO-unregularized and SGILO at temperature 0 never load a score model. This
module finds the stored cells that did load a changed layer (``Method.score_layers`` of their params)
and moves their records, failed attempts and previews under ``superseded/<stamp>/``, so the sweep runs
them again with the new weights and keeps every other result. Moving (``os.replace``) file by file is
safe to interrupt: a re-run finds the rest and moves them.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from bench.harness.runner import Cell


def score_layer_of(prior: str, data_key: str) -> int | None:
    """The generator layer whose score model the fingerprint entry ``data_key`` of ``data_identity``
    stands for (an installed ``score_layer<k>.pt`` or a score asset of the prior); None for anything else."""
    from bench.priors.catalog import get_spec

    by_asset = {name: layer for layer, name in get_spec(prior).score_assets.items()}
    if data_key in by_asset:
        return by_asset[data_key]
    m = re.fullmatch(r"score_layer(\d+)\.pt", data_key)
    return int(m.group(1)) if m else None


def changed_score_layers(old_data: dict, new_data: dict, prior: str) -> set[int] | None:
    """Layers whose score files differ between two ``data_identity`` dicts when they are the only
    difference; None when a non-score file (generator, images) changed too or nothing changed."""
    changed = {k for k in set(old_data) | set(new_data) if old_data.get(k) != new_data.get(k)}
    layers = {score_layer_of(prior, k) for k in changed}
    if not changed or None in layers:
        return None
    return layers


def score_change(root: Path, old_data: dict, new_data: dict, prior: str, rerun: bool, dry_run: bool = False
                 ) -> tuple[bool, str]:
    """(handled, message) for a store whose weights fingerprints went from ``old_data`` to ``new_data``.
    handled: only score models changed and ``rerun`` is set, so the cells that loaded them were set aside
    (a dry run only counts them) and the store may continue; the message says what happened. Otherwise
    the message is a hint for the refusal (empty unless only score models changed)."""
    from bench.harness.store import ResultStore

    layers = changed_score_layers(old_data, new_data, prior)
    if layers is None:
        return False, ""
    records = ResultStore(root).records()
    keys = cells_using(records, layers, new_data)
    if not rerun:
        return False, (f"Only the score model of layer(s) {sorted(layers)} changed: pass --rerun-score-cells to run "
                       f"again the {len(keys)} stored cells that loaded it and keep the others.")
    if dry_run:
        return True, f"would set aside {len(keys)} stored cells that loaded the changed score model of layer(s) " \
                     f"{sorted(layers)}"
    dest = set_aside(root, keys)
    (root / "superseded").mkdir(exist_ok=True)
    note = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "layers": sorted(layers), "cells": keys,
            "old_data": old_data, "new_data": new_data}
    with open(root / "superseded" / "log.jsonl", "a") as f:
        f.write(json.dumps(note) + "\n")
    return True, (f"score model of layer(s) {sorted(layers)} changed: {len(keys)} stored cells that loaded it moved "
                  f"to {dest} (they run again); {len(records) - len(keys)} other cells kept")


def cells_using(records: list[dict], layers: set[int], new_data: dict | None = None) -> list[str]:
    """Keys of stored cells whose method loaded the score model of one of ``layers``. With ``new_data`` (the
    current ``data_identity``), a record that names the files it was computed with (``weights``) counts only
    if it used another file for such a layer: one that ran after the re-install is kept."""
    from bench.harness.runner import score_layers

    return [rec["key"] for rec in records
            if any(_stale(rec, k, new_data) for k in score_layers([Cell.from_dict(rec["cell"])]) & layers)]


def _stale(rec: dict, layer: int, new_data: dict | None) -> bool:
    """Whether ``rec`` used a score file of ``layer`` other than the one in ``new_data`` (unknown: yes)."""
    recorded = rec.get("weights") or {}
    keys = [key for key in recorded if score_layer_of(rec["cell"]["prior"], key) == layer]
    return new_data is None or not keys or any(recorded[key] != new_data.get(key) for key in keys)


def set_aside(root: Path, keys: list[str], stamp: str | None = None) -> Path:
    """Move the records, attempt files and previews of ``keys`` under ``root/superseded/<stamp>/``."""
    dest = root / "superseded" / (stamp or time.strftime("%Y%m%d-%H%M%S"))
    wanted = set(keys)
    for sub in ("cells", "attempts", "previews"):
        folder = root / sub
        if not folder.exists():
            continue
        for p in folder.iterdir():
            if p.name.split(".")[0] in wanted:
                (dest / sub).mkdir(parents=True, exist_ok=True)
                os.replace(p, dest / sub / p.name)
    return dest
