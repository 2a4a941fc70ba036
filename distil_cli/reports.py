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


def print_inspection(console, inputs, count: int) -> None:
    """Show N training examples as the model sees them: prompt dimmed, supervised tokens highlighted."""
    from rich.panel import Panel
    from rich.text import Text

    tokenizer = inputs.tokenizer
    examples = inputs.examples.examples[:count]
    console.print(
        f"formatter: {inputs.formatter.name} (end-of-turn {inputs.formatter.end_of_turn!r}); "
        f"model: {inputs.model_source}; examples: {len(inputs.examples.examples)}; "
        f"inputs cropped: {inputs.examples.cropped}",
        highlight=False,
        markup=False,
    )
    for example in examples:
        prompt_ids = [t for t, label in zip(example["input_ids"], example["labels"]) if label == -100]
        target_ids = [t for t, label in zip(example["input_ids"], example["labels"]) if label != -100]
        text = Text()
        text.append(tokenizer.decode(prompt_ids), style="dim")
        text.append(tokenizer.decode(target_ids), style="bold green")
        task = "summary" if example["task"] == 0 else "rationale"
        title = (
            f"{example['id']} [{task}] tokens: {len(example['input_ids'])} total, "
            f"{len(prompt_ids)} prompt (masked), {len(target_ids)} supervised"
        )
        console.print(Panel(text, title=Text(title), title_align="left"))
