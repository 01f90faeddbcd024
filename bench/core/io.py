"""Atomic file writes: a file appears complete or not at all (kill -9 safe).

Every checkpoint, store record and saved image set goes through :func:`atomic_write`, so a
killed process never leaves a half-written file under a final name.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, fsync it, then ``os.replace``
    it onto ``path``; on any error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_torch_save(obj: object, path: str | Path) -> Path:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(path: str | Path, obj: Any, **dump_kwargs: Any) -> Path:
    """JSON through :func:`atomic_write` (``default=str`` unless given)."""
    dump_kwargs.setdefault("default", str)
    blob = json.dumps(obj, **dump_kwargs).encode()
    return atomic_write(path, lambda f: f.write(blob))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def file_fingerprint(path: str | Path, head_bytes: int = 1 << 20) -> str:
    """``<size>:<sha256 of the first head_bytes>``: cheap on GB checkpoints, and any re-export or
    replacement of a weights file changes it (its header holds the tensors' metadata)."""
    import hashlib

    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(head_bytes)
    return f"{path.stat().st_size}:{hashlib.sha256(head).hexdigest()[:16]}"


class UnreadableFileError(ValueError):
    """A weights file that cannot be read safely; the message names the file and why."""


def load_tensors(path: str | Path, what: str, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and say what was wrong.

    torch's own message for a refused pickle suggests re-running with ``weights_only=False``; that
    would run whatever code the file carries, so it is never relayed (this harness never disables
    safe loading for files a user supplies)."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as err:
        import re

        code = re.search(r"GLOBAL ([\w.]+)", str(err))
        if code:
            raise UnreadableFileError(
                f"{path}: not a plain tensor file for {what}: it holds a Python object ({code.group(1)}), not only "
                f"tensors; refusing to load it (unpickling objects can run code). Use the original file from its "
                f"source") from None
        raise UnreadableFileError(f"{path}: cannot read {what}: not a tensor file (damaged, truncated or another "
                                  f"format)") from None
    except Exception as err:  # noqa: BLE001 - zip/pickle/decoding errors of a damaged or foreign file
        first = str(err).splitlines()[0][:200] if str(err) else ""
        if "eights_only" in str(err) or "eights only" in str(err):  # torch's advice to load unsafely: never relayed
            first = ""
        raise UnreadableFileError(f"{path}: cannot read {what}: not a tensor file (damaged, truncated or another "
                                  f"format)" + (f"; {type(err).__name__}: {first}" if first else "")) from None
