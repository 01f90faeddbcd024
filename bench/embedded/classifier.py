"""The embedded world's attribute classifier: a small CNN on Fashion-MNIST's 10 classes.

It stands in for CLIP in the fairness table (Sandal vs Sneaker shares of reconstructions) and
its penultimate features are the feature space of the generator-quality figures
(``bench.embedded.quality``). Inputs are 32x32 single-channel images in [-1, 1], exactly as
``bench.data.fashion_mnist.load_tensor`` and the embedded generator produce them.

Training uses the train split only (the last ``val`` images of a fixed permutation are held out
for model selection); the test split is never seen. A checkpoint is written atomically after
every epoch, so re-running the command resumes. The final weights (state dict + config, no
optimizer) go to ``bench/embedded/weights/classifier.pt`` and are loaded by
:func:`load_classifier` through the asset registry (asset ``fmnist-classifier``).
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.core.io import atomic_torch_save
from bench.data.fashion_mnist import load_tensor

ASSET_NAME = "fmnist-classifier"
DEFAULT_MODEL = dict(channels=(32, 64, 128), feature_dim=128, num_classes=10, dropout=0.3)


class FmnistClassifier(nn.Module):
    """Three conv/max-pool/BN/ReLU blocks (32->16->8->4), a 128-d feature layer and a linear head.

    Pooling comes before BN/ReLU so those run on 4x fewer activations (the CPU budget is tight);
    for a positive BN scale this is the same function as the usual conv/BN/ReLU/pool order.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128), feature_dim: int = 128,
                 num_classes: int = 10, dropout: float = 0.3, in_channels: int = 1, size: int = 32) -> None:
        super().__init__()
        blocks, c_in = [], in_channels
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        spatial = size // 2 ** len(channels)
        self.embed = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * spatial * spatial, feature_dim),
                                   nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (post-ReLU) features [N, feature_dim]: the space of the quality FID."""
        return self.embed(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_classifier(config: dict | None = None) -> FmnistClassifier:
    cfg = dict(DEFAULT_MODEL, **(config or {}))
    cfg["channels"] = tuple(cfg["channels"])
    return FmnistClassifier(**cfg)


def load_classifier(device: str | torch.device = "cpu", path: str | Path | None = None) -> FmnistClassifier:
    """The committed classifier (asset ``fmnist-classifier``) in eval mode, frozen, on ``device``."""
    if path is None:
        from bench.core.assets import asset_path
        path = asset_path(ASSET_NAME)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = build_classifier(blob["config"])
    model.load_state_dict(blob["state_dict"])
    return model.eval().requires_grad_(False).to(device)


# ----------------------------------------------------------------------------- training
@dataclass
class ClassifierConfig:
    out: str = "runs/embedded/classifier"
    weights: str = str(Path(__file__).resolve().parent / "weights" / "classifier.pt")
    epochs: int = 8
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 5e-4
    val: int = 5000  # held out from the train split for model selection
    shift: int = 2  # max translation (px) of the augmentation; 0 disables it
    flip: bool = True  # random horizontal flip
    seed: int = 0
    threads: int = 2
    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL))


def augment(x: torch.Tensor, gen: torch.Generator, shift: int, flip: bool) -> torch.Tensor:
    """Random horizontal flip and integer translation by up to ``shift`` px (background fill -1)."""
    n, _, h, w = x.shape
    if flip:
        x = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
    if shift > 0:
        padded = F.pad(x, [shift] * 4, value=-1.0)
        dy, dx = (torch.randint(0, 2 * shift + 1, (2, n), generator=gen)).unbind(0)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    return x


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Logits of ``x`` in batches (the model must already be in eval mode)."""
    dev = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch].to(dev)).float().cpu() for i in range(0, len(x), batch)])


def _split(n: int, val: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - val], perm[n - val :]


def train(cfg: ClassifierConfig) -> Path:
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    x_all, y_all = load_tensor("train")
    tr_idx, va_idx = _split(len(x_all), cfg.val, cfg.seed)
    x_tr, y_tr, x_va, y_va = x_all[tr_idx], y_all[tr_idx], x_all[va_idx], y_all[va_idx]
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(x_tr) + cfg.batch - 1) // cfg.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.2)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    epoch, seconds, history, best = 0, 0.0, [], None
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        gen.set_state(state["rng"]); torch.set_rng_state(state["torch_rng"])
        epoch, seconds, history, best = state["epoch"], state["seconds"], state["history"], state["best"]
        print(f"resumed from {ckpt_path} after epoch {epoch} ({seconds / 60:.1f} min)")
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    from tqdm import tqdm

    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=epoch * steps_per_epoch, desc="classifier", unit="step", mininterval=10)
    while epoch < cfg.epochs:
        start = time.time()
        model.train()
        order = torch.randperm(len(x_tr), generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, len(order), cfg.batch):
            idx = order[i : i + cfg.batch]
            xb, yb = augment(x_tr[idx], gen, cfg.shift, cfg.flip), y_tr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
            loss_sum += loss.item() * len(idx); correct += (logits.argmax(1) == yb).sum().item()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False); bar.update(1)
        model.eval()
        val_acc = (predict(model, x_va).argmax(1) == y_va).float().mean().item()
        epoch += 1
        seconds += time.time() - start
        history.append({"epoch": epoch, "train_loss": loss_sum / len(order), "train_acc": correct / len(order),
                        "val_acc": val_acc, "seconds": round(seconds, 1)})
        bar.write(json.dumps(history[-1]))
        if best is None or val_acc > best["val_acc"]:
            best = {"epoch": epoch, "val_acc": val_acc, "state_dict": copy.deepcopy(model.state_dict())}
        atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": gen.get_state(),
                      "torch_rng": torch.get_rng_state(), "epoch": epoch, "seconds": seconds, "history": history,
                      "best": best}, ckpt_path)
    bar.close()
    with open(out / "history.json", "w") as f:
        json.dump(history, f, indent=1)
    weights = Path(cfg.weights)
    meta = {"epoch": best["epoch"], "val_acc": best["val_acc"], "train_seconds": round(seconds, 1),
            "params": sum(p.numel() for p in model.parameters()), "data": f"fashion-mnist train split minus {cfg.val} held out"}
    atomic_torch_save({"state_dict": best["state_dict"], "config": dict(cfg.model, channels=list(cfg.model["channels"])),
                  "meta": meta}, weights)
    print(f"best epoch {best['epoch']} (val acc {best['val_acc']:.4f}), {seconds / 60:.1f} min; weights -> {weights}")
    return weights


def evaluate(path: str | Path | None = None, split: str = "test") -> dict:
    """Accuracy overall/per class and the confusion matrix of the saved classifier on ``split``."""
    torch.set_num_threads(2)
    x, y = load_tensor(split)
    pred = predict(load_classifier("cpu", path), x).argmax(1)
    conf = torch.zeros(10, 10, dtype=torch.long)
    conf.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    per_class = (conf.diag().float() / conf.sum(1).float()).tolist()
    return {"split": split, "n": len(y), "accuracy": (pred == y).float().mean().item(), "per_class": per_class,
            "confusion": conf.tolist()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or resume) and write the final weights")
    defaults = ClassifierConfig()
    for name in ("out", "weights", "epochs", "batch", "lr", "weight_decay", "val", "shift", "seed", "threads"):
        val = getattr(defaults, name)
        t.add_argument(f"--{name.replace('_', '-')}", type=type(val), default=val)
    t.add_argument("--no-flip", dest="flip", action="store_false")
    e = sub.add_parser("eval", help="accuracy of saved weights on a split")
    e.add_argument("--weights", default=None)
    e.add_argument("--split", default="test")
    args = vars(p.parse_args(argv))
    if args.pop("cmd") == "train":
        train(ClassifierConfig(**args))
    else:
        print(json.dumps(evaluate(args["weights"], args["split"]), indent=1))


if __name__ == "__main__":
    main()
