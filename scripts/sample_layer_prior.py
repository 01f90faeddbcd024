"""Bar-sampler samples of a layer score model (the paired comparisons of scripts/layer0_levers.py take them):
    python scripts/sample_layer_prior.py MODEL.pt OUT.pt N SEED
"""
import argparse

import torch

from bench.priors.score_prior import ScorePrior
from bench.scores.evaluate import langevin_states


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a score model: a training run's score_prior.pt or an installed score_layer<k>.pt")
    ap.add_argument("out", help="where the samples (a tensor of layer states) are saved")
    ap.add_argument("n", type=int, help="samples to draw")
    ap.add_argument("seed", type=int, help="sampler seed")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    sp = ScorePrior.load(args.model)
    torch.save(langevin_states(sp, args.n, torch.Generator().manual_seed(args.seed)), args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
