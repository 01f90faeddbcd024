"""The bars a layer score prior must meet (bench.scores.evaluate.score_bars): each one can fail."""
from __future__ import annotations

import json

from bench.scores.evaluate import score_bars


def _res(fid_lang=4.0, fid_real=2.5, fid_gen=1.0, shares=(0.1,) * 10, eps=0.2, change=-0.01):
    q = lambda fid, sh=(0.1,) * 10: {"fid_vs_test": fid, "class_shares": {str(i): s for i, s in enumerate(sh)}}  # noqa: E731
    return {"langevin_decoded": q(fid_lang, shares), "real_states_decoded": q(fid_real), "generator_samples": q(fid_gen),
            "eps_mse": {"t=0.01": eps}, "training": {"relative_change_over_tail": change}}

def test_all_bars_pass_on_a_good_prior():
    assert all(b["passed"] for b in score_bars(_res()))
    assert [b["measured"] for b in score_bars(_res())][:2] == [1.6, 4.0]

def test_each_bar_fails_on_its_own():
    for kwargs, index in ((dict(fid_lang=5.2, fid_gen=2.0), 0), (dict(fid_lang=5.1, fid_real=5.0), 1),
                          (dict(shares=(0.16,) + (0.84 / 9,) * 9), 2), (dict(shares=(0.04,) + (0.96 / 9,) * 9), 2),
                          (dict(eps=1.2), 3), (dict(change=-0.05), 4)):
        bars = score_bars(_res(**kwargs))
        assert [b["passed"] for b in bars].count(False) == 1 and bars[index]["passed"] is False, kwargs

def test_a_world_without_a_quality_measure_reports_only_what_it_can():
    bars = score_bars({"eps_mse": {"t=0.01": 0.3}, "training": {"points": [[1, 1.0]]}})
    assert [b["passed"] for b in bars] == [True, None]  # eps below trivial; no curve tail to judge


def test_the_card_says_whether_the_data_itself_meets_the_class_share_bar():
    from pathlib import Path

    from bench.scores.card import reference_share_lines

    def ev(layer, shares):
        return {"layer": layer, "real_states_decoded": {"class_shares": dict(enumerate(shares))}}

    lines = reference_share_lines([(Path("a"), ev(0, [0.1] * 10)),
                                   (Path("b"), ev(1, [0.005] + [0.11] * 9)),
                                   (Path("c"), ev(1, [0.1] * 10))])  # the same layer again: listed once
    assert len([line for line in lines if line.startswith("- layer")]) == 2
    assert "layer 0" in lines[3] and "itself meets" in lines[3] and "fails the bar more often" not in lines[3]
    assert "layer 1" in lines[4] and "does NOT meet" in lines[4]


def test_the_class_share_bar_states_how_far_n_samples_resolve_it():
    """Judged on the point estimates; the Wilson 95% CIs of the smallest and largest share come with it, and
    shrink with n (at n = 400 a 4.5% share cannot be told from the 5% edge; at n = 40000 it can)."""
    shares = (0.045,) + (0.955 / 9,) * 9
    small = score_bars({**_res(shares=shares), "n_samples": 400})[2]
    big = score_bars({**_res(shares=shares), "n_samples": 40000})[2]
    assert small["passed"] is False and big["passed"] is False
    (lo_small, hi_small), (lo_big, hi_big) = small["ci95"][0], big["ci95"][0]
    assert lo_small < 0.045 < 0.05 < hi_small and lo_big < 0.045 < hi_big < 0.05
    assert "ci95" not in score_bars(_res(shares=shares))[2]  # no n: no interval


def test_gaussian_control_matches_the_training_states_first_two_moments():
    """The Gaussian control draws states with the training set's mean and covariance (and its shape)."""
    import torch

    from bench.scores.evaluate import gaussian_states

    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(6, 6, generator=gen)
    train = (torch.randn(4000, 6, generator=gen) @ mix + 3.0).view(4000, 1, 2, 3)
    draws = gaussian_states(train, 20000, torch.Generator().manual_seed(1))
    assert draws.shape == (20000, 1, 2, 3)
    x, y = train.flatten(1), draws.flatten(1)
    torch.testing.assert_close(y.mean(0), x.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), torch.cov(x.T), atol=0.1 * float(torch.cov(x.T).abs().max()), rtol=0)


def test_gaussian_eps_is_the_exact_posterior_mean_for_gaussian_data():
    """For data that IS Gaussian, E[z | y_t] is the best possible prediction: its MSE is the analytic
    mean of m^2 l / (m^2 l + s^2) over the covariance eigenvalues l, and a perturbed predictor does worse."""
    import torch

    from bench.scores.evaluate import gaussian_eps

    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(8, 8, generator=gen) * 0.3
    cov = (mix @ mix.T).double()
    mean = torch.randn(8, generator=gen).double()
    y = (mean + torch.randn(50000, 8, generator=gen).double() @ torch.linalg.cholesky(cov).T).float()
    z = torch.randn(y.shape, generator=gen)
    m, s = 0.9, 0.4
    eps = gaussian_eps(m * y + s * z, mean, cov, m, s)
    lam = torch.linalg.eigvalsh(cov)
    expected = float((m * m * lam / (m * m * lam + s * s)).mean())
    mse = float((eps - z).pow(2).mean())
    assert abs(mse - expected) < 0.01
    assert float((1.1 * eps - z).pow(2).mean()) > mse


def test_further_decodes_count_how_often_the_class_share_bar_is_met(monkeypatch):
    """decode_seed_spread decodes the same states once per seed and counts the decodes whose shares all lie in
    the bar; a share on the edge counts as inside, one just over it does not. The card prints the count."""
    import torch

    import bench.scores.evaluate as ev
    from bench.scores.card import decode_seed_lines, spread_phrase

    seen = []

    def fake_decode(g, h, layer, gen, style="fresh", rgb="dropped"):
        seen.append(int(gen.initial_seed()))
        return torch.full((2,), float(gen.initial_seed()))

    def fake_quality(images):  # seed 0: inside; 1: largest share 0.16; 2: both edges exactly; 3: smallest 0.04
        top, low = {0: (0.12, 0.08), 1: (0.16, 0.06), 2: (0.15, 0.05), 3: (0.14, 0.04)}[int(images[0])]
        rest = (1 - top - low) / 8
        shares = {"a": top, "b": low, **{str(i): rest for i in range(8)}}
        return {"fid_vs_test": 10.0 + images[0].item(), "class_shares": shares}

    monkeypatch.setattr(ev, "decode_states", fake_decode)
    spread = ev.decode_seed_spread(None, torch.zeros(2, 3), 0, fake_quality, seeds=(0, 1, 2, 3))
    assert seen == [0, 1, 2, 3]
    assert (spread["meets"], spread["of"]) == (2, 4)
    assert spread["min_share"] == [0.04, 0.08] and spread["max_share"] == [0.12, 0.16]
    assert spread["fid_vs_test"] == [10.0, 13.0]
    assert "meet it in 2 of 4" in spread_phrase(spread)
    lines = decode_seed_lines([(ev.Path("score_layer0"), {"decode_seeds": {"langevin": spread},
                                                          "sampler": {"name": "pc"}})])
    # an evaluation that recorded only the name "pc" was measured before the bars' sampler changed: 1 step, 1e-3
    assert len(lines) == 4 and lines[-1].startswith("- `score_layer0` (PC (1 corrector step, end 0.001) samples)")
    assert "2 of 4" in lines[-1]


def test_class_distribution_distance_and_its_chance_level():
    """Total variation between class-share tables, and the chance level of two sets of n from one
    distribution: for 10 equal classes it is 5 sqrt(2 * 0.09 / n) sqrt(2 / pi) (normal approximation)."""
    import math

    from bench.scores.evaluate import chance_total_variation, total_variation

    p = {str(i): 0.1 for i in range(10)}
    assert total_variation(p, p) == 0.0
    assert math.isclose(total_variation(p, {**p, "0": 0.2, "1": 0.0}), 0.1)
    assert math.isclose(total_variation({"a": 1.0}, {"b": 1.0}), 1.0)  # a class missing from one table counts
    for n in (400, 4000):
        assert math.isclose(chance_total_variation(p, n), 5 * math.sqrt(2 * 0.09 / n) * math.sqrt(2 / math.pi),
                            rel_tol=0.05)


def test_decode_seed_block_compares_samples_with_real_states_decode_by_decode(monkeypatch):
    """Each decode seed decodes both sets; identical class tables give distance 0, whatever the seed."""
    import torch

    import bench.scores.evaluate as ev

    monkeypatch.setattr(ev, "decode_states", lambda g, h, layer, gen, rgb="own": h[:, :1] + gen.initial_seed())

    def fake_quality(images):  # the decode seed picks the class table; both sets get the same one
        seed = int(images[0, 0])
        top = 0.1 + 0.01 * (seed % 3)
        shares = {"a": top, "b": 0.2 - top, **{str(i): 0.1 for i in range(8)}}
        return {"fid_vs_test": 1.0, "class_shares": shares}

    block = ev.decode_seed_block(None, torch.zeros(3, 2), torch.zeros(3, 2), 0, fake_quality, seeds=(0, 1, 2))
    assert block["class_tv"]["per_seed"] == [0.0, 0.0, 0.0] and block["class_tv"]["n"] == 3
    assert block["class_tv"]["chance_mean"] > 0


def test_card_rows_name_the_sampler_settings_they_were_measured_with():
    """The bars' sampler changed (5 corrector steps, end 0.01): a row says which PC it used, from the evaluation's
    recorded settings, so old and new figures are never mixed up under one name."""
    from bench.scores.card import sampler_label
    from bench.scores.evaluate import BAR_SAMPLER, PC_ONE_STEP, SAMPLERS

    now = {"sampler": {"name": BAR_SAMPLER, **SAMPLERS[BAR_SAMPLER]}}
    assert sampler_label(now) == "PC (5 corrector steps, end 0.01)"
    assert sampler_label({"sampler": {"name": "pc", **PC_ONE_STEP}}) == "PC (1 corrector step, end 0.001)"
    assert sampler_label({}) == "ALD"  # evaluations from before samplers were recorded used ALD


def test_sdedit_with_the_exact_score_keeps_the_data_distribution():
    """Diffused to t0 and sampled back with the bars' sampler, Gaussian data under its exact score keeps its mean
    and spread at every t0 (so a row that falls away in the card is the score's error); a score that believes the
    data half as wide visibly shrinks it. Tweedie once gives the posterior mean, whose spread is the exact
    shrinkage m^2 s^2 / (m^2 s^2 + std^2) of the data's."""
    import torch

    from bench.priors.score_prior import GaussianScorePrior
    from bench.scores.evaluate import sdedit_states, tweedie_once

    mu = torch.tensor([0.3, 0.7, 0.5, 0.2]).view(1, 2, 2)
    sigma = torch.tensor([0.05, 0.1, 0.2, 0.08]).view(1, 2, 2)
    x = mu + sigma * torch.randn(4000, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    exact, narrow = GaussianScorePrior(mu, sigma), GaussianScorePrior(mu, sigma / 2)
    for t0 in (0.05, 0.3, 1.0):
        y = sdedit_states(exact, x, t0, torch.Generator().manual_seed(1))
        assert (y.mean(0) - mu).abs().max() < 0.01, t0
        assert ((y.std(0) / sigma) - 1).abs().max() < 0.07, (t0, y.std(0) / sigma)
    y = sdedit_states(narrow, x, 1.0, torch.Generator().manual_seed(1))
    assert ((y.std(0) / sigma) - 0.5).abs().max() < 0.07
    t0 = 0.1
    m, s = exact.sde.mean_coeff(torch.tensor(t0)), exact.sde.marginal_std(torch.tensor(t0))
    shrink = m**2 * sigma**2 / (m**2 * sigma**2 + s**2)
    z = tweedie_once(exact, x, t0, torch.Generator().manual_seed(2))
    assert ((z.std(0) / (sigma * shrink.sqrt())) - 1).abs().max() < 0.07


def test_the_card_lists_the_sdedit_rows_of_each_model():
    from pathlib import Path

    from bench.scores.card import sdedit_lines

    m = {"fid_vs_test": 6.0, "min_share": 0.06, "max_share": 0.14}
    ev = {"sdedit": [{"t_start": 0.0, "sdedit": m}, {"t_start": 0.05, "sdedit": {**m, "fid_vs_test": 13.9},
                                                       "tweedie_once": {**m, "fid_vs_test": 10.1}}]}
    lines = sdedit_lines([(Path("score_layer1"), ev), (Path("score_layer0"), {})])
    assert lines[-2] == "| `score_layer1` | 0 | 6.00 (0.060-0.140) | - |"
    assert lines[-1] == "| `score_layer1` | 0.05 | 13.90 (0.060-0.140) | 10.10 (0.060-0.140) |"
    assert sdedit_lines([(Path("score_layer0"), {})]) == []


def test_sdedit_rows_decode_every_set_with_the_same_seed(monkeypatch):
    """sdedit_quality: a row for the states themselves (t0 = 0) and one per start time with both ways back, each
    decoded with the fixed decode seed, so rows differ only in the states; the spread shrinks under Tweedie."""
    import torch

    import bench.scores.evaluate as ev
    from bench.priors.score_prior import GaussianScorePrior

    seeds = []

    def fake_decode(g, h, layer, gen, style="fresh", rgb="dropped"):
        seeds.append(int(gen.initial_seed()))
        return h

    def spread_quality(h):  # "FID": the states' spread; two classes split at the mean
        upper = float((h.flatten(1).mean(1) > 0.5).float().mean())
        return {"fid_vs_test": float(h.std(0).mean()), "class_shares": {"a": upper, "b": 1 - upper}}

    monkeypatch.setattr(ev, "decode_states", fake_decode)
    mu, sigma = torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 0.1)
    x = mu + sigma * torch.randn(500, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    rows = ev.sdedit_quality(GaussianScorePrior(mu, sigma), None, x, 0, spread_quality, starts=(0.05, 0.5))
    assert [r["t_start"] for r in rows] == [0.0, 0.05, 0.5] and "tweedie_once" not in rows[0]
    assert set(seeds) == {ev.SDEDIT_DECODE_SEED} and len(seeds) == 5
    for r in rows[1:]:
        assert abs(r["sdedit"]["fid_vs_test"] / rows[0]["sdedit"]["fid_vs_test"] - 1) < 0.1
        assert r["tweedie_once"]["fid_vs_test"] < 0.95 * rows[0]["sdedit"]["fid_vs_test"]


def test_dispersion_is_the_ratio_of_total_variances_and_ignores_the_mean():
    """1 for the data's own spread; scaling the deviations by a gives a^2 whatever the mean."""
    import pytest
    import torch

    from bench.scores import evaluate as ev

    x = torch.randn(500, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    assert ev.dispersion(x, x) == 1.0
    assert ev.dispersion(0.5 * (x - x.mean(0)) + 3.0, x) == pytest.approx(0.25, abs=1e-4)
    assert ev.dispersion(x[:250], x[250:]) == pytest.approx(1.0, abs=0.15)
    assert ev.dispersion(x, torch.zeros_like(x)) is None  # no spread to compare with


def test_the_card_names_the_inverter_its_data_was_made_with(tmp_path):
    """The data line and its command follow the store's recorded inverter; old stores (no record) were ILO-unreg."""
    from bench.scores.card import data_lines

    base = {"prior": "embedded", "images": 40, "steps": [5, 5, 5], "mse_mean": 0.01, "mse_median": 0.01, "seed": 0}
    for name, extra, says, command in (
            ("old", {}, "ILO-unregularized inversions of", "--steps 5,5,5`"),
            ("ilo", {"inverter": "ilo", "radius_state": [0.05], "seed": 1},
             "ILO (l1-ball projections) inversions (radius 0.05 per element) of", "--method ilo --seed 1`"),
            ("radius", {"inverter": "ilo", "radius_state": [0.1], "params": {"radius_state": [0.1]}},
             "inversions (radius 0.1 per element) of", "--method ilo --radius 0.1`")):
        store = tmp_path / name
        store.mkdir()
        (store / "inversions.json").write_text(json.dumps({**base, **extra}))
        data, cmd = data_lines(store, tmp_path / f"carried-{name}")
        assert says in data
        assert cmd.endswith(command)
