"""Kill-safe result store: one JSON file per finished cell, written atomically.

Layout under a sweep folder::

    plan.json                 the resolved cells (written by the sweep / --plan-only)
    cells/<key>.json          the final record of a cell: ok, or failed after its last retry
    attempts/<key>.<n>.json   each failed attempt (kept for diagnosis)

A file appears only through ``os.replace`` of a fully written temporary file, so a process
killed at any moment leaves either the whole record or none (stray ``*.tmp`` files are
ignored). A cell whose record exists is never run again; two writers of the same cell (a
requeued job racing its original) write the same key, so results are never duplicated.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from bench.core.io import atomic_write_json
from bench.harness.runner import Cell, CellResult


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        self.attempts_dir = self.root / "attempts"

    # ------------------------------------------------------------------ cells
    def record_path(self, cell: Cell) -> Path:
        return self.cells_dir / f"{cell.key}.json"

    def is_done(self, cell: Cell) -> bool:
        return self.record_path(cell).exists()

    def status(self, cell: Cell) -> str | None:
        """"ok" or "failed" for a cell with a final record, None for a pending one."""
        p = self.record_path(cell)
        return json.loads(p.read_text())["status"] if p.exists() else None

    def _attempt_files(self, cell: Cell) -> int:
        return len(list(self.attempts_dir.glob(f"{cell.key}.*.json"))) if self.attempts_dir.exists() else 0

    def _reopen_mark(self, cell: Cell) -> Path:
        return self.attempts_dir / f"{cell.key}.reopen"

    def attempts(self, cell: Cell) -> int:
        """Failed attempts since the cell was last reopened (every attempt file is kept for diagnosis)."""
        mark = self._reopen_mark(cell)
        return self._attempt_files(cell) - (int(mark.read_text()) if mark.exists() else 0)

    def record(self, result: CellResult, max_attempts: int = 2) -> str:
        """Store a result; returns "ok", "retry" (failed, attempts left) or "failed" (final)."""
        if result.status == "ok":
            atomic_write_json(self.record_path(result.cell), result.to_json())
            return "ok"
        n = self._attempt_files(result.cell) + 1
        blob = result.to_json() | {"attempt": n}
        atomic_write_json(self.attempts_dir / f"{result.cell.key}.{n}.json", blob)
        if self.attempts(result.cell) >= max_attempts:
            atomic_write_json(self.record_path(result.cell), blob)
            return "failed"
        return "retry"

    def reopen_failed(self, cells: Iterable[Cell]) -> int:
        """Make the cells whose final record is a failure pending again (their attempts are kept and
        counted afresh), so a re-run after fixing the cause runs them; returns how many."""
        n = 0
        for cell in cells:
            if self.status(cell) == "failed":
                self.attempts_dir.mkdir(parents=True, exist_ok=True)
                self._reopen_mark(cell).write_text(str(self._attempt_files(cell)))
                self.record_path(cell).unlink()
                n += 1
        return n

    def pending(self, cells: Iterable[Cell]) -> list[Cell]:
        return [c for c in cells if not self.is_done(c)]

    # ------------------------------------------------------------------ reading
    def records(self) -> list[dict[str, Any]]:
        if not self.cells_dir.exists():
            return []
        out = []
        for p in sorted(self.cells_dir.glob("*.json")):
            with open(p) as f:
                out.append(json.load(f))
        return out

    def rows(self) -> list[dict[str, Any]]:
        return [row for rec in self.records() for row in rec["rows"]]

    def traces(self) -> list[dict[str, Any]]:
        out = []
        for rec in self.records():
            c = rec["cell"]
            for t in rec.get("traces", []):
                out.append({"cell": rec["key"], "stage": c["stage"], "task": c["task"], "level": c["level"],
                            "method": c["method"], "variant": c["variant"], **t})
        return out

    # ------------------------------------------------------------------ plans
    def write_plan(self, cells: list[Cell], meta: dict[str, Any] | None = None, name: str = "plan.json") -> Path:
        path = self.root / name
        atomic_write_json(path, {"meta": meta or {}, "cells": [c.to_dict() for c in cells]})
        return path

    def read_plan(self, name: str = "plan.json") -> tuple[list[Cell], dict[str, Any]]:
        return read_plan(self.root / name)


def read_plan(path: str | Path) -> tuple[list[Cell], dict[str, Any]]:
    with open(path) as f:
        blob = json.load(f)
    return [Cell.from_dict(c) for c in blob["cells"]], blob.get("meta", {})
