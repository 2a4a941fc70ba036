"""``distil infer``: batched summaries of a trained (or any) model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from distil_cli.cli.common import RateBar, err_console, out_console, settings_for
from distil_cli.cli.options import settings_flags


@settings_flags("infer")
def infer(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Argument(help="A `distil train` run folder (uses final/), a model folder, a hub id, or 'default'.")
    ],
    data: Annotated[
        Optional[Path],
        typer.Argument(help="A prepared split .jsonl, a prepared folder (see --split), or a folder of .txt files."),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Predictions .jsonl (appended per batch; a rerun resumes).")
    ] = None,
    prompt: Annotated[
        Optional[str],
        typer.Option(
            "--prompt",
            "-p",
            help="Try the model on one input text instead of DATA: prompted as it was trained (the run's "
            "formatter and instructions), the answer printed.",
        ),
    ] = None,
    rationale: Annotated[
        bool, typer.Option("--rationale", help="With --prompt: the rationale task's answer too.")
    ] = False,
    submission_dir: Annotated[
        Optional[Path], typer.Option("--submission-dir", help="Also write DIR/<case_id>_sum.txt (MultiClinSum layout).")
    ] = None,
    team: Annotated[
        Optional[str],
        typer.Option(help="With --run-id: DIR/<team>_multiclinsum_<lang>_run_<N>/ per language, and a zip of each."),
    ] = None,
    run_id: Annotated[Optional[int], typer.Option(help="The shared task's run number (with --team).")] = None,
    lang: Annotated[
        Optional[str], typer.Option("--lang", help="Language of .txt inputs whose names carry none (and of --prompt).")
    ] = None,
    flags: dict[str, Any] | None = None,
) -> None:
    """Generate summaries: on a GPU packed prefill + slot KV cache + flash decoding, bf16; resumable."""
    loaded = settings_for(ctx, "infer", **(flags or {}))
    if prompt is not None:
        if data is not None or out is not None:
            raise typer.BadParameter("give either --prompt TEXT or DATA with --out, not both", param_hint="--prompt")
        _answer(model, prompt, loaded, lang or "en", rationale)
        return
    if data is None or out is None:
        raise typer.BadParameter("give DATA and --out PREDICTIONS.jsonl (or --prompt TEXT)", param_hint="DATA")
    from distil_cli.generate.infer import read_inputs, run_inference
    from distil_cli.generate.submission import Submission

    submission = Submission(submission_dir, team, run_id) if submission_dir is not None else None
    if submission is None and team is not None:
        raise typer.BadParameter("--team needs --submission-dir", param_hint="--team")

    records = read_inputs(data, loaded.settings.infer.split, lang)
    with RateBar("infer", len(records)) as advance:
        result = run_inference(
            model, records, out, loaded.settings.infer, loaded.settings.models.cache_dir, submission, advance, data
        )
    rate = result.new_tokens / max(result.seconds, 1e-9)
    err_console.print(
        f"Wrote {result.written} prediction(s) ({result.skipped} already done, {result.cropped} input(s) cropped), "
        f"{result.new_tokens} new tokens at {rate:.0f} tokens/s",
        highlight=False,
    )
    out_console.print(str(result.out), highlight=False)


def _answer(model: str, text: str, loaded, lang: str, rationale: bool) -> None:
    from rich.panel import Panel

    from distil_cli.generate.infer import answer

    found = answer(model, text, loaded.settings.infer, loaded.settings.models.cache_dir, lang, rationale)
    out_console.print(found["summary"], highlight=False, markup=False)
    if rationale:
        err_console.print(Panel(found["rationale"], title="rationale", expand=False), highlight=False, markup=False)
