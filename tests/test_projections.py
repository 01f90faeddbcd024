"""l1-ball projection, spherical projection and geocross: invariants and brute force."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from bench.core.projections import geocross, project_l1_ball, project_to_radii, sphere_norms


def brute_force_l1_projection(v: np.ndarray, r: float) -> np.ndarray:
    """Minimise ||x - v||^2 s.t. ||x||_1 <= r by enumerating sign patterns and supports.

    On the boundary, x_i = sign(v_i) (|v_i| - theta)_+ for a scalar theta; try every support
    and keep the feasible point closest to v.
    """
    if np.abs(v).sum() <= r:
        return v.copy()
    best, best_d = None, np.inf
    n = len(v)
    for k in range(1, n + 1):
        for support in itertools.combinations(range(n), k):
            s = np.array(support)
            theta = (np.abs(v[s]).sum() - r) / k
            x = np.zeros_like(v)
            x[s] = np.sign(v[s]) * (np.abs(v[s]) - theta)
            if np.any(np.abs(v[s]) - theta < -1e-12):
                continue
            d = ((x - v) ** 2).sum()
            if abs(np.abs(x).sum() - r) < 1e-9 and d < best_d:
                best, best_d = x, d
    return best


def test_l1_projection_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = rng.integers(1, 7)
        v = rng.normal(size=n) * rng.uniform(0.1, 3)
        r = float(rng.uniform(0.05, 3))
        ours = project_l1_ball(torch.tensor(v)[None], r)[0].numpy()
        np.testing.assert_allclose(ours, brute_force_l1_projection(v, r), atol=1e-9)


def test_l1_projection_inside_ball_and_identity():
    x = torch.randn(5, 3, 4, 4) * 3
    radii = torch.tensor([1.0, 5.0, 1000.0, 0.1, 20.0])
    p = project_l1_ball(x, radii)
    norms = p.flatten(1).abs().sum(1)
    assert (norms <= radii * (1 + 1e-5)).all()
    assert torch.equal(p[2], x[2])  # row already inside: unchanged
    outside = x.flatten(1).abs().sum(1) > radii
    torch.testing.assert_close(norms[outside], radii[outside])
    # idempotent
    torch.testing.assert_close(project_l1_ball(p, radii), p)


def test_spherical_projection_restores_radii():
    x = torch.randn(2, 3, 8)
    radii = sphere_norms(x)
    y = x * torch.rand(2, 3, 1) * 4
    torch.testing.assert_close(sphere_norms(project_to_radii(y, radii)), radii)


def test_geocross_zero_for_identical_rows_and_positive_otherwise():
    same = torch.randn(2, 1, 16).expand(2, 5, 16).contiguous()
    assert geocross(same).abs().max() < 1e-3
    diff = torch.randn(2, 5, 16)
    g = geocross(diff)
    assert g.shape == (2,) and (g > 1).all()
    # antipodal pair: angle pi for each of the 2 off-diagonal entries of a 2x2 table
    x = torch.randn(1, 1, 16)
    val = geocross(torch.cat([x, -x], 1))
    torch.testing.assert_close(val, torch.tensor([16 * (torch.pi**2) * 2 / 4 / 8]), rtol=1e-3, atol=1e-3)
