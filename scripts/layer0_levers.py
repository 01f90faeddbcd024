"""Paired comparison of layer-score candidates: each model's saved bar samples (``samples_layer<k>-pc.pt``, written
by ``bench.scores evaluate``) against ONE held-out set that none of them trained on, decoded with the same seeds.

Why: each evaluation measures its model against its own store's held-out states, and a model trained on a larger
store (more inversions) has another held-out set, so their class distances are not paired. The 8000-image store's
last tenth is unseen by every candidate (the 4000-image store is its prefix), so it pairs them all.

    python scripts/layer0_levers.py --heldout runs/scores-embedded-8k/layer0_heldout.pt \
        --model installed=runs/scores-embedded/score_layer0 --model wide=runs/scores-embedded/score_layer0-wide ... \
        --out results/embedded/score-layer0-levers
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.core.io import atomic_write_json
from bench.priors.catalog import load_prior
from bench.scores.evaluate import BAR_SAMPLER, DECODE_SEEDS, compare_with_real, decode_seed_spread, quality_measure


def mean_shares(spread: dict) -> dict:
    rows = spread["decodes"]
    return {k: round(sum(r["shares"][k] for r in rows) / len(rows), 3) for k in rows[0]["shares"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, required=True, help="real states none of the models trained on")
    ap.add_argument("--model", action="append", required=True, help="NAME=FOLDER with the saved bar samples")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--prior", default="embedded")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    bad = [spec for spec in args.model if "=" not in spec]
    if bad:
        ap.error(f"--model takes NAME=FOLDER, got {bad}")
    models = [spec.split("=", 1) for spec in args.model]
    g, quality = load_prior(args.prior).generator.cpu(), quality_measure(args.prior)
    real = torch.load(args.heldout, map_location="cpu", weights_only=True)[:args.n]
    real_spread = decode_seed_spread(g, real, args.layer, quality, DECODE_SEEDS)
    rows = []
    for name, folder in models:
        samples = torch.load(Path(folder) / f"samples_layer{args.layer}-{BAR_SAMPLER}.pt", map_location="cpu",
                             weights_only=True)[:args.n]
        spread = decode_seed_spread(g, samples, args.layer, quality, DECODE_SEEDS)
        cmp = compare_with_real(real_spread, spread, real, samples)
        rows.append({"model": name, "folder": folder, "class_tv": cmp["class_tv"], "dispersion": cmp["dispersion"],
                     "meets_share_bar": spread["meets"], "mean_shares": mean_shares(spread)})
        print(name, json.dumps(rows[-1]["class_tv"]), flush=True)
    res = {"heldout": str(args.heldout), "n": len(real), "decode_seeds": list(DECODE_SEEDS),
           "real_meets_share_bar": real_spread["meets"], "real_mean_shares": mean_shares(real_spread), "models": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / f"paired_layer{args.layer}.json", res, indent=1)
    classes = list(res["real_mean_shares"])
    lines = [f"# Layer-{args.layer} candidates, paired on one held-out set", "",
             f"Saved bar samples ({BAR_SAMPLER}) of each model against the first {len(real)} states of "
             f"`{args.heldout}` (trained on by none of them), every set decoded with the same {len(DECODE_SEEDS)} "
             f"seeds. The real states meet the 5-15% class-share bar in {real_spread['meets']} of "
             f"{len(DECODE_SEEDS)} decodes. Written by `scripts/layer0_levers.py`.", "",
             "| model | class distance (mean over decodes) | chance at this n | dispersion | meets share bar | "
             + " | ".join(classes) + " |", "|---" * (5 + len(classes)) + "|",
             "| real held-out states | | | 1 | " + f"{real_spread['meets']} of {len(DECODE_SEEDS)} | "
             + " | ".join(f"{res['real_mean_shares'][c]:.3f}" for c in classes) + " |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['class_tv']['mean']:.3f} | {r['class_tv']['chance_mean']:.3f} | "
                     f"{r['dispersion']} | {r['meets_share_bar']} of {len(DECODE_SEEDS)} | "
                     + " | ".join(f"{r['mean_shares'][c]:.3f}" for c in classes) + " |")
    (args.out / f"paired_layer{args.layer}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / f'paired_layer{args.layer}.md'}")


if __name__ == "__main__":
    main()
