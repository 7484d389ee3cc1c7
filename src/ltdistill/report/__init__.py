"""Reports: Markdown tables of evaluation results."""

from ltdistill.report.tables import results_table

__all__ = ["results_table"]
