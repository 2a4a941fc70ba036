"""The scores behind distill - standard: each student's standard and distill arms side by side, one panel
per task (docs/method.md, "Student size").

    M=benchmarks/results/method
    python benchmarks/size_scores_plot.py docs/img/method_size_scores.png \
        --group "Gemma 3 270M, lr 3e-5|CQA|$M/2026-12-07e_size_cqa25_gemma3_270m.json|standard-lr3e-5|distill-lr3e-5"

(docs/method.md has the whole command.) Each group is ``LABEL|TASK|RESULTS_JSON|STANDARD_ARM|DISTILL_ARM``,
optionally ``|SEEDS``: the mean over the seeds (all the file's, or SEEDS as "1-6") of each arm's score in
``distil experiment``'s results.json, with a 95% t interval across those seeds. Seeds run as several
experiments join with ``+``: ``A.json+B.json|standard-lr3e-5+standard|distill-lr3e-5+distill-a0.5``
reads the first arm name from A.json and the second from B.json (one name serves every file); a seed
in two files is an error.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

from distil_cli.evaluate.runs import t975  # the across-seeds interval's quantile, as distil experiment uses


def seeds_of(text: str | None) -> set[int] | None:
    if not text:
        return None
    low, _, high = text.partition("-")
    return set(range(int(low), int(high or low) + 1))


def arm_score(path: Path | str, arm: str, seeds: set[int] | None) -> tuple[float, float, int]:
    """(mean, half-width of the 95% t interval, seeds) of ARM's score over the seeds in a results.json, or in
    several joined with ``+`` (``arm`` then names the arm of each, joined the same way, or one for all)."""
    paths, arms = str(path).split("+"), arm.split("+")
    arms = arms * len(paths) if len(arms) == 1 else arms
    if len(arms) != len(paths):
        raise SystemExit(f"{path}: {len(paths)} files but {len(arms)} arm names ({arm}); give one, or one per file")
    by_seed: dict[int, float] = {}
    for one, name in zip(paths, arms, strict=True):
        data = json.loads(Path(one).read_text())
        for r in data["runs"]:
            if r["arm"] == name and (seeds is None or r["seed"] in seeds):
                if r["seed"] in by_seed:
                    raise SystemExit(f"{one}: seed {r['seed']} of arm {name!r} is in an earlier file too")
                by_seed[r["seed"]] = r[data["metric"]]
    scores = list(by_seed.values())
    if len(scores) < 2:
        raise SystemExit(f"{path}: arm {arm!r} has {len(scores)} runs on those seeds; an interval needs 2 or more")
    half = t975(len(scores) - 1) * statistics.stdev(scores) / math.sqrt(len(scores))
    return statistics.mean(scores), half, len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--group", action="append", required=True, help="LABEL|TASK|JSON|STANDARD|DISTILL[|SEEDS]")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list] = defaultdict(list)
    for spec in args.group:
        fields = spec.split("|")
        if len(fields) not in (5, 6):
            raise SystemExit(f"--group {spec!r}: give LABEL|TASK|JSON|STANDARD_ARM|DISTILL_ARM[|SEEDS]")
        label, task, path, standard, distill, *rest = fields
        seeds = seeds_of(rest[0] if rest else None)
        panels[task].append((label, arm_score(path, standard, seeds), arm_score(path, distill, seeds)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (task, groups) in zip(axes[0], panels.items(), strict=True):
        xs = range(len(groups))
        for shift, which, colour, name in ((-0.18, 1, "#8c8c8c", "standard"), (0.18, 2, "#4c72b0", "distill")):
            ys = [g[which][0] for g in groups]
            err = [g[which][1] for g in groups]
            ax.bar([x + shift for x in xs], ys, 0.36, yerr=err, capsize=3, color=colour, label=name)
        ax.set_xticks(list(xs), [f"{g[0]}\n({g[1][2]} seeds)".replace(", ", "\n") for g in groups], fontsize=8)
        ax.set_title(task)
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel("score (x100, mean over seeds, 95% t CI)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print(args.out)


if __name__ == "__main__":
    main()
