"""SGILO score prior: VP-SDE numbers, official ViT layout, strict loading, DSM correctness on a
known Gaussian, samplers against analytic scores, persistence, the training entry point."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.priors.samplers import (
    ald_corrector_step,
    annealed_langevin,
    euler_maruyama_step,
    hot_delta,
    hot_pc_sampler,
    pc_sampler,
    sample_layer,
    sgld_prior_term,
)
from bench.priors.score_prior import GaussianScorePrior, ScorePrior, image_to_latent, latent_to_image
from bench.priors.score_vit import (
    OFFICIAL_CONFIGS,
    ScoreViT,
    ScoreViTConfig,
    StateDictMismatch,
    build_official,
    load_official_state_dict,
)
from bench.priors.sde import VPSDE, check_sde_constants
from bench.scores.train import ScoreTrainConfig, dsm_loss, main, norm_stats, train

REF_JSON = Path(__file__).resolve().parent / "reference" / "sgilo_vit_state_dicts.json"  # copy of the shared facts
TINY = ScoreViTConfig(channels=4, height=2, width=2, dim=32, depth=1, heads=2, dim_head=16, mlp_ratio=2)


def _gaussian(seed: int = 0, shape=(4, 2, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu = torch.rand(1, *shape, generator=g) * 3 - 1  # original-space mean in [-1, 2]
    sig = torch.rand(1, *shape, generator=g) * 0.4 + 0.1
    return mu, sig


# ----------------------------------------------------------------------------- SDE
def test_vp_sde_matches_official_numbers_at_t001():
    c = check_sde_constants(VPSDE())
    assert c["timestep"] == 9
    assert c["alpha"] == pytest.approx(0.99972, abs=5e-6)
    assert c["std"] == pytest.approx(0.044643, abs=1e-6)
    assert c["beta"] == pytest.approx(0.299, abs=1e-6)
    assert c["em_x_coeff"] == pytest.approx(1.495e-4, rel=1e-4)
    assert c["em_score_coeff"] == pytest.approx(2.99e-4, rel=1e-4)
    assert c["em_noise_std"] == pytest.approx(0.0173, abs=1e-4)


def test_vp_sde_marginals_and_importance_sampling():
    sde = VPSDE()
    t = torch.linspace(1e-3, 1, 50)
    assert torch.allclose(sde.marginal_std(t) ** 2 + sde.mean_coeff(t) ** 2, torch.ones(50), atol=1e-6)
    ts = torch.linspace(1e-3, 0.6, 50)  # beyond ~0.6 std rounds to 1 in float32
    assert torch.allclose(sde.time_from_std(sde.marginal_std(ts)), ts, atol=1e-4)
    # t ~ lambda(t) / Z: bin masses agree with the analytic antiderivative
    s = sde.sample_importance_time(100_000, 1e-3, torch.Generator().manual_seed(0))
    z = sde.importance_norm(1e-3)
    for a, b in [(1e-3, 0.01), (0.01, 0.1), (0.1, 0.5), (0.5, 1.0)]:
        f = lambda x: float(sde.importance_cdf_log(torch.tensor(x, dtype=torch.float64)))  # noqa: E731
        assert float(((s >= a) & (s < b)).float().mean()) == pytest.approx((f(b) - f(a)) / z, abs=0.01)


# ----------------------------------------------------------------------------- network layout
@pytest.mark.skipif(not REF_JSON.is_file(), reason="reference JSON of the official checkpoints not present")
def test_official_state_dict_layout():
    ref = json.loads(REF_JSON.read_text())
    for name in OFFICIAL_CONFIGS:
        entries = ref[name] if name in ref else ref["layer3/syn_layer3"]
        sd = build_official(name).state_dict()
        assert [(k, list(v.shape)) for k, v in sd.items()] == [(e["key"], e["shape"]) for e in entries], name
        if name == "latent":
            assert sum(v.numel() for v in sd.values()) == 70_357_173
        if name == "layer1":  # a DataParallel-style checkpoint wraps into a prior on our layer 0
            prior = ScorePrior.from_official("layer1", {"module." + k: v for k, v in sd.items()}, -1.4007, 2.3453)
            assert prior.layer == 0 and torch.equal(prior.model.projector.weight, sd["projector.weight"])
            assert not any(p.requires_grad for p in prior.parameters())


def test_generalises_channels_and_odd_token_count():
    cfg = ScoreViTConfig(channels=6, height=3, width=5, dim=16, depth=1, heads=1, dim_head=8)
    m = ScoreViT(cfg)
    assert m.state_dict()["embed.0.W"].shape == (8,)  # 15 tokens -> 16 Fourier features
    assert m.state_dict()["projector.weight"].shape == (6, 16)
    assert not m.embed[0].W.requires_grad
    assert m(torch.randn(2, 6, 3, 5), torch.rand(2)).shape == (2, 6, 3, 5)


def test_load_official_state_dict_is_strict_and_names_keys():
    m = ScoreViT(TINY)
    good = {"module." + k: v.clone() + 1 for k, v in m.state_dict().items()}
    load_official_state_dict(m, good)  # the module. prefix is stripped
    assert torch.equal(m.projector.bias, good["module.projector.bias"])
    bad = {k[len("module."):]: v for k, v in good.items()}
    del bad["pos_embedding"]
    bad["extra.weight"] = torch.zeros(1)
    bad["projector.weight"] = torch.zeros(5, 32)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(StateDictMismatch) as err:
        load_official_state_dict(m, bad)
    msg = str(err.value)
    assert "missing" in msg and "pos_embedding" in msg
    assert "unexpected" in msg and "extra.weight" in msg
    assert "mis-shaped" in msg and "projector.weight" in msg
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # nothing half-loaded


# ----------------------------------------------------------------------------- priors, chain rule
def test_score_prior_chain_rule_and_latent_layout():
    torch.manual_seed(0)
    prior = ScorePrior(ScoreViT(TINY), norm_min=-1.5, norm_max=2.5)
    h = torch.randn(3, *TINY.shape)
    t = torch.tensor([0.01, 0.3, 0.9])
    with torch.no_grad():
        expected = prior.score_normalized(prior.normalize(h), t) / 4.0
        assert torch.allclose(prior.score(h, t), expected, rtol=1e-5, atol=1e-6)
    hh = h.clone().requires_grad_(True)  # differentiable in h, for methods that backpropagate through it
    prior.score(hh, t).sum().backward()
    assert hh.grad is not None and torch.isfinite(hh.grad).all()
    # analytic: the original-space density is N(lo + s m mu, s^2 (m^2 sig^2 + std^2))
    mu, sig = torch.rand(1, *TINY.shape), torch.rand(1, *TINY.shape) * 0.2 + 0.05
    ref = GaussianScorePrior(mu, sig, norm_min=-1.5, norm_max=2.5)
    s, m, sd = ref.scale, ref.sde.mean_coeff(0.3), ref.sde.marginal_std(0.3)
    direct = -(h - (-1.5 + s * m * mu)) / (s**2 * (m**2 * sig**2 + sd**2))
    assert torch.allclose(ref.score(h, 0.3), direct, rtol=1e-4)
    z = torch.randn(2, 18, 512)
    assert latent_to_image(z).shape == (2, 512, 18, 1) and torch.equal(image_to_latent(latent_to_image(z)), z)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    prior = ScorePrior(ScoreViT(TINY), norm_min=-1.0, norm_max=3.0, layer=2, metadata={"source": "syn", "steps": 7})
    path = prior.save(tmp_path / "p.pt")
    loaded = ScorePrior.load(path)
    assert not loaded.model.training  # loaded for inference
    saved, back = prior.model.state_dict(), loaded.model.state_dict()
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)  # bit for bit
    prior.model.eval()
    x, t = torch.randn(4, *TINY.shape), torch.rand(4)
    with torch.no_grad():  # the same weights in other memory may take another kernel path: float rounding only
        torch.testing.assert_close(prior.score(x, t), loaded.score(x, t), rtol=1e-5, atol=1e-6)
    assert (loaded.norm_min, loaded.norm_max, loaded.layer) == (-1.0, 3.0, 2)
    assert loaded.metadata == {"source": "syn", "steps": 7} and loaded.config == TINY
    torch.load(path, weights_only=True)  # plain tensors/containers only
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a score prior"):
        ScorePrior.load(tmp_path / "bad.pt")


# ----------------------------------------------------------------------------- samplers (analytic scores)
def test_hot_sampler_official_coefficients_and_moves_toward_mode():
    sde = VPSDE()
    y = torch.randn(2, 4, 2, 2)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    out = hot_pc_sampler(zero, sde, y, snr=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, y * (1 + 1.495e-4), rtol=1e-6)  # x_mean: no final noise
    mu, sig = _gaussian()
    ref = GaussianScorePrior((mu + 1) / 4, sig / 4, norm_min=-1.0, norm_max=3.0)  # mode in original space: mu
    h = mu + torch.randn(8, *mu.shape[1:], generator=torch.Generator().manual_seed(1))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    delta = hot_delta(ref, h, steps=1, snr=1e-4, generator=g1)
    assert torch.equal(delta, hot_delta(ref, h, steps=1, snr=1e-4, generator=g2))  # seeded
    # along the (precision-weighted) score, hence downhill toward the mode
    cos = F.cosine_similarity(delta.flatten(1), ref.score(h, 0.01).flatten(1), dim=1)
    assert cos.min() > 0.99
    assert F.cosine_similarity(delta.flatten(1), (mu - h).flatten(1), dim=1).min() > 0.5
    assert ((h + delta - mu).flatten(1).norm(dim=1) < (h - mu).flatten(1).norm(dim=1)).all()
    # more steps (syn_layer3: 5 steps, snr 5e-3) move further
    d5 = hot_delta(ref, h, steps=5, snr=5e-3, generator=g1)
    assert (d5.flatten(1).norm(dim=1) > delta.flatten(1).norm(dim=1)).all()
    # textbook SGLD term: the small-t score in original space, over the temperature
    assert torch.allclose(sgld_prior_term(ref, h, t=0.01, temperature=2.0), ref.score(h, 0.01) / 2.0)


def test_hot_sampler_draws_its_noise_in_the_steps_order():
    """The hot sampler draws each step's two noises before the step (so a compiled step can take them as
    inputs): the same draws, in the same order, as running the corrector and the predictor one after the other
    on one generator, over several steps."""
    mu, sig = _gaussian()
    ref = GaussianScorePrior((mu + 1) / 4, sig / 4, norm_min=-1.0, norm_max=3.0)
    sde, y = ref.sde, torch.randn(3, *mu.shape[1:], generator=torch.Generator().manual_seed(2))
    out = hot_pc_sampler(ref.score_normalized, sde, y, steps=3, snr=5e-3, generator=torch.Generator().manual_seed(7))
    g, x, tv = torch.Generator().manual_seed(7), y, torch.full((3,), 0.01)
    for _ in range(3):
        x, _ = ald_corrector_step(ref.score_normalized, sde, x, tv, 5e-3, g)
        x, x_mean = euler_maruyama_step(ref.score_normalized, sde, x, tv, 1.0 / sde.N, g)
    torch.testing.assert_close(out, x_mean, rtol=0, atol=1e-6)
    assert not torch.equal(out, y)


@pytest.mark.parametrize("predictor,corrector", [("euler_maruyama", "langevin"), ("reverse_diffusion", "ald")])
def test_pc_sampler_recovers_gaussian(predictor, corrector):
    mu, sig = _gaussian()
    ref = GaussianScorePrior((mu + 1) / 4, sig / 4, norm_min=-1.0, norm_max=3.0)
    gen = torch.Generator().manual_seed(0)
    y = pc_sampler(ref.score_normalized, ref.sde, (2000, 4, 2, 2), n_steps=1000, predictor=predictor,
                   corrector=corrector, snr=0.1, generator=gen)
    h = ref.denormalize(y)
    assert (h.mean(0) - mu[0]).abs().max() < 0.06
    assert ((h.std(0) / sig[0]) - 1).abs().max() < 0.12
    again = pc_sampler(ref.score_normalized, ref.sde, (2000, 4, 2, 2), n_steps=1000, predictor=predictor,
                       corrector=corrector, snr=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, again)


def test_annealed_langevin_and_naturalisation():
    mu, sig = _gaussian()
    ref = GaussianScorePrior((mu + 1) / 4, sig / 4, norm_min=-1.0, norm_max=3.0)
    gen = torch.Generator().manual_seed(0)
    y = annealed_langevin(ref.score_normalized, ref.sde, (2000, 4, 2, 2), n_levels=60, steps_each=5, snr=0.2,
                          generator=gen)
    h = ref.denormalize(y)
    assert (h.mean(0) - mu[0]).abs().max() < 0.15
    assert ((h.std(0) / sig[0]) - 1).abs().max() < 0.25
    # naturalisation: an off-distribution point, diffused to t = 0.3 and denoised, lands near the data
    h0 = (mu + 3.0).expand(200, -1, -1, -1)
    shape = (200, 4, 2, 2)
    out = ref.denormalize(pc_sampler(ref.score_normalized, ref.sde, shape, n_steps=100, t_start=0.3,
                                     x0=ref.normalize(h0), generator=gen))
    assert (out.mean(0) - mu[0]).abs().mean() < (h0.mean(0) - mu[0]).abs().mean() / 3


def test_per_channel_standard_normalisation_centres_each_channel_at_std_one_half():
    """``per_channel_standard``: in the network's space every channel has mean 0 and std 0.5 (score_sde's image
    scale), however different the channels' raw scales and offsets."""
    scale, offset = torch.tensor([0.1, 1.0, 7.0]).view(1, 3, 1, 1), torch.tensor([-3.0, 0.0, 5.0]).view(1, 3, 1, 1)
    data = offset + scale * torch.randn(2000, 3, 4, 4, generator=torch.Generator().manual_seed(0)) ** 3
    lo, hi = norm_stats(data, "per_channel_standard")
    y = ScorePrior(ScoreViT(ScoreViTConfig(channels=3, height=4, width=4, dim=8, depth=1, heads=1, dim_head=8,
                                           mlp_ratio=1)), norm_min=lo, norm_max=hi).normalize(data)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.full((3,), 0.5), atol=1e-3, rtol=0)


# ----------------------------------------------------------------------------- training correctness
@pytest.mark.parametrize("stats,time_conditioning", [("global", "official"), ("per_channel", "adaln")])
def test_dsm_training_learns_the_gaussian_score(tmp_path, stats, time_conditioning):
    """Train briefly (through the real entry point, file source) on N(mu, diag sig^2) samples;
    the EMA network's score must match the analytic score of the diffused Gaussian (the official
    network with one normalisation pair, and our adaLN variant with per-channel normalisation)."""
    torch.manual_seed(0)
    mu, sig = _gaussian()
    data = mu + sig * torch.randn(4096, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    torch.save(data, tmp_path / "acts.pt")
    cfg = ScoreTrainConfig(out=str(tmp_path / "run"), source="ilo", data=str(tmp_path / "acts.pt"),
                           generator=str(tmp_path / "none.pt"), stats=stats, dim=32, depth=1, heads=2,
                           time_conditioning=time_conditioning,
                           dim_head=16, mlp_ratio=2, batch=128, lr=3e-3, warmup=50, ema=0.95, weighting="none",
                           steps=600, eval_samples=256, threads=1)  # 1 thread: the CPU is shared
    path = train(cfg, progress=False)
    prior = ScorePrior.load(path)
    lo, hi = prior.norm_min, prior.norm_max
    assert (lo, hi) == norm_stats(data, stats, generator=torch.Generator().manual_seed(cfg.seed + 3))
    ref = GaussianScorePrior(prior.normalize(mu), sig / prior.scale_like(mu), norm_min=lo, norm_max=hi)
    gen = torch.Generator().manual_seed(2)
    cos = []
    with torch.no_grad():
        for t in torch.linspace(0.05, 1.0, 20).tolist():
            mean, var = ref.moments(t, torch.zeros(256, 4, 2, 2))
            h = ref.denormalize(mean + var.sqrt() * torch.randn(256, 4, 2, 2, generator=gen))
            cos.append(F.cosine_similarity(prior.score(h, t).flatten(1), ref.score(h, t).flatten(1), dim=1).mean())
    cos = torch.stack(cos)
    assert cos.mean() > 0.9, cos
    assert cos[:5].mean() > 0.85, cos  # small t, where the data structure dominates
    meta = prior.metadata
    assert meta["steps"] == 600 and meta["finished"] and meta["final_eval_dsm"] < 0.5


def test_train_syn_source_resumes_and_losses(tmp_path):
    from bench.priors.stylegan2 import Generator

    torch.manual_seed(0)
    g = Generator(8, style_dim=16, n_mlp=1, channels={4: 8, 8: 8}, img_channels=1)
    base = dict(out=str(tmp_path / "syn"), source="syn", layer=1, dim=16, depth=1, heads=1, dim_head=8, batch=8,
                eval_samples=16, stats_samples=32, threads=1)
    train(ScoreTrainConfig(**base, steps=3), g=g, progress=False)
    path = train(ScoreTrainConfig(**base, steps=5), g=g, progress=False)  # resumes at step 3
    prior = ScorePrior.load(path)
    assert prior.config.shape == g.layer_shape(1) and prior.layer == 1
    assert prior.metadata["steps"] == 5 and prior.metadata["source"] == "syn"
    assert torch.load(tmp_path / "syn" / "checkpoint.pt", weights_only=True)["step"] == 5
    # every weighting gives a finite loss; samples come back in original space
    y0 = torch.rand(8, *prior.config.shape)
    for w in ("none", "likelihood", "likelihood_is"):
        assert torch.isfinite(dsm_loss(prior.model, prior.sde, y0, weighting=w, generator=torch.Generator()))
    out = sample_layer(prior, 2, n_steps=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, *g.layer_shape(1))


def test_mixture_prior_pools_generator_states_with_the_data(tmp_path):
    """generator_states = N appends a fixed, seeded pool of N generator states to the fixed data (the same pool
    on resume), and the held-out curve mixes fresh generator states in the same proportion."""
    from bench.priors.stylegan2 import Generator
    from bench.scores.train import _eval_states, _generator_and_data, _new_run, build_syn_dataset, heldout_split

    torch.manual_seed(0)
    g = Generator(8, style_dim=16, n_mlp=1, channels={4: 8, 8: 8}, img_channels=1).eval()
    real = torch.randn(30, *g.layer_shape(0)) + 5.0  # far from the generator's states: tells the two apart
    torch.save(real, tmp_path / "real.pt")
    torch.save(torch.randn(10, *g.layer_shape(0)) + 5.0, tmp_path / "held.pt")
    cfg = ScoreTrainConfig(out=str(tmp_path / "mix"), source="ilo", data=str(tmp_path / "real.pt"), layer=0,
                           generator_states=20, heldout=str(tmp_path / "held.pt"), eval_samples=100)
    _, data = _generator_and_data(cfg, g, None)
    assert data.shape[0] == 50 and torch.equal(data[:30], real)
    pool = build_syn_dataset(g, 0, 20, generator=torch.Generator().manual_seed(cfg.seed + 7))
    assert torch.equal(data[30:], pool) and torch.equal(_generator_and_data(cfg, g, None)[1], data)
    run = _new_run(cfg, tmp_path / "mix", torch.device("cpu"), g, data)
    held = _eval_states(run)
    assert heldout_split(30, 20, 10, 100) == (10, 7)  # 40% generator states, as in training; all 10 real ones
    assert held.shape[0] == 17 and (held[:10].mean() > 3) and (held[10:].abs().mean() < 3)
    assert not any(torch.equal(h, p) for h in held[10:] for p in pool)  # fresh, not the training pool
    assert heldout_split(3600, 3600, 400, 512) == (256, 256)


def test_cli_dry_run(capsys):
    main(["--data", "acts.pt", "--layer", "2", "--dry-run"])
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["source"] == "file" and cfg["layer"] == 2 and cfg["weighting"] == "likelihood_is"


def test_a_resumed_log_drops_the_lost_work(tmp_path):
    """Rows logged after the last checkpoint by a killed run, and earlier final rows, are dropped on resume."""
    import json as _json

    from bench.scores.train import _truncate_log

    log = tmp_path / "log.jsonl"
    rows = [{"step": 50, "loss": 1.0}, {"step": 100, "eval_dsm": 0.5}, {"step": 100, "final_eval_dsm": 0.5},
            {"step": 150, "loss": 0.9}, {"step": 200, "eval_dsm": 0.4}]
    log.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    _truncate_log(log, 150)
    assert [_json.loads(x) for x in log.read_text().splitlines()] == [rows[0], rows[1], rows[3]]


@pytest.mark.parametrize("time_conditioning", ["official", "adaln"])
def test_a_scalar_time_gives_the_same_scores_as_a_per_sample_time(time_conditioning):
    """The scalar-t path computes the time conditioning once for the batch; it must equal giving every sample
    the same t, and each sample's score must not depend on the rest of the batch."""
    torch.manual_seed(0)
    net = ScoreViT(ScoreViTConfig(channels=3, height=4, width=4, dim=32, depth=2, heads=2, dim_head=8,
                                  time_conditioning=time_conditioning)).eval()
    if time_conditioning == "adaln":
        torch.nn.init.normal_(net.time_mod.mlp[-1].weight, std=0.1)  # trained-like: t changes the output
    x = torch.randn(5, 3, 4, 4)
    with torch.no_grad():
        scalar = net(x, 0.01)
        per_sample = net(x, torch.full((5,), 0.01))
        expanded = net(x, torch.tensor(0.01).expand(5))  # what the samplers pass: the shortcut path
        single = torch.cat([net(x[i:i + 1], 0.01) for i in range(5)])
        other_t = net(x, 0.5)
    torch.testing.assert_close(scalar, per_sample)
    torch.testing.assert_close(expanded, per_sample)
    torch.testing.assert_close(scalar, single, rtol=1e-5, atol=1e-5)
    assert (scalar - other_t).abs().max() > 1e-3  # the time still matters


def test_gaussian_skip_is_the_exact_gaussian_predictor_and_training_fits_it(tmp_path):
    """With the network's own output zeroed, the Gaussian-skip ViT is the exact noise predictor of the Gaussian
    fitted to its data (bench.scores.evaluate.gaussian_eps) and its score matches the analytic score of the
    diffused Gaussian; training with the flag fits the Gaussian to the normalised training states."""
    from bench.scores.evaluate import gaussian_eps

    torch.manual_seed(0)
    mu, sig = _gaussian()
    a = torch.randn(16, 16, generator=torch.Generator().manual_seed(3)) * 0.05  # correlated dimensions
    white = sig.flatten() * torch.randn(20000, 16, generator=torch.Generator().manual_seed(1))
    y = (0.5 + white @ (torch.eye(16) + a)).view(-1, 4, 2, 2)
    net = ScoreViT(dataclasses.replace(TINY, gaussian_skip=True))
    torch.nn.init.zeros_(net.projector.weight), torch.nn.init.zeros_(net.projector.bias)
    net.set_gaussian(y)
    prior = ScorePrior(net.eval(), norm_min=0.0, norm_max=1.0)
    flat = y.flatten(1).double()
    mean, cov = flat.mean(0), torch.cov(flat.T)
    sde = VPSDE()
    with torch.no_grad():
        for t in (0.01, 0.1, 0.5, 1.0):
            m, s = float(sde.mean_coeff(t)), float(sde.marginal_std(t))
            yt = m * y[:64] + s * torch.randn(64, 4, 2, 2)
            assert torch.allclose(net(yt, torch.full((64,), t)), gaussian_eps(yt, mean, cov, m, s), atol=1e-5)
            # the analytic score of N(m mean, m^2 cov + s^2 I)
            want = -torch.linalg.solve(m * m * cov + s * s * torch.eye(16, dtype=torch.double),
                                       (yt.flatten(1).double() - m * mean).T).T
            assert torch.allclose(prior.score_normalized(yt, t).flatten(1).double(), want, rtol=1e-3, atol=1e-3)
    assert "gaussian_skip" not in TINY.to_dict()  # the stored configs of earlier models are unchanged
    assert dataclasses.replace(TINY, gaussian_skip=True).to_dict()["gaussian_skip"]
    data = mu + sig * torch.randn(512, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    torch.save(data, tmp_path / "acts.pt")
    cfg = ScoreTrainConfig(out=str(tmp_path / "run"), source="ilo", data=str(tmp_path / "acts.pt"),
                           generator=str(tmp_path / "none.pt"), stats="per_channel_standard", dim=32, depth=1,
                           heads=2, dim_head=16, mlp_ratio=2, batch=64, steps=5, eval_samples=64, threads=1,
                           time_conditioning="adaln", gaussian_skip=True)
    fitted = ScorePrior.load(train(cfg, progress=False))
    assert fitted.config.gaussian_skip and fitted.metadata["gaussian_skip"]
    want = fitted.normalize(data).flatten(1).mean(0)
    assert torch.allclose(fitted.model.skip_mean, want, atol=1e-5)
