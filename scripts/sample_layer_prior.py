"""Bar-sampler samples of a layer score model (the paired comparisons of scripts/layer0_levers.py take them):
    python scripts/sample_layer_prior.py MODEL.pt OUT.pt N SEED
"""
import sys

import torch

from bench.priors.score_prior import ScorePrior
from bench.scores.evaluate import langevin_states

torch.set_grad_enabled(False)
sp = ScorePrior.load(sys.argv[1])
torch.save(langevin_states(sp, int(sys.argv[3]), torch.Generator().manual_seed(int(sys.argv[4]))), sys.argv[2])
print("wrote", sys.argv[2])
