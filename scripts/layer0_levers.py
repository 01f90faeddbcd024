"""Paired comparison of layer-score candidates: each model's saved bar samples (``samples_layer<k>-pc.pt``, written
by ``bench.scores evaluate``) against ONE held-out set that none of them trained on, decoded with the same seeds.

Why: each evaluation measures its model against its own store's held-out states, and a model trained on a larger
store (more inversions) has another held-out set, so their class distances are not paired. The 8000-image store's
last tenth is unseen by every candidate (the 4000-image store is its prefix), so it pairs them all.

    python scripts/layer0_levers.py --heldout runs/scores-embedded-8k/layer0_heldout.pt \
        --model installed=runs/scores-embedded/score_layer0 --model wide=runs/scores-embedded/score_layer0-wide ... \
        --out results/embedded/score-layer0-levers

``--generator-states N`` adds the generator's own layer states (N ordinary samples: z ~ N(0, I), fresh noise) as a
row, and a column with each model's class distance to them: is a prior's class skew its own, or its data's?
``--model NAME=FILE.pt`` takes a samples file directly instead of an evaluation folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.core.io import atomic_write_json
from bench.priors.catalog import load_prior
from bench.scores.evaluate import BAR_SAMPLER, DECODE_SEEDS, compare_with_real, decode_seed_spread, quality_measure
from bench.scores.train import syn_batch


def mean_shares(spread: dict) -> dict:
    rows = spread["decodes"]
    return {k: round(sum(r["shares"][k] for r in rows) / len(rows), 3) for k in rows[0]["shares"]}


def mean_fid(spread: dict) -> float:
    """Classifier-space FID against the test images, averaged over the decodes."""
    return round(sum(r["fid_vs_test"] for r in spread["decodes"]) / len(spread["decodes"]), 3)


def load_samples(where: str, layer: int) -> torch.Tensor:
    """A model's bar samples: a .pt file, or the ``samples_layer<k>-<sampler>.pt`` of an evaluation folder."""
    path = Path(where)
    path = path if path.suffix == ".pt" else path / f"samples_layer{layer}-{BAR_SAMPLER}.pt"
    return torch.load(path, map_location="cpu", weights_only=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout", type=Path, nargs="+", required=True,
                    help="real states (one or more .pt files, concatenated), none of the models trained on")
    ap.add_argument("--heldout-note", default="trained on by none of them",
                    help="what the report says about the real states")
    ap.add_argument("--model", action="append", required=True,
                    help="NAME=FOLDER with the saved bar samples, or NAME=FILE.pt")
    ap.add_argument("--generator-states", type=int, default=0, metavar="N",
                    help="also compare with the layer states of N ordinary generator samples (0: no)")
    ap.add_argument("--seed", type=int, default=777, help="seed of the generator states")
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
    real = torch.cat([torch.load(f, map_location="cpu", weights_only=True) for f in args.heldout])[:args.n]
    real_spread = decode_seed_spread(g, real, args.layer, quality, DECODE_SEEDS)
    gs = None
    if args.generator_states:  # the score pipeline's own draw of generator states (z ~ N(0, I), fresh noise)
        with torch.no_grad():
            gs = syn_batch(g, args.layer, args.generator_states, generator=torch.Generator().manual_seed(args.seed))
        g_spread = decode_seed_spread(g, gs, args.layer, quality, DECODE_SEEDS)
        models = [("generator's own states", None)] + models
    rows = []
    for name, folder in models:
        samples = gs if folder is None else load_samples(folder, args.layer)[:args.n]
        spread = g_spread if folder is None else decode_seed_spread(g, samples, args.layer, quality, DECODE_SEEDS)
        cmp = compare_with_real(real_spread, spread, real, samples)
        rows.append({"model": name, "folder": folder, "class_tv": cmp["class_tv"], "dispersion": cmp["dispersion"],
                     "meets_share_bar": spread["meets"], "mean_shares": mean_shares(spread),
                     "mean_norm": round(float(samples.flatten(1).norm(dim=1).mean()), 3), "fid": mean_fid(spread)})
        if gs is not None and folder is not None:
            rows[-1]["class_tv_to_generator"] = compare_with_real(g_spread, spread, gs, samples)["class_tv"]
        print(name, json.dumps(rows[-1]["class_tv"]), flush=True)
    res = {"heldout": [str(f) for f in args.heldout], "n": len(real), "decode_seeds": list(DECODE_SEEDS),
           "real_meets_share_bar": real_spread["meets"], "real_mean_shares": mean_shares(real_spread),
           "real_mean_norm": round(float(real.flatten(1).norm(dim=1).mean()), 3), "real_fid": mean_fid(real_spread),
           "generator_states": {"n": len(gs), "seed": args.seed} if gs is not None else None, "models": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / f"paired_layer{args.layer}.json", res, indent=1)
    classes = list(res["real_mean_shares"])
    to_g = gs is not None
    files = ", ".join(f"`{f}`" for f in args.heldout)
    lines = [f"# Layer-{args.layer} candidates, paired on one held-out set", "",
             f"Saved bar samples ({BAR_SAMPLER}) of each model against the first {len(real)} states of {files} "
             f"({args.heldout_note}), every set decoded with the same {len(DECODE_SEEDS)} seeds. The real states meet "
             f"the 5-15% class-share bar in {real_spread['meets']} of {len(DECODE_SEEDS)} decodes. "
             + (f"The generator's own states: {len(gs)} ordinary samples (seed {args.seed}); the column 'to G' is "
                "each model's class distance to them. " if to_g else "")
             + "Written by `scripts/layer0_levers.py`.", "",
             "| model | class distance (mean over decodes) | chance at this n | " + ("to G | " if to_g else "")
             + "dispersion | mean norm | FID (mean over decodes) | meets share bar | " + " | ".join(classes) + " |",
             "|---" * (7 + to_g + len(classes)) + "|",
             "| real states (the files above) | | | " + ("| " if to_g else "")
             + f"1 | {res['real_mean_norm']:.2f} | {res['real_fid']:.2f} | "
             + f"{real_spread['meets']} of {len(DECODE_SEEDS)} | "
             + " | ".join(f"{res['real_mean_shares'][c]:.3f}" for c in classes) + " |"]
    for r in rows:
        to_g_mean = r.get("class_tv_to_generator", {}).get("mean")
        g_cell = "" if not to_g else (f"{to_g_mean:.3f} | " if to_g_mean is not None else "| ")
        lines.append(f"| {r['model']} | {r['class_tv']['mean']:.3f} | {r['class_tv']['chance_mean']:.3f} | {g_cell}"
                     f"{r['dispersion']} | {r['mean_norm']:.2f} | {r['fid']:.2f} | "
                     f"{r['meets_share_bar']} of {len(DECODE_SEEDS)} | "
                     + " | ".join(f"{r['mean_shares'][c]:.3f}" for c in classes) + " |")
    (args.out / f"paired_layer{args.layer}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / f'paired_layer{args.layer}.md'}")


if __name__ == "__main__":
    main()
