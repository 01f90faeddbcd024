"""The one way to derive seeds: a hash of named parts (EDM-style: one generator per purpose
and image), so a draw never depends on batch-mates, batch position, worker or rank."""
from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from ``parts`` (joined with "/" and hashed with SHA-256).

    ``derive_seed(cell_seed, image_id)`` is an image's seed, ``derive_seed(seed, task, level)``
    an operator's; add a purpose string for anything else (``derive_seed("init", image_seed)``).
    """
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def generator(*parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``derive_seed(*parts)`` on ``device``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
