"""Issue-14 candidate (not installed): the installed layer-0 recipe (adaLN, per-channel, likelihood-IS, 32k steps)
trained on the generator's own layer-0 states (fresh z ~ N(0, I) and noise per batch: unlimited data) instead of
ILO inversions of real images, which the paper trains on. results/embedded/README.md says what it measured.
    python scripts/train_layer0_gstates.py runs/scores-gstates [MINUTES]   (resumes)
"""
import sys
from pathlib import Path

import torch

from bench.priors.catalog import load_prior
from bench.scores.train import ScoreTrainConfig, syn_batch, train

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
g = load_prior("embedded").generator.cpu().eval()
held = out / "layer0_heldout_gstates.pt"
if not held.exists():
    with torch.no_grad():
        torch.save(syn_batch(g, 0, 512, generator=torch.Generator().manual_seed(4242)), held)
cfg = ScoreTrainConfig(out=str(out / "score_layer0-gstates"), source="syn", generator="", layer=0, steps=32000,
                       minutes=float(sys.argv[2]) if len(sys.argv) > 2 else 120.0, threads=1, device="cpu",
                       stats="per_channel", time_conditioning="adaln", heldout=str(held), eval_every=500)
print(f"wrote {train(cfg, g=g)}")
