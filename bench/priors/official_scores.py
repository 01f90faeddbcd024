"""The official SGILO score checkpoints as registered assets, with the metadata they need.

Each file (a plain state dict, read with ``weights_only=True``) models one tensor of NVIDIA's
FFHQ generator; the normalisation constants are those solve_inverse.yaml uses (one gen_min /
gen_max pair for every layer, the official SGILO code), the SDE is VP (beta 0.1..20, N = 1000), and the
hot-sampler settings come from each network's yaml (the official SGILO code). The official round-k model
``layerK`` is our state after generator layer K-1 (bench.priors.score_prior.OFFICIAL_LAYER_INDEX).
"""
from __future__ import annotations

from bench.core.assets import Asset, get_asset, register_asset
from bench.core.io import UnreadableFileError
from bench.priors.score_vit import StateDictMismatch

GEN_MIN, GEN_MAX = -1.4007, 2.3453
LATENT_MIN, LATENT_MAX = -3.0592, 3.0290
SOURCE = ("the checkpoint zip linked from the official SGILO README (giannisdaras/sgilo), "
          "checkpoints/score_based/vp_sde/{name}.pth (the README says vp/, the yamls say vp_sde/)")

OFFICIAL_SCORES: dict[str, dict] = {
    "latent": {"shape": (512, 18, 1), "our_layer": None, "models": "z-space latents [18, 512] of CSGM inversions",
               "norm": (LATENT_MIN, LATENT_MAX), "hot_steps": 1, "snr": 1e-4},
    "layer1": {"shape": (512, 4, 4), "our_layer": 0, "models": "ILO-inverted FFHQ, NVIDIA block b4 output",
               "norm": (GEN_MIN, GEN_MAX), "hot_steps": 1, "snr": 1e-4},
    "layer2": {"shape": (512, 8, 8), "our_layer": 1, "models": "ILO-inverted FFHQ, NVIDIA block b8 output",
               "norm": (GEN_MIN, GEN_MAX), "hot_steps": 1, "snr": 1e-4},
    "layer3": {"shape": (512, 16, 16), "our_layer": 2, "models": "ILO-inverted FFHQ, NVIDIA block b16 output",
               "norm": (GEN_MIN, GEN_MAX), "hot_steps": 1, "snr": 1e-4},
    "syn_layer3": {"shape": (512, 16, 16), "our_layer": 2, "models": "b16 outputs of Gaussian inputs ('syn')",
                   "norm": (GEN_MIN, GEN_MAX), "hot_steps": 5, "snr": 5e-3},
}
SDE = {"type": "VP", "beta_min": 0.1, "beta_max": 20.0, "N": 1000}

for _name, _meta in OFFICIAL_SCORES.items():
    register_asset(Asset(
        f"sgilo-score-{_name}", f"sgilo_{_name}.pth",
        f"official SGILO score network '{_name}' ({_meta['models']}; tensor {list(_meta['shape'])})",
        SOURCE.format(name=_name) + f"; copy {_name}.pth here as sgilo_{_name}.pth", size_hint="280 MB",
        meta={**_meta, "sde": SDE, "official_name": _name}))


def load_official_score(name: str, path=None):
    """A ScorePrior from an official checkpoint, with the normalisation and metadata above."""
    from bench.priors.score_prior import ScorePrior

    if name not in OFFICIAL_SCORES:
        raise KeyError(f"unknown official score network {name!r}; known: {', '.join(OFFICIAL_SCORES)}")
    asset = get_asset(f"sgilo-score-{name}")
    lo, hi = OFFICIAL_SCORES[name]["norm"]
    prior = ScorePrior.from_official_file(path or asset.require(), name, lo, hi)
    prior.metadata.update({k: v for k, v in asset.meta.items() if k != "shape"} | {"shape": list(asset.meta["shape"])})
    return prior


# The official default (configs/solve_inverse.yaml, the official SGILO code): gen_configs
# [null, layer1, layer2, syn_layer3], i.e. the score of the state SGILO's round 1, 2, 3 optimises.
# Keyed by our layer through each file's metadata: layer1 -> 0, layer2 -> 1, syn_layer3 -> 2
# (``layer3`` models the same [512, 16, 16] tensor; the official default prefers syn_layer3).
FFHQ_DEFAULT_SCORES: tuple[str, ...] = ("layer1", "layer2", "syn_layer3")


def ffhq_score_assets() -> dict[int, str]:
    """{our layer: asset name} of the score models an FFHQ prior uses (the official default)."""
    out: dict[int, str] = {}
    for name in FFHQ_DEFAULT_SCORES:
        layer = OFFICIAL_SCORES[name]["our_layer"]
        if layer in out:
            raise ValueError(f"two default score networks for layer {layer}: {out[layer]} and {name}")
        out[layer] = f"sgilo-score-{name}"
    return out


def load_ffhq_scores(device=None) -> tuple[dict[int, object], dict[int, str]]:
    """(scores present in the cache keyed by our layer, {layer: missing-file message} for the others).

    An absent or unreadable file is not an error here: CSGM, ILO and SGILO rounds at temperature 0
    need no score; a SGILO round that does fails naming the file and what was wrong with it
    (``Prior.missing_scores``), and nothing else fails because of it."""
    scores: dict[int, object] = {}
    missing: dict[int, str] = {}
    for layer, asset_name in ffhq_score_assets().items():
        asset = get_asset(asset_name)
        if not asset.exists():
            missing[layer] = asset.missing_message()
            continue
        try:
            prior = load_official_score(asset.meta["official_name"], asset.path)
        except (UnreadableFileError, StateDictMismatch) as err:
            missing[layer] = f"{asset.path} cannot be used: {err}"
            continue
        scores[layer] = prior if device is None else prior.to(device)
    return scores, missing
