"""Rich tables shared by the commands (data goes to stdout)."""

from __future__ import annotations

from typing import Any

from rich import box
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
        f"family: {inputs.family.name if inputs.family else 'none detected'}; "
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
        # wrapped, never cropped: the console keeps data lines whole (soft_wrap), which would cut a
        # long example at the panel's edge, supervised end included
        console.print(Panel(text, title=Text(title), title_align="left"), soft_wrap=False)


def _cell(row: dict[str, Any], metric: str) -> str:
    value = f"{row[metric]:.2f}"
    ci = row.get(f"{metric}_ci")
    return f"{value} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else value


NAME_COLUMNS = ("run", "base", "other", "lang", "metric")


def _widths(rows: list[dict[str, Any]], column: str) -> dict[str, Any]:
    """Names (runs, languages, metrics) and headers are never cut or broken: a narrow terminal wraps values."""
    if column in NAME_COLUMNS:
        width = max([len(column), *(len(str(row.get(column, ""))) for row in rows)])
        return {"no_wrap": True, "min_width": width}
    return {"min_width": len(column), "overflow": "fold"}


def score_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The metric values of score rows (no per-type precision/recall, no CIs)."""
    skip = {"run", "lang", "n"}
    return [k for k in (rows[0] if rows else {}) if k not in skip and not k.endswith(("_ci", "_p", "_r"))]


def score_table(rows: list[dict[str, Any]], title: str = "scores (x100); rouge_mean = mean of R1, R2, RL") -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)  # light borders: 80 columns hold more
    columns = score_columns(rows)
    for column in ("run", "lang", "n", *columns):
        table.add_column(column, justify="left" if column in ("run", "lang") else "right", **_widths(rows, column))
    for row in rows:
        table.add_row(row["run"], row["lang"], str(row["n"]), *(_cell(row, m) for m in columns))
    return table


def compare_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="paired difference (other - base), bootstrap 95% CI", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("base", "other", "lang", "metric", "n", "diff", "95% CI", "p"):
        justify = "left" if column in ("base", "other", "lang", "metric") else "right"
        table.add_column(column, justify=justify, **_widths(rows, column))
    for row in rows:
        ci = f"[{row['ci'][0]:+.2f}, {row['ci'][1]:+.2f}]" if row["ci"] else "n < 10"
        table.add_row(
            row["base"],
            row["other"],
            row["lang"],
            row["metric"],
            str(row["n"]),
            f"{row['diff']:+.2f}",
            ci,
            "-" if row["p_value"] is None else f"{row['p_value']:.3f}",
        )
    return table


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CI pairs split into _low/_high columns for CSV."""
    flat = []
    for row in rows:
        out = {}
        for key, value in row.items():
            if isinstance(value, list):
                out[f"{key}_low"], out[f"{key}_high"] = value
            elif value is None and key.endswith("ci"):
                out[f"{key}_low"] = out[f"{key}_high"] = None
            else:
                out[key] = value
        flat.append(out)
    return flat


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in first-seen order (small groups have no CI columns)."""
    return list(dict.fromkeys(k for row in rows for k in row))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    flat = flat_rows(rows)
    if not flat:
        return ""
    keys = columns_of(flat)

    def cell(value) -> str:
        return f"{value:.2f}" if isinstance(value, float) else ("" if value is None else str(value))

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in flat:
        lines.append("| " + " | ".join(cell(row.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def plot_scores(rows: list[dict[str, Any]], path, metric: str = "rouge_mean") -> None:
    """Grouped bars of a metric's mean per language and run, with CI whiskers when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(dict.fromkeys(r["run"] for r in rows))
    langs = list(dict.fromkeys(r["lang"] for r in rows))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(langs) * max(1, len(runs)) ** 0.5 + 2), 4))
    for k, run in enumerate(runs):
        xs, ys, errs = [], [], [[], []]
        for j, lang in enumerate(langs):
            row = next((r for r in rows if r["run"] == run and r["lang"] == lang), None)
            if row is None:
                continue
            xs.append(j + k * width)
            ys.append(row[metric])
            ci = row.get(f"{metric}_ci") or [row[metric], row[metric]]
            errs[0].append(row[metric] - ci[0])
            errs[1].append(ci[1] - row[metric])
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=run)
    ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(langs))], langs)
    ax.set_ylabel("mean ROUGE (R1, R2, RL)" if metric == "rouge_mean" else metric)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def annotate_summary(stats) -> Table:
    from statistics import fmean

    table = Table(title="annotation summary")
    table.add_column("what", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    elapsed = max(stats_elapsed(stats), 1e-9)
    rows = [
        ("records", stats.total),
        ("already annotated (skipped)", stats.skipped),
        ("annotated now", stats.done),
        ("failed after retries", stats.failed),
        ("prompt tokens", stats.prompt_tokens),
        ("completion tokens", stats.completion_tokens),
        ("records/s", f"{stats.done / elapsed:.2f}"),
        ("mean grounding", f"{fmean(stats.grounding):.3f}" if stats.grounding else "-"),
    ]
    rows += [(f"flagged: {flag}", count) for flag, count in sorted(stats.flags.items())]
    for what, value in rows:
        table.add_row(what, str(value))
    return table


def stats_elapsed(stats) -> float:
    import time

    return time.perf_counter() - stats.started


def plugins_tables(registry) -> list[Table]:
    plugins = Table(title="plugins")
    for column in ("plugin", "package", "status"):
        plugins.add_column(column, overflow="fold")
    for row in registry.plugins:
        plugins.add_row(row["name"], row["package"], row["status"])
    families = Table(title="model families")
    for column in ("family", "formatter", "recognises", "end of turn", "LoRA targets", "tiny preset", "plugin"):
        families.add_column(column, overflow="fold")
    for fam in registry.families.values():
        recognises = ", ".join([*fam.model_types, *fam.architectures, *(f"/{p}/" for p in fam.name_patterns)])
        families.add_row(
            fam.name,
            fam.formatter,
            recognises,
            " ".join(fam.end_of_turn),
            ",".join(fam.lora_target_modules),
            "yes" if fam.tiny_config else "no",
            registry.source("family", fam.name),
        )
    formatters = Table(title="prompt formatters")
    formatters.add_column("formatter", overflow="fold")
    formatters.add_column("plugin", overflow="fold")
    for name in registry.formatters:
        formatters.add_row(name, registry.source("formatter", name))
    backends = Table(title="annotate backends")
    backends.add_column("backend", overflow="fold")
    backends.add_column("plugin", overflow="fold")
    for name in registry.backends:
        backends.add_row(name, registry.source("backend", name))
    metrics = Table(title="metrics (distil score --metric)")
    metrics.add_column("metric", overflow="fold")
    metrics.add_column("plugin", overflow="fold")
    for name in registry.metrics:
        metrics.add_row(name, registry.source("metric", name))
    return [plugins, families, formatters, backends, metrics]


def read_metrics(run_dir) -> list[dict[str, Any]]:
    """The lines of RUN_DIR/metrics.jsonl (a missing or torn file gives what parses)."""
    import json
    from pathlib import Path

    path = Path(run_dir) / "metrics.jsonl"
    lines = []
    if path.is_file():
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
    return lines


CURVES = (
    ("training loss per task", (("loss_pred", "summary"), ("loss_expl", "rationale"))),
    ("validation loss per task (teacher-forced)", (("eval_loss_pred", "summary"), ("eval_loss_expl", "rationale"))),
    ("validation ROUGE (generated summaries)", (("eval_rouge_mean", "mean of R1, R2, RL"),)),
    ("learning rate", (("learning_rate", "lr"),)),
)


def plot_curves(run_dirs: list, path, names: list[str] | None = None) -> None:
    """Training curves of one or more runs: task losses, validation losses, validation ROUGE, learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    names = names or [str(d) for d in run_dirs]
    for (title, series), ax in zip(CURVES, axes.flat):
        for run_dir, name in zip(run_dirs, names):
            lines = read_metrics(run_dir)
            for key, label in series:
                points = [(line["step"], line[key]) for line in lines if isinstance(line.get(key), (int, float))]
                if points:
                    xs, ys = zip(*points)
                    shown = label if len(run_dirs) == 1 else f"{name}: {label}"
                    ax.plot(xs, ys, marker="o" if key.startswith("eval") else None, markersize=3, label=shown)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
