"""Send a report (tables and PNG figures) to a W&B run, so an evaluation opens in W&B beside its training runs.

Takes the run object (``WandbLogger.experiment``), not a logger: this package knows no Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import wandb


def table(rows: Sequence[Mapping[str, Any]]) -> wandb.Table:
    """A ``wandb.Table`` with one column per key of the first row."""
    columns = list(rows[0]) if rows else []
    return wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])


def log_report(run: Any, tables: Mapping[str, Sequence[Mapping[str, Any]]], images: Mapping[str, Path],
               prefix: str = "eval") -> None:
    """Log each table as ``{prefix}/{name}`` (wandb.Table) and each PNG as ``{prefix}/{name}`` (wandb.Image)."""
    payload: dict[str, Any] = {f"{prefix}/{name}": table(rows) for name, rows in tables.items()}
    payload.update({f"{prefix}/{name}": wandb.Image(str(path)) for name, path in images.items()})
    run.log(payload)
