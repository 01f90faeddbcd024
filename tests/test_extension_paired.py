"""scripts/extension_paired.py: an extension sweep's tuned rows pair image by image with the base sweep's
references, through the report's own paired statistics."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "extension_paired.py"


def rows(method: str, variant: str, mses: dict[tuple[int, str], float], task: str = "denoise") -> list[dict]:
    return [{"stage": "eval", "task": task, "level": 1.0, "method": method, "variant": variant, "seed": seed,
             "image_id": img, "image_set": "test", "status": "ok", "mse": mse} for (seed, img), mse in mses.items()]


def test_extension_differences_are_paired_by_image_and_averaged_over_seeds(tmp_path):
    base = rows("ilo", "tuned", {(0, "a"): 0.5, (1, "a"): 0.7, (0, "b"): 0.2, (1, "b"): 0.2})
    base += rows("csgm", "tuned", {(0, "a"): 0.1, (1, "a"): 0.1, (0, "b"): 0.1, (1, "b"): 0.1})
    base += rows("ilo", "tuned", {(0, "a"): 9.0}, task="cs")  # another task: left out
    ext = rows("ilo", "tuned", {(0, "a"): 0.3, (1, "a"): 0.5, (0, "b"): 0.3, (1, "b"): 0.3})
    ext += rows("ilo", "grid0", {(0, "a"): 5.0, (0, "b"): 5.0})  # a tuning candidate, not the tuned method
    pd.DataFrame(base).to_csv(tmp_path / "base.csv", index=False)
    pd.DataFrame(ext).to_csv(tmp_path / "ext.csv", index=False)
    out = tmp_path / "paired.csv"
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "base.csv"), f"ilo_ext={tmp_path / 'ext.csv'}",
                    "--task", "denoise", "--out", str(out)], check=True, capture_output=True)
    t = pd.read_csv(out).set_index("reference")
    assert set(t["method"]) == {"ilo_ext"}
    # image a: 0.4 - 0.6 = -0.2; image b: 0.3 - 0.2 = +0.1 -> mean -0.05, one win in two
    assert t.loc["ilo", "mean_diff"] == pytest.approx(-0.05)
    assert t.loc["ilo", "win_rate"] == pytest.approx(0.5)
    assert t.loc["csgm", "mean_diff"] == pytest.approx(0.25)  # (0.3 + 0.2) / 2
    assert (t["n"] == 2).all() and (t["seeds"] == 2).all()


def test_a_missing_extension_file_is_named(tmp_path):
    pd.DataFrame(rows("ilo", "tuned", {(0, "a"): 0.5})).to_csv(tmp_path / "base.csv", index=False)
    res = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "base.csv"), "x=nope.csv", "--task", "denoise",
                          "--out", str(tmp_path / "o.csv")], capture_output=True, text=True)
    assert res.returncode != 0 and "nope.csv" in res.stderr
