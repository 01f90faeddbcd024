"""The FFHQ world end to end on fake assets: random weights saved in the published formats.

A module fixture writes, into a temporary ``$SGILO_BENCH_CACHE``:

- ``stylegan2-ffhq-config-f.pt``: rosinality's layout (``{'g_ema': state_dict, 'latent_avg'}``)
  of the full 1024 config-f generator (size 1024, style 512, 8 mapping layers, channel
  multiplier 2: 30.4M parameters);
- ``ffhq.pkl``: the same weights as a stylegan2-ada network pickle (persistent modules whose
  ``module_src`` would write a marker file if it were ever executed);
- ``sgilo_layer1.pth``, ``sgilo_layer2.pth``: official score networks in their DataParallel
  layout (``module.`` keys), the two SGILO's default FFHQ grid uses (rounds 1 and 2);
  ``sgilo_syn_layer3.pth`` is left out on purpose (only a 4th SGILO round needs it);
- ``gaussian_fit.pt`` / ``sgilo_gaussian_fit.pt``: ``{'mean', 'std'}`` fits (2000 samples);

and random PNGs in ``$SGILO_BENCH_FFHQ_DIR/{tune,test,fairness}``. Then one step per round of
every method runs at 1024 x 1024 on CPU through ``bench.harness.runner.run_cell`` (the sweep's cell
runner) with the sweep's own FFHQ grid points, steps cut to 1 per round and one image.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_nvidia import nvidia_params, write_fake_pkl  # the NVIDIA-layout weights and pickle writer

CONFIG_F = dict(img_resolution=1024, channel_base=32768, channel_max=512, w_dim=512, n_mlp=8)


def _clear_catalog_caches() -> None:
    from bench.priors import catalog

    catalog._cached.cache_clear()
    catalog._cached_images.cache_clear()


def _write_pngs(folder: Path, names: list[str], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:  # small random images: the loader resizes them to 1024 (the real path)
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(folder / f"{n}.png")


@pytest.fixture(scope="module")
def ffhq_world(tmp_path_factory):
    from bench.harness import runner
    from bench.priors.mapping_proxy import fit_gaussian
    from bench.priors.nvidia import nvidia_to_rosinality
    from bench.priors.score_vit import build_official
    from bench.priors.stylegan2 import Generator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    root = tmp_path_factory.mktemp("ffhq-world")
    cache, images, marker = root / "cache", root / "images", root / "pickled-code-ran"
    cache.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("SGILO_BENCH_CACHE", str(cache))
    mp.setenv("SGILO_BENCH_FFHQ_DIR", str(images))
    _clear_catalog_caches()
    lpips_before = dict(runner._LPIPS_CACHE)  # the runner caches LPIPS (unavailable with this cache) per device

    P = nvidia_params(**CONFIG_F, seed=0)  # NVIDIA names; converted below to rosinality's
    rsd, cfg, w_avg = nvidia_to_rosinality(P)
    torch.save({"g_ema": rsd, "latent_avg": w_avg}, cache / "stylegan2-ffhq-config-f.pt")
    write_fake_pkl(cache / "ffhq.pkl", P, marker, mp)
    g = Generator(**cfg)
    g.load_state_dict(rsd, strict=False)
    fit = fit_gaussian(g.eval().requires_grad_(False), n=2000)
    torch.save(fit, cache / "gaussian_fit.pt")
    torch.save(fit, cache / "sgilo_gaussian_fit.pt")
    del P, rsd, g
    for name in ("layer1", "layer2"):
        torch.manual_seed({"layer1": 1, "layer2": 2}[name])
        net = build_official(name)
        torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, cache / f"sgilo_{name}.pth")
        del net
    _write_pngs(images / "tune", [f"{i:05d}" for i in range(8)], seed=1)  # the protocol tunes on 8
    _write_pngs(images / "test", ["00100"], seed=2)
    _write_pngs(images / "fairness", ["man_00002", "woman_00003"], seed=3)
    print(f"\nfake FFHQ assets written in {time.perf_counter() - t0:.1f} s")
    yield {"cache": cache, "images": images, "marker": marker}
    _clear_catalog_caches()
    runner._LPIPS_CACHE.clear()
    runner._LPIPS_CACHE.update(lpips_before)
    mp.undo()
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- dry runs
def test_empty_cache_dry_run_lists_every_missing_file(tmp_path, capsys, monkeypatch):
    from bench.experiments.fairness.cli import main as fairness_main
    from bench.harness.sweep.cli import main as sweep_main
    from bench.priors.catalog import missing_assets

    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("SGILO_BENCH_FFHQ_DIR", raising=False)
    args = ["--tasks", "inpaint", "--executor", "local", "--wandb", "disabled", "--dry-run"]
    assert sweep_main(args + ["--prior", "ffhq"]) == 2
    text = capsys.readouterr().out
    listed = text.split("missing for prior 'ffhq'")[1]
    for name, size in [("stylegan2-ffhq-config-f.pt", "364 MB"), ("sgilo_layer1.pth", "280 MB"),
                       ("sgilo_layer2.pth", "280 MB")]:
        line = next(ln for ln in listed.splitlines() if name in ln)
        assert size in line and str(tmp_path / "empty-cache" / name) in line and "Source:" in line
    assert "SGILO_BENCH_FFHQ_DIR" in listed
    assert "sgilo_syn_layer3.pth" not in listed  # the default grid's SGILO runs 3 rounds: layers 0 and 1
    assert "ffhq.pkl" not in listed.replace("convert ffhq.pkl", "")  # ffhq-ada's file, not ffhq's

    # no SGILO: no score file is needed
    assert sweep_main(args + ["--prior", "ffhq", "--methods", "csgm,ilo,ilo_unreg"]) == 2
    assert "sgilo_" not in capsys.readouterr().out
    # ffhq-ada: NVIDIA's pickle instead of rosinality's .pt, the same score files
    assert sweep_main(args + ["--prior", "ffhq-ada"]) == 2
    listed = capsys.readouterr().out.split("missing for prior 'ffhq-ada'")[1]
    assert "put the file ffhq.pkl" in listed and "sgilo_layer1.pth" in listed and "stylegan2-ffhq-config-f" not in listed
    # the catalog lists a score file exactly when a run needs its layer
    assert any("sgilo_syn_layer3.pth" in m for m in missing_assets("ffhq", [2]))
    assert not any("sgilo_" in m for m in missing_assets("ffhq"))
    # a real run stops before planning cells
    assert sweep_main([a for a in args if a != "--dry-run"] + ["--prior", "ffhq", "--out", str(tmp_path / "x")]) == 2

    # the fairness command (ILO + SGILO defaults: 3 SGILO rounds -> layers 0 and 1)
    assert fairness_main(["--prior", "ffhq", "--dry-run", "--executor", "local", "--wandb", "disabled",
                          "--out", str(tmp_path / "fair")]) == 2
    listed = capsys.readouterr().out.split("missing (the run would stop)")[1]
    for name in ["stylegan2-ffhq-config-f.pt", "sgilo_layer1.pth", "sgilo_layer2.pth", "open_clip_ViT-B-32_openai.bin",
                 "SGILO_BENCH_FFHQ_DIR"]:
        assert name in listed, name
    assert "sgilo_syn_layer3.pth" not in listed


def test_fake_assets_dry_run_reports_nothing_missing(ffhq_world, tmp_path, capsys):
    from bench.experiments.fairness.cli import main as fairness_main
    from bench.harness.sweep.cli import main as sweep_main
    from bench.priors.catalog import missing_assets

    for prior in ("ffhq", "ffhq-ada"):
        assert sweep_main(["--tasks", "inpaint,cs", "--prior", prior, "--executor", "local", "--wandb", "disabled",
                           "--n-test", "1", "--dry-run", "--allow-no-lpips", "--out", str(tmp_path / prior)]) == 0
        text = capsys.readouterr().out
        assert "tune stage" in text and "missing for prior" not in text and "problems" not in text, text
        assert missing_assets(prior, [0, 1]) == []
    assert [m for m in missing_assets("ffhq", [2]) if "sgilo_syn_layer3.pth" in m]  # left out on purpose

    # fairness: the generator, scores and images are there; only CLIP's weights (not faked: 600 MB) are not
    assert fairness_main(["--prior", "ffhq", "--dry-run", "--executor", "local", "--wandb", "disabled",
                          "--out", str(tmp_path / "fair")]) == 2  # CLIP's weights are missing
    text = capsys.readouterr().out
    assert "man 1, woman 1" in text
    listed = text.split("missing (the run would stop):")[1].strip().splitlines()
    assert len(listed) == 1 and "open_clip_ViT-B-32_openai.bin" in listed[0], listed


# ----------------------------------------------------------------------------- priors
def test_ffhq_priors_load_generator_and_official_scores(ffhq_world):
    from bench.priors.catalog import load_prior
    from bench.priors.official_scores import OFFICIAL_SCORES

    rosinality, ada = load_prior("ffhq"), load_prior("ffhq-ada")
    assert not ffhq_world["marker"].exists()  # the pickle's module_src never ran
    for prior in (rosinality, ada):
        assert prior.image_shape == (3, 1024, 1024)
        assert sorted(prior.scores) == [0, 1] and sorted(prior.missing_scores) == [2]
        assert "sgilo_syn_layer3.pth" in prior.missing_scores[2]
        for layer, name in [(0, "layer1"), (1, "layer2")]:
            s = prior.scores[layer]
            assert s.layer == layer and s.metadata["official_name"] == name
            assert tuple(s.metadata["shape"]) == OFFICIAL_SCORES[name]["shape"] == prior.generator.layer_shape(layer)
    # one set of weights in two published formats: the same generator, the same layer tensors
    sd_r, sd_a = rosinality.generator.state_dict(), ada.generator.state_dict()
    assert sd_r.keys() == sd_a.keys()
    for k in sd_r:
        torch.testing.assert_close(sd_r[k], sd_a[k], rtol=0, atol=0, msg=k)
    g = rosinality.generator
    w = torch.randn(1, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(0))
    feats = g.split(w, g.stored_noises(1), 2).features
    torch.testing.assert_close(feats, ada.generator.split(w, ada.generator.stored_noises(1), 2).features)
    assert feats.shape == (1, 512, 16, 16) and torch.isfinite(feats).all()
    # a score network runs on its layer's tensor
    h = g.split(w, g.stored_noises(1), 0).features
    assert torch.isfinite(rosinality.scores[0].score(h, 0.01)).all()


def test_sgilo_round_without_its_score_file_names_the_file(ffhq_world):
    """syn_layer3 is absent: only a SGILO round that optimises the state after layer 2 fails."""
    import methods
    from bench.priors.catalog import load_prior
    from methods._core import PerImageRNG
    from methods._rounds import RoundContext
    from methods.sgilo import SGILOHook, SGILOParams

    prior = load_prior("ffhq")
    sgilo = methods.get("sgilo")
    p = SGILOParams(steps=(1, 1, 1, 1), temperature=(0.0, 0.1, 0.1, 0.1))
    assert sgilo.score_layers(p) == {0, 1, 2}
    rng = PerImageRNG([0], torch.device("cpu"))
    hook = SGILOHook(p)
    hook.begin_round(RoundContext(prior, p, rng, 2, 2, 1))  # layer 1's score is there
    assert hook.score is prior.scores[1]
    with pytest.raises(ValueError, match=r"layer 2.*sgilo_syn_layer3\.pth"):
        hook.begin_round(RoundContext(prior, p, rng, 3, 3, 1))
    hook.begin_round(RoundContext(prior, dataclasses.replace(p, temperature=(0.0, 0.1, 0.1, 0.0)), rng, 3, 3, 1))


# ----------------------------------------------------------------------------- the pipeline
ONE_STEP = {"csgm": 1, "ilo": [1, 1], "ilo_unreg": [1, 1], "sgilo": [1, 1, 1]}


@pytest.mark.slow  # ~2.3 min at 1 thread on this 2-core machine (in the normal suite: not skipped)
def test_one_step_of_each_method_at_1024(ffhq_world):
    """The sweep's own FFHQ tuning cells (first grid point per method), one image, 1 step per round:
    CSGM; ILO and ILO-unregularized over layers 0-1; SGILO's 3 rounds with the official layer1 and
    layer2 score networks in rounds 1 and 2."""
    from bench.harness.runner import run_cell, score_layers
    from bench.harness.sweep.config import resolve
    from bench.harness.sweep.plan import plan_tune

    cfg = resolve(("inpaint",), "ffhq", levels={"inpaint": (0.5,)}, out=Path("runs/ffhq-fake"))
    tune = plan_tune(cfg)
    assert score_layers(tune) == {0, 1}
    cells = []
    for m, steps in ONE_STEP.items():
        first = next(c for c in tune if c.method == m)
        cells.append(dataclasses.replace(first, params={**first.params, "steps": steps}, image_indices=(0,)))
    for cell in cells:
        t0 = time.perf_counter()
        res = run_cell(cell, device="cpu")
        print(f"{cell.method}: {time.perf_counter() - t0:.1f} s")
        assert res.status == "ok", (cell.method, res.reason, res.rows[0].get("detail"))
        row = res.rows[0]
        assert row["image_id"] == "ffhq-00000.png" and math.isfinite(row["mse"]) and math.isfinite(row["measurement_loss"])
        n_rounds = 1 if cell.method == "csgm" else len(ONE_STEP[cell.method])
        # the FFHQ world runs the official mode: SGILO returns its last iterate (no final render), the others
        # render the state after their last step too
        assert cell.params["data_term"] == "official" and row["objective_note"].startswith("LPIPS")
        assert row["nfe_generator"] == n_rounds + (cell.params.get("best_over") != "last")
        assert (row["nfe_score"] > 0) == (cell.method == "sgilo")
