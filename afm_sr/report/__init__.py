"""Reports: Table-1 style tables, figures, and logging helpers (no Lightning, no Hydra)."""

from afm_sr.report.tables import summarize, to_csv, to_markdown, write_table1

__all__ = ["summarize", "to_csv", "to_markdown", "write_table1"]
