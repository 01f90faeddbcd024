"""Fairness table: statistics with known inputs, the runner's image saving, the attribute
classifier plugins (CLIP loading path with a small random open_clip model, offline error), the
CLI's input checks and an end-to-end run on the tiny prior (plumbing only, never a result)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import bench  # noqa: F401 - installs the torchvision shim before open_clip is imported
from bench.core.assets import EMBEDDED_DIR, MissingAssetError
from bench.experiments.fairness.classify import decode_image
from bench.experiments.fairness.cli import main
from bench.experiments.fairness.plan import fairness_set
from bench.experiments.fairness.report import table_markdown
from bench.experiments.fairness.stats import agreement_rate, fairness_table, majority_vote, wilson_ci
from bench.harness.runner import Cell, run_cell
from bench.priors.attributes import ClipClassifier, classifier_names, get_classifier, register_classifier
from bench.priors.tiny import TINY_GROUPS

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- statistics
def test_wilson_ci_matches_hand_computation():
    # 8/10, z = 1.96: p = .8, denom = 1 + 3.8415/10 = 1.38415, centre = (.8 + .19207)/denom = .71673,
    # half = 1.96 * sqrt(.016 + .0096037)/denom = .22658  ->  (.49015, .94331)
    lo, hi = wilson_ci(8, 10)
    assert lo == pytest.approx(0.49015, abs=1e-4) and hi == pytest.approx(0.94331, abs=1e-4)
    lo, hi = wilson_ci(0, 10)  # centre = half = .13876
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=1e-4)
    assert wilson_ci(10, 10)[1] == pytest.approx(1.0) and wilson_ci(10, 10)[0] == pytest.approx(1 - 0.27753, abs=1e-4)
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    with pytest.raises(ValueError):
        wilson_ci(11, 10)


def test_majority_vote_and_ties_go_to_the_first_samples_class():
    assert majority_vote(np.array([[0, 0, 1], [1, 1, 0], [1, 1, 1]])).tolist() == [0, 1, 1]
    assert majority_vote(np.array([[1, 0, 0, 1], [0, 1, 1, 0]])).tolist() == [1, 0]  # 2-2 ties: sample 0
    assert majority_vote(np.array([[2, 1, 1, 2, 0]])).tolist() == [2]  # tie 1 vs 2: 2 appears first
    assert majority_vote(torch.tensor([[0, 1, 2, 2, 1]])).tolist() == [1]
    assert majority_vote(np.array([[1], [0]])).tolist() == [1, 0]  # S = 1: the sample itself
    with pytest.raises(ValueError):
        majority_vote(np.array([0, 1]))


def test_agreement_rate():
    assert agreement_rate(np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1]])).tolist() == pytest.approx([2 / 3, 1.0, 2 / 3])
    assert agreement_rate(np.array([[0, 1, 1, 0]])).tolist() == [0.5]  # a tie: half agree with sample 0's class
    assert agreement_rate(np.array([[2, 0, 1, 2, 2]])).tolist() == pytest.approx([0.6])


def _per_image() -> pd.DataFrame:
    """Known inputs: groups A (label 0) and B (label 1), 4 images each, at factor 4.

    ilo:   A predicted [0,0,0,1] (3/4), B [1,0,0,0] (1/4); one B image failed instead of
           counted -> B is 1/3 with 1 failed.
    sgilo: single [0,0,1,1] / [1,1,1,0]; samples S = 3 give majorities [0,0,0,1] / [1,1,1,1]."""
    rows = []
    ilo_pred = {("A", 0): 0, ("A", 1): 0, ("A", 2): 0, ("A", 3): 1, ("B", 0): 1, ("B", 1): 0, ("B", 2): 0, ("B", 3): -1}
    sg_single = {("A", i): p for i, p in enumerate([0, 0, 1, 1])} | {("B", i): p for i, p in enumerate([1, 1, 1, 0])}
    sg_samples = {("A", 0): [0, 0, 1], ("A", 1): [0, 1, 0], ("A", 2): [1, 0, 0], ("A", 3): [1, 1, 1],
                  ("B", 0): [1, 1, 1], ("B", 1): [1, 0, 1], ("B", 2): [1, 1, 0], ("B", 3): [0, 1, 1]}
    for g, lab in (("A", 0), ("B", 1)):
        for i in range(4):
            common = {"factor": 4, "group": g, "label": lab, "ref_pred": lab, "image_id": f"{g}{i}"}
            p = ilo_pred[(g, i)]
            rows.append(common | {"method": "ilo", "params_source": "method defaults", "status": "ok" if p >= 0 else "failed",
                                  "pred": p, "samples": 1, "pred_majority": -1, "agreement": math.nan})
            s = sg_samples[(g, i)]
            rows.append(common | {"method": "sgilo", "params_source": "tuned", "status": "ok", "pred": sg_single[(g, i)],
                                  "samples": 3, "pred_majority": int(majority_vote(np.array([s]))[0]),
                                  "agreement": float(agreement_rate(np.array([s]))[0])})
    return pd.DataFrame(rows)


def test_fairness_table_counts_cis_majority_and_agreement():
    t = fairness_table(_per_image(), ("A", "B"))
    get = lambda m, v, g: t[(t.method == m) & (t.vote == v) & (t.group == g)].iloc[0]  # noqa: E731
    a, b, tot = get("ilo", "single", "A"), get("ilo", "single", "B"), get("ilo", "single", "total")
    assert (a.correct, a.n, a.n_failed) == (3, 4, 0) and (b.correct, b.n, b.n_failed) == (1, 3, 1)
    assert (tot.correct, tot.n, tot.n_failed) == (4, 7, 1)
    assert (tot.ci_low, tot.ci_high) == pytest.approx(wilson_ci(4, 7))
    assert tot.pixel_factor == 16 and tot.preserved == 4
    assert set(t[t.method == "ilo"].vote) == {"single"}  # not a sampler: no majority rows
    s, m = get("sgilo", "single", "total"), get("sgilo", "majority of 3", "total")
    assert (s.correct, s.n) == (5, 8)  # A: 2, B: 3
    assert (get("sgilo", "majority of 3", "A").correct, get("sgilo", "majority of 3", "B").correct) == (3, 4)
    assert (m.correct, m.n) == (7, 8) and m.samples == 3
    # agreements: A .667 .667 .667 1, B 1 .667 .667 .667 -> mean 0.75
    assert m.agreement_mean == pytest.approx(0.75) and s.agreement_mean == pytest.approx(0.75)
    md = table_markdown(t, ("A", "B"), {"prior": "test", "smoke": "known inputs", "image_side": 32})
    assert "SMOKE RUN, NOT A RESULT" in md and "x4 per side = x16 in pixel count (32x32 -> 8x8)" in md
    assert "| ilo | single | method defaults | 3/4 (" in md and "1/3 (" in md and ", 1 failed" in md
    assert "| sgilo | majority of 3 | tuned |" in md and "7/8 (" in md and "| 0.75 |" in md


def test_fairness_set_groups_and_limit():
    pos, labels, groups = fairness_set("embedded")
    assert groups == ("Sandal", "Sneaker") and len(pos) == 128 and labels == [0] * 64 + [1] * 64
    pos, labels, groups = fairness_set("embedded", limit=3)
    assert pos == [0, 1, 2, 64, 65, 66] and labels == [0, 0, 0, 1, 1, 1]
    assert fairness_set("tiny", limit=2)[2] == TINY_GROUPS


# ----------------------------------------------------------------------------- runner: save_images
def test_cell_keys_of_existing_cells_are_unchanged_and_ignore_the_image_folder():
    c = Cell("s", "eval", "tiny", "superres", 4.0, "ilo", {"steps": [3]}, "test", (0, 1), seed=0, variant="tuned",
             num_samples=3)
    d = Cell("s", "tune", "embedded", "inpaint", 0.05, "sgilo", {}, "tune", tuple(range(8)))
    assert (c.key, d.key) == ("44ca84830d6c6f5e", "94e966488ffda612")  # computed before save_images existed
    e1, e2 = (Cell("s", "tune", "embedded", "inpaint", 0.05, "sgilo", {}, "tune", tuple(range(8)), save_images=f)
              for f in ("/a/images", "b/images"))
    assert e1.key == e2.key != d.key
    assert Cell.from_dict(e1.to_dict()) == e1 and Cell.from_dict({k: v for k, v in d.to_dict().items()
                                                                    if k != "save_images"}) == d


def test_run_cell_saves_reconstructions_and_samples_atomically(tmp_path):
    params = {"steps": [3, 3], "temperature": [0.0]}
    plain = Cell("t", "fairness", "tiny", "superres", 4.0, "sgilo", params, "fairness", (0, 65), num_samples=2)
    saving = Cell(**{**plain.to_dict(), "image_indices": (0, 65), "save_images": str(tmp_path / "images")})
    r0, r1 = run_cell(plain, "cpu"), run_cell(saving, "cpu")
    assert r0.status == r1.status == "ok"
    assert [r["mse"] for r in r0.rows] == [r["mse"] for r in r1.rows]  # saving changes nothing computed
    files = list((tmp_path / "images").iterdir())
    assert [f.name for f in files] == [f"{saving.key}.pt"]  # no temporary file left behind
    blob = torch.load(files[0], weights_only=True)
    assert blob["image_indices"] == [0, 65] and blob["image_ids"] == ["tiny-fairness-0", "tiny-fairness-65"]
    assert blob["recon"].shape == (2, 1, 16, 16) and blob["samples"].shape == (2, 2, 1, 16, 16)
    assert blob["recon"].dtype == torch.uint8  # quantised like a PNG (FFHQ: 128 x (1 + S) images at 1024^2)
    assert torch.equal(blob["samples"][:, 0], blob["recon"])  # sample 0 is the reconstruction
    recon = run_cell(plain, "cpu", keep_images=True).images["reconstruction"].clamp(-1, 1)  # saved as an image
    assert (decode_image(blob["recon"]) - recon).abs().max() <= 1 / 127.5 / 2 + 1e-6
    assert not (tmp_path / "images" / f"{plain.key}.pt").exists()


# ----------------------------------------------------------------------------- attribute classifiers
SMALL_CLIP = dict(embed_dim=32, vision_cfg=dict(image_size=224, layers=1, width=64, patch_size=32, head_width=32),
                  text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=1))


def test_clip_plugin_loads_weights_from_a_file(tmp_path):
    """The loading path with a small random open_clip model saved to a file; its predictions are
    meaningless and only checked for shape, range and determinism."""
    import open_clip

    torch.manual_seed(0)
    ref = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True, **SMALL_CLIP)
    path = tmp_path / "small_clip.bin"
    torch.save(ref.state_dict(), path)
    clf = get_classifier("clip", weights=path, model_kwargs=SMALL_CLIP)
    assert not clf.random_weights and str(path) in clf.description
    sd = clf.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in ref.state_dict().items())
    # OpenAI weights need QuickGELU, which a file path (unlike the tag) does not tell open_clip
    assert isinstance(clf.model.visual.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    p1, p2 = clf.predict(x), clf.predict(x)
    assert p1.dtype == torch.long and p1.shape == (3,) and torch.equal(p1, p2) and set(p1.tolist()) <= {0, 1}
    assert clf.predict(x[:, :1]).shape == (3,)  # grayscale is repeated to 3 channels
    # preprocessing: [-1, 1] -> [0, 1] -> CLIP mean/std, at 224x224
    z = clf.preprocess(torch.zeros(1, 1, 32, 32))
    assert z.shape == (1, 3, 224, 224)
    expect = (0.5 - torch.tensor(open_clip.OPENAI_DATASET_MEAN)) / torch.tensor(open_clip.OPENAI_DATASET_STD)
    assert torch.allclose(z[0, :, 100, 100], expect, atol=1e-5)
    rnd = ClipClassifier(random_init=True, model_kwargs=SMALL_CLIP, prompts=("a", "b", "c"), groups=("x", "y", "z"))
    assert rnd.random_weights and rnd.groups == ("x", "y", "z") and "tests only" in rnd.description


def test_clip_offline_without_weights_names_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingAssetError) as err:
        ClipClassifier()
    msg = str(err.value)
    assert "open_clip_ViT-B-32_openai.bin" in msg and str(tmp_path / "cache") in msg and "open_clip" in msg
    with pytest.raises(MissingAssetError) as err:
        ClipClassifier(weights=tmp_path / "nope.bin")
    assert str(tmp_path / "nope.bin") in str(err.value)
    with pytest.raises(MissingAssetError) as err:
        ClipClassifier(model="ViT-B-16", pretrained="laion2b_s34b_b88k")
    assert "open_clip_ViT-B-16_laion2b_s34b_b88k.bin" in str(err.value)


@pytest.mark.skipif(not (EMBEDDED_DIR / "classifier.pt").exists(), reason="embedded classifier not committed")
def test_embedded_plugin_restricts_to_the_two_fairness_classes():
    from bench.data.evalset import load_evalset

    clf = get_classifier("embedded")
    assert clf.groups == ("Sandal", "Sneaker") and clf.class_ids.tolist() == [5, 7]
    x, y = load_evalset("fairness")
    pred = clf.predict(x)
    assert pred.dtype == torch.long and set(pred.tolist()) <= {0, 1}
    assert (pred == (y == 7).long()).float().mean() > 0.8  # the ceiling row of the table
    assert torch.equal(clf.predict(x[:4].repeat(1, 3, 1, 1)), pred[:4])  # RGB input -> luma


# ----------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("args,expected", [
    (["--methods", "ilo,pulse"], "valid methods: csgm, ilo, ilo_unreg"),
    (["--prior", "mnist"], "valid priors: embedded, ffhq, ffhq-ada, tiny"),
    (["--factor", "3"], "valid factors: 2, 4, 8, 16"),
    (["--factor", "x4"], "factors are integers per side"),
    (["--classifier", "resnet"], "valid classifiers:"),
    (["--params", "sgilo"], "expected METHOD=JSON"),
    (["--params", "csgm={}"], "not in --methods"),
    (["--samples", "0"], "--samples must be >= 1"),
    (["--from-sweep", "/nonexistent"], "neither a sweep store"),
])
def test_bad_input_exits_2_with_valid_choices(args, expected, capsys):
    assert main(args + ["--dry-run"]) == 2
    assert expected in capsys.readouterr().err


class _TinyThreshold:
    """Test double for the tiny prior's pseudo-groups: thresholded mean brightness."""

    groups = TINY_GROUPS
    description = "tiny brightness threshold (test double)"
    random_weights = False

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return (images.flatten(1).mean(1) > -0.05).long()


register_classifier("tiny-test")(lambda **_: _TinyThreshold())

TINY = ["--prior", "tiny", "--classifier", "tiny-test", "--methods", "ilo,sgilo", "--factor", "4", "--limit", "2",
        "--samples", "3", "--batch", "2", "--params", 'ilo={"steps": [4, 4]}',
        "--params", 'sgilo={"steps": [4, 4], "temperature": [0]}', "--executor", "debug", "--wandb", "disabled",
        "--seeds", "0,1"]


def test_end_to_end_on_the_tiny_prior_and_resume(tmp_path, capsys):
    out = tmp_path / "fair"
    assert "tiny-test" in classifier_names()
    assert main(TINY + ["--out", str(out), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "cells: 8 " in dry and not out.exists()  # 2 seeds x 2 methods x 2 batches
    # 2 seeds x 2 batches x 2 images x 8 steps x (1 ILO run + 3 SGILO samples)
    assert "cost: 256 image-steps" in dry
    assert "init randn (an independent start per posterior sample)" in dry  # SGILO's chains do not share z = ones
    assert main(TINY + ["--out", str(out), "--results", str(tmp_path / "res")]) == 2  # smoke runs are never results
    assert main(TINY + ["--out", str(out), "--plan-only"]) == 0  # for slurm/grid.sh (bench.harness.run_plan)
    assert "slurm/grid.sh" in capsys.readouterr().out and (out / "plan_fairness.json").exists()
    from bench.harness.run_plan import main as run_plan

    assert run_plan([str(out / "plan_fairness.json"), "--index", "0"]) == 0  # one array task: cell 0, images saved
    assert len(list((out / "images").glob("*.pt"))) == 1
    assert main(TINY + ["--out", str(out)]) == 0
    md = (out / "fairness.md").read_text()
    assert "SMOKE RUN, NOT A RESULT" in md and "x4 per side = x16 in pixel count (16x16 -> 4x4)" in md
    assert "| sgilo | majority of 3 |" in md and "| ilo | single |" in md
    per_image = pd.read_csv(out / "fairness_images.csv")
    assert len(per_image) == 4 + 2 * 2 * 4 and (per_image["status"] == "ok").all()  # originals; 2 seeds x 2 methods
    assert set(per_image.loc[per_image["method"] != "original", "seed"]) == {0, 1}
    assert len(list((out / "images").glob("*.pt"))) == 8
    assert "## Paired comparisons" in md and "| x4 | sgilo | ilo | 4 | 2 |" in md
    paired = pd.read_csv(out / "fairness_paired.csv")
    # no T = 0 control and no baseline in this run: one sample against ILO, and the majority of 3 against ILO
    assert list(paired[["a", "b"]].itertuples(index=False, name=None)) == [("sgilo", "ilo"),
                                                                          ("sgilo (majority of 3)", "ilo")]
    table = pd.read_csv(out / "fairness.csv")
    mtime = {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    assert main(TINY + ["--out", str(out)]) == 0  # resume: nothing recomputed, same table
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").iterdir()} == mtime
    pd.testing.assert_frame_equal(pd.read_csv(out / "fairness.csv"), table)
    # cells made with other weights never mix with new ones: other generator -> refused, flag or not
    weights = out / "weights.json"
    (weights).write_text('{"tiny-generator": "1:old"}')
    capsys.readouterr()
    assert main(TINY + ["--out", str(out), "--rerun-score-cells"]) == 2
    assert "holds cells made with other weights" in capsys.readouterr().err
    # only a score model changed: refused with the way out named, then continued with the flag
    (weights).write_text('{"score_layer0.pt": "1:old"}')
    assert main(TINY + ["--out", str(out)]) == 2 and "--rerun-score-cells" in capsys.readouterr().err
    assert main(TINY + ["--out", str(out), "--rerun-score-cells"]) == 0
    assert "layer(s) [0] changed" in capsys.readouterr().err and weights.read_text().strip() == "{}"


def test_missing_clip_weights_stop_before_any_reconstruction(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SGILO_BENCH_CACHE", str(tmp_path / "cache"))
    args = ["--prior", "tiny", "--classifier", "clip", "--clip-groups", ",".join(TINY_GROUPS), "--executor", "debug",
            "--wandb", "disabled", "--out", str(tmp_path / "f")]
    assert main(args + ["--dry-run"]) == 2  # a dry run that finds a missing file says so in its exit code
    assert "open_clip_ViT-B-32_openai.bin" in capsys.readouterr().out
    assert main(args) == 2
    assert "open_clip_ViT-B-32_openai.bin" in capsys.readouterr().err and not (tmp_path / "f").exists()


def test_table_is_logged_to_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from bench.experiments.fairness.config import FairnessConfig
    from bench.experiments.fairness.report import log_table_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = FairnessConfig(prior="tiny", out=tmp_path / "fair")
    table = fairness_table(_per_image(), ("A", "B"))
    log_table_wandb(cfg, table, "offline", "# table")
    runs = list((tmp_path / "fair" / "wandb" / "wandb").glob("offline-run-*"))
    assert runs and all("fair-fairness-table" in r.name for r in runs)
    assert any(f.suffix == ".wandb" for r in runs for f in r.iterdir())


@pytest.mark.skipif(not (EMBEDDED_DIR / "generator.pt").exists() or not (EMBEDDED_DIR / "classifier.pt").exists(),
                    reason="embedded generator/classifier not present")
def test_embedded_smoke_run(tmp_path):
    """Plumbing on the real embedded world: 2 images per group, short ILO (not a result)."""
    out = tmp_path / "fair"
    assert main(["--limit", "2", "--factor", "8", "--methods", "ilo", "--steps-scale", "0.1", "--executor", "debug",
                 "--wandb", "disabled", "--out", str(out)]) == 0
    md = (out / "fairness.md").read_text()
    assert "SMOKE RUN, NOT A RESULT" in md and "x8 per side = x64 in pixel count (32x32 -> 4x4)" in md
    assert "| Sandal | Sneaker | total |" in md and "| ilo | single | method defaults, steps x0.1 |" in md


def test_hyperparameters_from_a_sweeps_superres_tuning(tmp_path):
    import json as _json

    from bench.experiments.fairness.config import choose_params, tuned_superres
    from bench.harness.runner import CellResult
    from bench.harness.store import ResultStore

    store = ResultStore(tmp_path / "sweep")
    for variant, steps, mse in (("grid0", [7, 7], 0.2), ("grid1", [9, 9], 0.1)):
        c = Cell("sweep", "tune", "tiny", "superres", 4.0, "ilo", {"steps": steps}, "tune", (0, 1), variant=variant)
        rows = [{"cell": c.key, "sweep": "sweep", "stage": "tune", "prior": "tiny", "task": "superres", "level": 4.0,
                 "method": "ilo", "variant": variant, "params": _json.dumps(c.params, sort_keys=True), "image_index": i,
                 "noise_sigma": 0.0, "mse": mse, "lpips": math.nan, "status": "ok"} for i in (0, 1)]
        store.record(CellResult(c, rows))
    tuned = tuned_superres(tmp_path / "sweep", "tiny")
    assert tuned == {(4.0, "ilo"): {"steps": [9, 9]}} and tuned_superres(tmp_path / "sweep", "embedded") == {}
    # the committed report's rows.csv (what survives a fresh checkout) gives the same choice
    from bench.report.collect import write_rows
    from bench.report.frames import load_store

    rows, traces, _ = load_store(tmp_path / "sweep")
    write_rows(rows, traces, tmp_path / "report")
    assert tuned_superres(tmp_path / "report" / "rows.csv", "tiny") == tuned
    ch = choose_params("ilo", 4, tuned, "sweep")
    assert ch.params == {"steps": [9, 9]} and ch.source == "tuned (sweep, superres x4)" and ch.variant == "tuned"
    ch = choose_params("ilo", 8, tuned, "sweep", override={"geocross": 0.0}, steps_scale=0.5)
    assert ch.params == {"steps": [4, 4], "geocross": 0.0} and "nearest tuned factor" in ch.source
    assert "--params" in ch.source and "steps x0.5" in ch.source
    ch = choose_params("sgilo", 4, tuned, "sweep")
    assert ch.source == "method defaults" and ch.params["steps"] == (300, 300, 300)
    with pytest.raises(ValueError, match="unknown ilo hyperparameters"):
        choose_params("ilo", 4, tuned, "sweep", override={"stepz": 3})


def test_classifier_groups_must_match_the_fairness_set(tmp_path, capsys):
    assert main(["--prior", "tiny", "--classifier", "embedded", "--out", str(tmp_path / "f"), "--dry-run"]) == 2
    assert "['Sandal', 'Sneaker']" in capsys.readouterr().err and not (tmp_path / "f").exists()


def test_ffhq_groups_come_from_file_name_prefixes(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "fairness").mkdir()
    for name in ("woman_2.png", "man_1.png", "woman_1.png", "man_7.jpg", "man_3.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "fairness" / name)
    monkeypatch.setenv("SGILO_BENCH_FFHQ_DIR", str(tmp_path))
    pos, labels, groups = fairness_set("ffhq")
    assert groups == ("man", "woman") and labels == [0, 0, 0, 1, 1] and pos == [0, 1, 2, 3, 4]  # sorted names
    assert fairness_set("ffhq", limit=1)[0] == [0, 3]


def test_failed_images_are_listed_with_their_reason():
    from bench.experiments.fairness.report import failures_section

    per_image = pd.DataFrame([
        {"factor": 4, "method": "sgilo", "status": "failed", "reason": "ValueError: no score model for layer 1"},
        {"factor": 4, "method": "sgilo", "status": "failed", "reason": "ValueError: no score model for layer 1"},
        {"factor": 4, "method": "ilo", "status": "ok", "reason": ""},
    ])
    md = failures_section(per_image)
    assert "| x4 | sgilo | 2 | ValueError: no score model for layer 1 |" in md
    assert failures_section(per_image[per_image["status"] == "ok"]) == ""


# ----------------------------------------------------------------------------- paired tests, gap, baseline
def test_mcnemar_exact_matches_the_binomial_test():
    from bench.experiments.fairness.stats import mcnemar_exact

    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # all 5 discordant pairs one way
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)


def _two_method_rows(seeds=(0, 1, 2), n=40):
    rows = []
    for seed in seeds:
        for i in range(n):
            group, label = ("A", 0) if i < n // 2 else ("B", 1)
            right_a = i % 10 != 0  # method a: 90% right, every seed
            right_b = i % 4 != 0 if seed != 2 else i % 5 != 0  # b: 75% (80% on seed 2)
            for m, right in (("a", right_a), ("b", right_b)):
                rows.append({"factor": 4, "method": m, "seed": seed, "image_id": f"im{i}", "group": group,
                             "label": label, "pred": label if right else 1 - label, "status": "ok"})
    return pd.DataFrame(rows)


def test_paired_comparison_counts_discordant_images_per_seed():
    from bench.experiments.fairness.stats import mcnemar_exact, paired_comparisons

    r = paired_comparisons(_two_method_rows(), [("a", "b")], n_boot=500).iloc[0]
    assert (r["n"], r["seeds"]) == (40, 3)
    assert r["acc_a"] == pytest.approx(0.9) and r["acc_b"] == pytest.approx((0.75 * 2 + 0.8) / 3)
    assert r["ci_low"] <= r["diff"] <= r["ci_high"]
    # seed 0: a right & b wrong on i % 4 == 0 but i % 10 != 0 (im4, 8, 12, 16, 24, 28, 32, 36) = 8; the reverse: im10, 30
    assert "seed 0: 8/2, p=" + f"{mcnemar_exact(8, 2):.3g}" in r["mcnemar_by_seed"]


def test_paired_comparison_of_majority_votes_and_of_a_one_seed_baseline():
    """'m@majority' compares the vote column; a side with one seed (the deterministic baseline) is paired with
    every seed of the other, so its per-image correctness meets the other side's seed average."""
    from bench.experiments.fairness.stats import paired_comparisons

    rows = _two_method_rows()
    # method b's majority vote is right everywhere; its single sample stays as before
    rows["pred_majority"] = rows["label"].where(rows["method"] == "b", 1 - rows["label"])
    rows["samples"] = 5
    base = rows[(rows["method"] == "a") & (rows["seed"] == 0)].assign(method="base", samples=1, seed=0)
    base["pred"] = base["label"]  # the baseline is right on every image
    both = pd.concat([rows, base], ignore_index=True)
    r = paired_comparisons(both, [("b@majority", "a"), ("base", "b")], n_boot=500)
    maj, bl = r.iloc[0], r.iloc[1]
    assert maj["a"] == "b (majority of 5)" and maj["acc_a"] == 1.0 and maj["diff"] == pytest.approx(0.1)
    assert "seed 0: 4/0, p=0.125" in maj["mcnemar_by_seed"]  # a is wrong on im0, 10, 20, 30 only
    assert (bl["seeds"], bl["n"]) == (3, 40) and bl["diff"] == pytest.approx(1 - (0.75 * 2 + 0.8) / 3)
    assert bl["mcnemar_by_seed"].count("seed ") == 3 and bl["ci_low"] <= bl["diff"] <= bl["ci_high"]


def test_group_gap_and_seed_averaged_counts():
    t = fairness_table(_two_method_rows().assign(params_source="-", ref_pred=0), ("A", "B"), n_boot=500)
    tot = t[(t["method"] == "b") & (t["group"] == "total")].iloc[0]
    assert tot["seeds"] == 3 and tot["n"] == 40 and tot["correct"] == pytest.approx(40 * (0.75 * 2 + 0.8) / 3)
    a_rows = _two_method_rows()
    a_rows = a_rows[a_rows["method"] == "a"]
    acc = lambda g: (a_rows[a_rows.group == g].pred == a_rows[a_rows.group == g].label).mean()  # noqa: E731
    ta = t[(t["method"] == "a") & (t["group"] == "total")].iloc[0]
    assert ta["gap"] == pytest.approx(acc("A") - acc("B")) and ta["gap_ci_low"] <= ta["gap"] <= ta["gap_ci_high"]
    assert ta["accuracy_by_seed"] == "0.900, 0.900, 0.900"


def test_measurement_only_baseline_learns_what_the_measurement_carries():
    """Groups told apart by overall brightness survive 8x downsampling, so the linear baseline separates them;
    groups that differ only in a fine checkerboard do not."""
    from bench.experiments.fairness.baseline import measurement_only_predictions

    g = torch.Generator().manual_seed(0)
    def make(n, kind):
        y = torch.arange(n) % 2
        x = 0.3 * torch.randn(n, 1, 32, 32, generator=g)
        if kind == "bright":
            x += (y.float() * 2 - 1).view(-1, 1, 1, 1) * 0.5
        else:
            board = ((torch.arange(32)[:, None] + torch.arange(32)[None]) % 2).float() * 2 - 1
            x += (y.float() * 2 - 1).view(-1, 1, 1, 1) * 0.5 * board
        return x.clamp(-1, 1), y
    for kind, lo, hi in (("bright", 0.95, 1.0), ("checker", 0.3, 0.7)):
        (xtr, ytr), (xte, yte) = make(400, kind), make(200, kind)
        acc = float((measurement_only_predictions(xtr, ytr, xte, 8) == yte).float().mean())
        assert lo <= acc <= hi, (kind, acc)
