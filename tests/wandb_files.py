"""Read an offline W&B run file (``run-<id>.wandb``) back, for tests: the records of its
LevelDB-style log (32 KiB blocks, 7-byte record headers: CRC32, length, type) parsed as wandb's
protobuf ``Record``s. wandb 0.31 ships no public reader for offline runs."""
from __future__ import annotations

import struct
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", f"{path}: not a W&B run file"
    pos, buf = 7, b""
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        chunk, pos = data[pos:pos + length], pos + length
        if kind == 0 and length == 0:
            continue
        buf += chunk
        if kind in (FULL, LAST):
            r = pb.Record()
            r.ParseFromString(buf)
            yield r
            buf = b""


def run_summary(path: Path) -> dict:
    """{name, tags, config keys, logged keys, metrics (name -> step metric)} of one offline run file."""
    out = {"name": None, "tags": [], "config": set(), "logged": set(), "metrics": {}}
    for r in read_records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["tags"] = r.run.display_name, list(r.run.tags)
            out["config"] |= {i.key for i in r.run.config.update}
        elif kind == "history":
            out["logged"] |= {i.key or "/".join(i.nested_key) for i in r.history.item}
        elif kind == "metric":
            out["metrics"][r.metric.name] = r.metric.step_metric
    return out
