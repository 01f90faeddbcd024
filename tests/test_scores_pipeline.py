"""The score-prior pipeline (python -m bench.scores) end to end at toy scale: invert -> train ->
install for a world defined in the test, resumption, and the invert stage on a real (local) SLURM."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from slurm_utils import SLURM_PARTITION, require_slurm  # noqa: F401 - fixture

from bench.harness.store import ResultStore
from bench.priors import catalog
from bench.priors.score_prior import ScorePrior
from bench.priors.tiny import TINY_WORLD, tiny_generator
from bench.priors.world import PriorSpec
from bench.scores.cli import main

ROOT = Path(__file__).resolve().parents[1]
INSTALLED: dict[str, Path] = {}


def _load_toy(device):
    from bench.priors.prior import Prior

    prior = Prior.from_generator(tiny_generator(), name="toy-scores", n_fit=2000).to(device)
    prior.scores = {int(p.stem.removeprefix("score_layer")): ScorePrior.load(p)
                    for p in sorted(INSTALLED["dir"].glob("score_layer*.pt"))}
    return prior


TOY = PriorSpec("toy-scores", "tiny generator whose installed score priors live in a test folder", _load_toy,
                TINY_WORLD, n_layers=3, for_results=False, score_dir=lambda: INSTALLED["dir"])


def test_invert_train_install_for_a_world_defined_here(tmp_path):
    INSTALLED["dir"] = tmp_path / "installed"
    INSTALLED["dir"].mkdir()
    catalog.register_prior(TOY)
    out = tmp_path / "scores"
    common = ["--prior", "toy-scores", "--out", str(out)]
    inv = ["invert", *common, "-n", "10", "--batch", "4", "--steps", "3,3,3", "--executor", "debug", "--wandb", "disabled"]
    assert main(inv) == 0
    layer0, layer1 = torch.load(out / "layer0.pt"), torch.load(out / "layer1.pt")
    g = tiny_generator()
    assert layer0.shape == (9, *g.layer_shape(0)) and layer1.shape == (9, *g.layer_shape(1))
    assert torch.load(out / "layer1_heldout.pt").shape[0] == 1  # the last tenth, never trained on
    assert not (out / "layer2.pt").exists()  # only optimised states (rounds 1, 2 -> layers 0, 1) are kept
    summary = json.loads((out / "inversions.json").read_text())
    assert summary["images"] == 10 and summary["cells_failed"] == 0 and summary["mse_mean"] > 0
    rows = ResultStore(out).rows()
    assert len(rows) == 10 and {r["image_set"] for r in rows} == {"train"}  # training images, never test ones
    # a second run resumes: nothing is recomputed and the merged states are the same
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert main(inv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == before
    assert torch.equal(torch.load(out / "layer0.pt"), layer0)

    assert main(["train", *common, "--layer", "1", "--train-steps", "4", "--eval-every", "2", "--threads", "1"]) == 0
    assert main(["evaluate", *common, "--layer", "1", "--samples", "4"]) == 0
    model = out / "score_layer1"
    ev = json.loads((model / "evaluation_layer1.json").read_text())
    assert set(ev["eps_mse"]) == {"t=0.01", "t=0.1", "t=0.5"} and ev["trivial_eps_mse"] == 1.0
    assert (model / "langevin_layer1.png").exists() and "langevin_decoded" not in ev  # tiny has no quality measure
    assert ev["decode_rgb"] == "own" and torch.load(model / "samples_layer1-pc.pt").shape[0] == ev["n_samples"]  # kept to re-decode
    assert [s for s, _ in ev["training"]["points"]] == [2, 4]  # the held-out curve, every --eval-every steps
    assert ScorePrior.load(model / "score_prior.pt").metadata["eval_on"] == "held-out states"
    # a named variant trains beside the default, and install picks the one asked for
    assert main(["train", *common, "--layer", "1", "--train-steps", "2", "--threads", "1", "--variant", "adaln",
                 "--time-conditioning", "adaln", "--dim", "48", "--depth", "3", "--heads", "3"]) == 0
    assert main(["install", *common, "--layer", "1", "--variant", "adaln"]) == 0
    cfg = catalog.load_prior("toy-scores").scores[1].config
    assert (cfg.time_conditioning, cfg.dim, cfg.depth, cfg.heads) == ("adaln", 48, 3, 3)  # the size options reach it
    assert main(["install", *common, "--layer", "1"]) == 0
    assert catalog.load_prior("toy-scores").scores[1].config.time_conditioning == "official"
    # the card lists the evaluated model, marks it installed, and draws its curve
    assert main(["card", *common, "--results", str(tmp_path / "card")]) == 0
    card = (tmp_path / "card" / "scores.md").read_text()
    assert "| layer 1 `score_layer1`" in card and "| yes |" in card
    assert (tmp_path / "card" / "score_training_curves.png").exists()
    assert (INSTALLED["dir"] / "scores.md").read_text() == card
    # run folders are not committed: the card carries each model's measured files and, with the run folder gone
    # (a fresh checkout), writes the same card from them, installed mark included
    carried = tmp_path / "card" / "score-models" / "score_layer1"
    assert {"evaluation_layer1.json", "log.jsonl", "model.json"} <= {p.name for p in carried.iterdir()}
    assert not (carried / "score_prior.pt").exists()  # weights stay out of git
    import shutil
    shutil.rmtree(out)
    assert main(["card", *common, "--results", str(tmp_path / "card")]) == 0
    assert (tmp_path / "card" / "scores.md").read_text() == card
    assert main(["install", *common, "--layer", "0"]) == 2  # not trained: a message, not a traceback
    # the card of a candidate (none of its models is the installed one) leaves the installed models' card alone
    (INSTALLED["dir"] / "score_layer1.pt").unlink()
    assert main(["card", *common, "--results", str(tmp_path / "card")]) == 0
    assert "| no |" in (tmp_path / "card" / "scores.md").read_text()
    assert (INSTALLED["dir"] / "scores.md").read_text() == card


def test_training_record_stands_in_for_a_lost_log(tmp_path):
    """A model whose training log is gone keeps the curve figures measured from it (training.json, with its
    source); a log, when present, is measured again and wins."""
    from bench.scores.evaluate import training_record

    assert training_record(tmp_path) == {}
    record = {"relative_change_over_tail": -0.0183, "tail_fraction": 0.25, "points": [], "source": "card of commit x"}
    (tmp_path / "training.json").write_text(json.dumps(record))
    assert training_record(tmp_path) == record
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps({"step": s, "eval_dsm": v})
                                                  for s, v in [(100, 2.0), (300, 1.5), (400, 1.2)]))
    curve = training_record(tmp_path)
    assert [tuple(p) for p in curve["points"]] == [(100, 2.0), (300, 1.5), (400, 1.2)]
    assert curve["relative_change_over_tail"] == round((1.2 - 1.5) / 1.5, 4)  # from step 300 = 3/4 of 400


def test_invert_dry_run_states_cost_and_refuses_too_many_images(capsys):
    assert main(["invert", "--prior", "tiny", "-n", "64", "--steps", "5,5", "--dry-run", "--executor", "local"]) == 0
    out = capsys.readouterr().out
    assert "64 images in 4 cells of 16" in out and "640 image-steps" in out
    assert main(["invert", "--prior", "tiny", "-n", "65", "--dry-run", "--executor", "local"]) == 2
    assert "training set has 64 images" in capsys.readouterr().err


def test_invert_with_ilo_projections(tmp_path, capsys):
    """--method ilo runs ILO with its l1-ball radius as the inverter (the paper's wording); --radius needs it."""
    out = tmp_path / "scores-ilo"
    inv = ["invert", "--prior", "tiny", "--out", str(out), "-n", "8", "--batch", "4", "--steps", "2,2,2",
           "--executor", "debug", "--wandb", "disabled"]
    assert main([*inv, "--radius", "0.01"]) == 2
    assert "only with --method ilo" in capsys.readouterr().err
    assert main([*inv, "--method", "ilo", "--radius", "0.01", "--dry-run"]) == 0
    assert "ILO (l1-ball projections)" in capsys.readouterr().out
    assert main([*inv, "--method", "ilo", "--radius", "0.01"]) == 0
    rows = ResultStore(out).rows()
    assert {r["method"] for r in rows} == {"ilo"} and len(rows) == 8
    assert all(json.loads(r["params"])["radius_state"] == [0.01] for r in rows)
    assert torch.load(out / "layer0.pt").shape[0] + torch.load(out / "layer0_heldout.pt").shape[0] == 8
    summary = json.loads((out / "inversions.json").read_text())  # the store says how it was inverted
    assert (summary["inverter"], summary["radius_state"]) == ("ilo", [0.01])


@pytest.mark.slurm
def test_invert_stage_through_local_slurm(require_slurm, tmp_path):
    out = tmp_path / "scores-slurm"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_SLURM_PARTITION": SLURM_PARTITION}
    p = subprocess.run([sys.executable, "-m", "bench.scores", "invert", "--prior", "tiny", "-n", "8", "--batch", "4",
                        "--steps", "2,2,2", "--out", str(out), "--executor", "slurm", "--slurm-partition", require_slurm,
                        "--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem-gb", "1", "--slurm-time-min", "10",
                        "--chunk-size", "1", "--wandb", "disabled"],
                       capture_output=True, text=True, timeout=400, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert torch.load(out / "layer1.pt").shape[0] + torch.load(out / "layer1_heldout.pt").shape[0] == 8
    assert len(list((out / "slurm").glob("*_submission.sh"))) >= 1  # it really went through sbatch


def test_mean_style_decode_lets_the_state_decide():
    """The diagnostic decode gives every image the same (average) style: one state decodes to nearly one image
    whatever the draw, while the bars' fresh-style decode changes it; an unknown style is refused."""
    from bench.embedded.train_gan import make_generator
    from bench.scores.evaluate import decode_states

    torch.manual_seed(0)
    g = make_generator(dict(size=32, style_dim=16, n_mlp=1, channels={4: 16, 8: 16, 16: 8, 32: 8},
                            img_channels=1)).eval()
    h = torch.randn(1, *g.layer_shape(1), generator=torch.Generator().manual_seed(1))
    h4 = h.expand(4, *h.shape[1:])
    fresh = decode_states(g, h4, 1, torch.Generator().manual_seed(2), "fresh")
    mean = decode_states(g, h4, 1, torch.Generator().manual_seed(2), "mean")
    spread = lambda x: (x - x.mean(0, keepdim=True)).pow(2).mean().item()  # noqa: E731
    assert spread(mean) < 0.2 * spread(fresh)
    with pytest.raises(ValueError, match="fresh"):
        decode_states(g, h4, 1, torch.Generator(), "other")


def test_layer_rgb_is_the_layers_own_term_of_the_skip_sum():
    """Generator.layer_rgb gives the ToRGB term a layer adds to the skip sum: the whole sum at layer 0, the sum
    minus the upsampled previous sum after; decode_states(rgb="own") starts the sum from it, "dropped" does not."""
    import torch

    from bench.priors.stylegan2 import Generator
    from bench.scores.evaluate import decode_states

    torch.manual_seed(0)
    g = Generator(16, 8, 2, channels={4: 8, 8: 8, 16: 8}, img_channels=1).eval()
    w = torch.randn(2, g.n_latent, 8)
    noises = g.make_noise(2, generator=torch.Generator().manual_seed(1))
    s0, s1 = g.split(w, noises, 0), g.split(w, noises, 1)
    torch.testing.assert_close(g.layer_rgb(0, s0.features, w), s0.skip)
    torch.testing.assert_close(g.layer_rgb(1, s1.features, w), s1.skip - g.to_rgbs[0].upsample(s0.skip))
    own = decode_states(g, s1.features, 1, torch.Generator().manual_seed(2), rgb="own")
    dropped = decode_states(g, s1.features, 1, torch.Generator().manual_seed(2), rgb="dropped")
    assert own.shape == dropped.shape and not torch.allclose(own, dropped)
    with pytest.raises(ValueError, match="rgb must be one of"):
        decode_states(g, s1.features, 1, torch.Generator(), rgb="all")


def test_sampler_study_varies_only_the_sampler_and_resumes(tmp_path, monkeypatch):
    """bench.scores samplers: one row per sampler, each the bars' own decode of that sampler's samples (same
    seed and n), the real states decoded alike, resumable, and a clear error on changed settings."""
    import types

    from bench.priors.score_vit import ScoreViT, ScoreViTConfig
    from bench.scores import evaluate as ev

    def fake_quality(images: torch.Tensor) -> dict:  # a deterministic stand-in for the world's classifier FID
        m = float(images.mean())
        return {"fid_vs_test": round(m, 6), "class_shares": {"a": 0.5, "b": 0.5}, "mean_confidence": 0.9}

    monkeypatch.setattr(catalog, "get_world", lambda name: types.SimpleNamespace(quality_stats=fake_quality))
    study = {"pc": {**ev.SAMPLERS["pc"], "n_steps": 3}, "pc, 2 corrector steps": {**ev.SAMPLERS["pc"], "n_steps": 3,
                                                                                  "corrector_steps": 2, "eps": 0.01}}
    monkeypatch.setattr(ev, "SAMPLER_STUDY", study)
    c, h, w = tiny_generator().layer_shape(1)
    torch.manual_seed(0)
    score = ScorePrior(ScoreViT(ScoreViTConfig(channels=c, height=h, width=w, dim=8, depth=1, heads=1, dim_head=8,
                                               mlp_ratio=1)), layer=1).save(tmp_path / "score.pt")
    heldout = tmp_path / "heldout.pt"
    torch.save(torch.randn(6, c, h, w), heldout)
    res = ev.sampler_study("tiny", 1, tmp_path / "study", n=5, heldout=heldout, score_file=score)
    assert list(res["samplers"]) == ["pc", "pc, 2 corrector steps"]
    g = catalog.load_prior("tiny").generator.cpu()
    for name, cfg in study.items():  # exactly what the bars' code path gives for that sampler
        direct = fake_quality(ev.langevin_images(ScorePrior.load(score), g, 5, 0, sampler=cfg, rgb="own"))
        assert res["samplers"][name]["decoded"] == direct
    assert res["samplers"]["pc"] != res["samplers"]["pc, 2 corrector steps"]
    for row in res["samplers"].values():  # each row also against the real states, decode seed by decode seed
        assert row["class_tv"]["n"] == 5 and len(row["class_tv"]["per_seed"]) == len(ev.DECODE_SEEDS)
        assert row["dispersion"] > 0
    assert res["real_states_decoded"]["fid_vs_test"] != res["samplers"]["pc"]["decoded"]["fid_vs_test"]
    md = ev.sampler_study_markdown(res)
    assert "| held-out real states (no sampler) |" in md and "| pc, 2 corrector steps | 2 | 0.01 |" in md
    # resumes: a finished sampler is not sampled again
    monkeypatch.setattr(ev, "langevin_images", lambda *a, **k: pytest.fail("sampled again"))
    assert ev.sampler_study("tiny", 1, tmp_path / "study", n=5, heldout=heldout, score_file=score) == res
    with pytest.raises(ValueError, match="measured with n=5"):
        ev.sampler_study("tiny", 1, tmp_path / "study", n=7, score_file=score)
    with pytest.raises(ValueError, match="valid: \\['pc', 'pc, 2 corrector steps'\\]"):
        ev.sampler_study("tiny", 1, tmp_path / "study", names=["ald"], n=5, score_file=score)
