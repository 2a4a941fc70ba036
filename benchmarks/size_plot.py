"""distill - standard by training-set size, one line per student (docs/method.md, "Student size").

    M=benchmarks/results/method
    python benchmarks/size_plot.py docs/img/method_size.png \
        --point "SmolLM2-135M|CQA|292|$M/2026-11-30b_cqa_tiny_instructions.json|distill-verbs|standard-verbs" \
        --point "Gemma 3 270M|CQA|292|size_cqa3_gemma3_270m/results.json|distill-a0.5|standard" ...

Each point is ``STUDENT|TASK|RECORDS|RESULTS_JSON|ARM|BASELINE``: the pooled paired difference (test
records resampled, seeds fixed) and its 95% interval from ``distil experiment``'s results.json (or a
pooled JSON of ``benchmarks/pool_seeds.py``); ``|FRACTION`` after it picks the pair of that training-set
fraction in a results.json of several. One panel per task: CQA by its training-set size on a log
axis, a task with one size (SVAMP) as a dot per student.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def pooled(path: Path, arm: str, baseline: str, fraction: float | None = None) -> tuple[float, float, float, int]:
    """(difference, low, high, seeds) of ARM - BASELINE in a results.json (at ``fraction``, needed where the
    file holds that pair at several) or a pooled JSON."""
    data = json.loads(path.read_text())
    if "pairs" not in data:  # benchmarks/pool_seeds.py's pooled JSON
        ci = data["pooled"]["ci"]
        return data["pooled"]["diff"], ci[0], ci[1], len(data["seeds"])
    pairs = [p for p in data["pairs"] if p["arm"] == arm and p["baseline"] == baseline]
    if fraction is not None:
        pairs = [p for p in pairs if p.get("fraction") == fraction]
    if not pairs:
        at = f" at fraction {fraction:g}" if fraction is not None else ""
        raise SystemExit(f"{path}: no pair {arm} - {baseline}{at}")
    if len(pairs) > 1:
        found = ", ".join(f"{p.get('fraction')}" for p in pairs)
        raise SystemExit(f"{path}: {arm} - {baseline} at fractions {found}: add |FRACTION to the --point")
    ci = pairs[0]["pooled"]["ci"]
    return pairs[0]["pooled"]["diff"], ci[0], ci[1], len(pairs[0]["per_seed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--point", action="append", required=True, help="STUDENT|TASK|RECORDS|JSON|ARM|BASELINE[|FRACTION]"
    )
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for spec in args.point:
        fields = spec.split("|")
        try:
            fraction = float(fields[6]) if len(fields) == 7 else None
        except ValueError:
            fraction = -1.0
        if len(fields) not in (6, 7) or not fields[2].isdigit() or (fraction is not None and not 0 < fraction <= 1):
            raise SystemExit(
                f"--point {spec!r}: give STUDENT|TASK|RECORDS|JSON|ARM|BASELINE[|FRACTION], RECORDS a number, "
                "FRACTION in (0, 1]"
            )
        student, task, records, path, arm, baseline = fields[:6]
        panels[task][student].append((int(records), *pooled(Path(path), arm, baseline, fraction)))
    sizes = {task: sorted({p[0] for points in lines.values() for p in points}) for task, lines in panels.items()}
    widths = [3 if len(sizes[task]) > 1 else 1 for task in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * sum(widths), 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": widths}, sharey=True)  # fmt: skip
    students = sorted({s for t in panels.values() for s in t})
    colours = dict(zip(students, ["#4c72b0", "#dd8452", "#55a868", "#c44e52"], strict=False))
    for ax, (task, lines) in zip(axes[0], panels.items(), strict=True):
        ax.axhline(0, color="grey", lw=0.8)
        for i, (student, points) in enumerate(sorted(lines.items())):
            points.sort()
            xs = [p[0] * (1 + 0.04 * (i - 0.5)) for p in points]  # side by side, not on top
            ys = [p[1] for p in points]
            err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=colours[student],
                        label=student, ls="-" if len(points) > 1 else "none")  # fmt: skip
        if len(sizes[task]) > 1:
            ax.set_xscale("log")
            ax.set_xticks(sizes[task], [f"{n:,}" for n in sizes[task]])
            ax.minorticks_off()
            ax.set_xlabel("training records")
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{sizes[task][0]:,} training records")
        ax.set_title(task)
    axes[0][0].set_ylabel("distill - standard (points, 95% CI)")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print(args.out)


if __name__ == "__main__":
    main()
