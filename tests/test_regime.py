"""The regime table (bench/report/regime.py) from generator configs alone."""
from bench.report.regime import regime_markdown, regime_rows

FFHQ = {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2}


def test_ffhq_regime_matches_hand_counts():
    rows = {(r["task"], r["level"]): r for r in regime_rows("ffhq", FFHQ)}
    r = rows[("inpaint", 0.0075)]
    assert r["n"] == 3 * 1024 * 1024 and r["p_layer0"] == 512 * 4 * 4 and r["p_layer1"] == 512 * 8 * 8
    assert abs(r["m"] - 0.0075 * 3 * 1024 * 1024) <= 1
    assert abs(r["m_over_p_layer1"] - 0.72) < 0.005  # the paper's hardest inpainting: m/p ~ 0.7 for the 8x8 state
    assert r["k_z"] == 512 and r["k_wplus"] == 18 * 512


def test_narrow_low_resolution_blocks_change_p_and_the_table_says_so():
    wide = dict(size=32, style_dim=128, n_mlp=4, channels={4: 128, 8: 128, 16: 128, 32: 64}, img_channels=1)
    narrow = dict(wide, channels={4: 16, 8: 8, 16: 128, 32: 64})
    w, n = regime_rows("embedded", wide)[0], regime_rows("embedded", narrow)[0]
    assert (w["p_layer0"], w["p_layer1"]) == (2048, 8192) and (n["p_layer0"], n["p_layer1"]) == (256, 512)
    assert n["m_over_p_layer1"] == round(n["m"] / 512, 4)
    assert "p/n = 0.5" in regime_markdown("embedded", regime_rows("embedded", narrow))
