"""Reports: Table-1 style tables, paired tests, figures, registration, W&B helpers (no Lightning, no Hydra)."""

from afm_sr.report.stats import paired_comparison, wilcoxon_p
from afm_sr.report.tables import summarize, to_csv, to_markdown, write_table1

__all__ = ["paired_comparison", "summarize", "to_csv", "to_markdown", "wilcoxon_p", "write_table1"]
