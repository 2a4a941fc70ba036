"""Rich tables shared by the commands (data goes to stdout)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def stats_table(rows: list[dict[str, Any]], title: str = "length statistics") -> Table:
    table = Table(title=title)
    for column in ("split", "lang", "field", "unit", "count", "min", "median", "p90", "p95", "max"):
        table.add_column(column, justify="right" if column not in ("split", "lang", "field", "unit") else "left")
    for row in rows:
        table.add_row(
            *(str(row[c]) for c in ("split", "lang", "field", "unit", "count", "min", "median", "p90", "p95", "max"))
        )
    return table
