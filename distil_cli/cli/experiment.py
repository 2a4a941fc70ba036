"""``distil experiment``: a grid of standard vs distill runs on one prepared folder, scored and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distil_cli.cli.common import err_console, out_console, settings_for

SHARD_HELP = (
    "Run only the K-th of N shares of the grid (its (fraction, seed) pairs dealt out in turn; its runs, with more "
    "shares than pairs), e.g. "
    "one process per GPU: CUDA_VISIBLE_DEVICES=0 ... --shard 1/2 & CUDA_VISIBLE_DEVICES=1 ... --shard 2/2 "
    "(--jobs N does this in one command). The last shard to finish writes the results."
)
PLAN_HELP = "Print the runs the spec makes and which are done, then exit (nothing is written)."
JOBS_HELP = (
    "Run the grid as N processes side by side (--shard 1/N ... N/N), dealt over the visible GPUs "
    "in turn: N = 2 or 3 x the GPUs runs two or three per GPU (for a 135M student on an H200, two gave "
    "2x the runs per minute of one, three about 1.5x that again). Each writes OUT/logs/shard-K-of-N.log; "
    "the tables are written when all are done; one that ran out of GPU memory beside the others runs "
    "again alone."
)


def experiment(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Experiment spec (TOML or YAML): data, grid, metric, settings.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Experiment folder (runs, predictions, results).")],
    score_only: Annotated[
        bool, typer.Option("--score-only", help="Only (re)write the results from the predictions already there.")
    ] = False,
    show_plan: Annotated[bool, typer.Option("--plan", help=PLAN_HELP)] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help=SHARD_HELP,
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help=JOBS_HELP,
        ),
    ] = 1,
) -> None:
    """Does distilling help on this data? Train arms x seeds x data fractions, infer and score each on the
    test split, and write results.md / results.json / results.png with paired differences and 95% CIs.
    Resumable: a rerun skips finished runs."""
    from distil_cli.experiment import grid, results
    from distil_cli.experiment.runner import checked_spec, run_experiment

    loaded = settings_for(ctx).settings
    if show_plan:
        _print_plan(checked_spec(spec, loaded), out, loaded.train, grid.parse_shard(shard))
        return
    config = (ctx.find_root().obj or {}).get("config")
    say = lambda line: err_console.print(line, highlight=False)  # noqa: E731
    outcome = run_experiment(spec, out, loaded, config, shard, jobs, score_only, say)
    if outcome.summary is None:
        parts = grid.parse_shard(shard)
        err_console.print(
            f"Shard {parts[0]}/{parts[1]} is done; {outcome.pending} run(s) of the other shards are not yet: the last "
            "shard to finish writes the results (or run the same command without --shard once they are done).",
            highlight=False,
        )
        return
    out_console.print(results.markdown(outcome.summary), highlight=False)
    err_console.print("Wrote " + ", ".join(str(p) for p in outcome.paths or []), highlight=False)


def _print_plan(plan, out: Path, train_base, parts: tuple[int, int] | None = None) -> None:
    """The grid as a table: fraction, seed, arm, training / valid records, epochs, learning rate, and what is
    done under OUT (or which settings a finished run was trained with otherwise than its arm asks)."""
    from rich.table import Table

    from distil_cli.experiment import grid

    train = grid.read_split(plan, "train")
    test_ids = {r["id"] for r in grid.read_split(plan, plan.test_split)}
    pool = grid.pool_size(plan, len(train))
    table = Table("fraction", "seed", "arm", "train records", "valid", "epochs", "lr", "state")
    states = []
    for cell in grid.shard_cells(grid.plan(plan, out), parts):
        records = grid.subset_size(pool, cell.fraction)
        cfg = grid.expected_settings(plan, train_base, cell, records)
        differ = grid.differences(cell, cfg)
        state = "differs: " + ", ".join(d.split(":")[0] for d in differ) if differ else grid.cell_state(cell, test_ids)
        if state == "to run" and (step := grid.resumes_from(cell)) is not None:
            state += f": from step {step}"
        states.append(state.split(":")[0])
        length = f"max_steps {cfg.max_steps}" if cfg.max_steps else f"{cfg.epochs:g}"
        row = (f"{cell.fraction:g}", str(cell.seed), cell.arm.name, str(records), str(plan.valid), length)
        table.add_row(*row, f"{cfg.lr:g}", state)
    out_console.print(table)
    counts = {s: states.count(s) for s in ("done", "trained", "to run", "differs")}
    differs = (
        f", {counts['differs']} trained otherwise than their arm asks (the run stops)" if counts["differs"] else ""
    )
    out_console.print(
        f"{len(states)} runs on {len(test_ids)} test records: {counts['done']} done, "
        f"{counts['trained']} trained (predictions to finish), {counts['to run']} to run{differs}",
        highlight=False,
    )
