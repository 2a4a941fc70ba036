"""Forest plot of distill - standard (pooled paired difference, 95% CI) over the method experiments.

    python benchmarks/method_forest.py benchmarks/results/method docs/img/method_forest.png \
        [docs/img/method_defaults.png]

Reads the labelled "distill-aX - standard" rows of every results markdown (``distil experiment``'s
results.md) in the folder, keyed by the file name after its date and the arm, and the pooled
comparisons written by ``benchmarks/pool_seeds.py``. Each experiment gets two
intervals: the pooled one (test records resampled, seeds fixed) and, below it in a lighter
shade, the t interval over its per-seed differences (``distil_cli.evaluate.runs.across_seeds``).
The optional third path gets the same plot for the evidence of today's defaults only, by data
size (``DEFAULTS``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROW = re.compile(
    r"\|\s*([\d.]+)\s*\|\s*(distill-[a-z\d.]+) - (standard(?:-[a-z\d.]+)?)\s*\|"
    r"\s*([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]"
)
SEED = re.compile(r"([+-][\d.]+) \[[+-][\d.]+, [+-][\d.]+\]")
# (experiment file name after its date, arm) -> label, in plot order (top first)
LABELS = {
    ("cqa_tiny", "distill-a0.5"): "CQA 3% (292), 3 epochs",
    ("cqa_tiny_e6", "distill-a0.5"): "CQA 3% (292), 6 epochs",
    ("cqa_tiny_next", "distill-a0.5"): "CQA 3% (292), 6 epochs, re-run",
    ("cqa_tiny_next", "distill-a0.3"): "CQA 3% (292), 6 epochs, alpha 0.3",
    ("cqa_tiny_more", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 4-6",
    ("cqa_tiny_more", "distill-a0.3"): "CQA 3% (292), 6 epochs, seeds 4-6, alpha 0.3",
    ("pooled_cqa_tiny", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 1-6 pooled",
    ("pooled_cqa_tiny", "distill-a0.3"): "CQA 3% (292), 6 epochs, seeds 1-6 pooled, alpha 0.3",
    ("cqa_tiny_lr", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 1-3, bf16 default",
    ("cqa_tiny_seeds_a", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 4-9, bf16 default",
    ("cqa_tiny_seeds_b", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 10-15, bf16 default",
    ("pooled_cqa_tiny_15seeds", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 1-15 pooled, bf16 default",
    ("cqa_tiny_seeds_c", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 16-23, bf16 default",
    ("pooled_cqa_tiny_23seeds", "distill-a0.5"): "CQA 3% (292), 6 epochs, seeds 1-23 pooled, bf16 default",
    ("cqa_tiny_e10", "distill-e10 - standard-e10"): "CQA 3% (292), 10 epochs both, seeds 1-6",
    ("cqa_tiny_instructions", "distill-prefix - standard-prefix"): "CQA 3% (292), 6 epochs, seeds 1-12, bare prefixes",
    ("cqa_tiny_instructions", "distill-verbs - standard-verbs"): "CQA 3% (292), 6 epochs, seeds 1-12, one-verb pair",
    ("cqa_tiny_verbs_more", "distill-verbs - standard-verbs"): "CQA 3% (292), 6 epochs, seeds 13-36, one-verb pair",
    ("pooled_cqa_tiny_36seeds", "distill-verbs"): "CQA 3% (292), 6 epochs, seeds 1-36 pooled, one-verb pair",
    ("cqa_tiny_ablate", "distill-a0.5"): "CQA 3% (289, other subsets), 6 epochs",
    ("cqa_low", "distill-a0.5"): "CQA 12.5% (1,218), 3 epochs",
    ("cqa_low_e6", "distill-a0.5"): "CQA 12.5% (1,218), 6 epochs",
    ("cqa_low_a03", "distill-a0.3"): "CQA 12.5% (1,218), 6 epochs, alpha 0.3",
    ("cqa_low_alpha", "distill-a0.5"): "CQA 12.5% (1,218), 6 epochs, bf16 default",
    ("cqa_low_alpha", "distill-a0.3"): "CQA 12.5% (1,218), 6 epochs, bf16 default, alpha 0.3",
    ("cqa_low_seeds", "distill-a0.5"): "CQA 12.5% (1,218), 6 epochs, seeds 4-9, bf16 default",
    ("cqa_low_seeds_b", "distill-a0.5"): "CQA 12.5% (1,218), 6 epochs, seeds 10-15, bf16 default",
    ("pooled_cqa_low_15seeds", "distill-a0.5"): "CQA 12.5% (1,218), 6 epochs, seeds 1-15 pooled, bf16 default",
    ("cqa_low_instructions", "distill-verbs - standard-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 4-9, one-verb pair",
    ("cqa_low_verbs_more", "distill-verbs - standard-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 1-3,10-15, one-verb",
    ("cqa_low_verbs_c", "distill-verbs - standard-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 16-21, one-verb pair",
    ("cqa_low_verbs_d", "distill-verbs - standard-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 22-27, one-verb pair",
    ("cqa_low_verbs_e", "distill-verbs - standard-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 28-33, one-verb pair",
    ("pooled_cqa_low_33seeds", "distill-verbs"): "CQA 12.5% (1,218), 6 epochs, seeds 1-33 pooled, one-verb pair",
    ("cqa_quarter", "distill-a0.5"): "CQA 25% (2,435), 3 epochs",
    ("cqa_quarter_today", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, bf16 default",
    ("cqa_quarter_seeds", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 4-9, bf16 default",
    ("cqa_quarter_seeds_b", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 10-15, bf16 default",
    ("pooled_cqa_quarter_15seeds", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 1-15 pooled, bf16 default",
    ("cqa_quarter_verbs", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 1-6, one-verb pair",
    ("cqa_quarter_verbs_b", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 7-15, one-verb pair",
    ("pooled_cqa_quarter_verbs_15seeds", "distill-a0.5"): "CQA 25% (2,435), 3 epochs, seeds 1-15 pooled, one-verb pair",
    ("cqa_full", "distill-a0.5"): "CQA 100% (9,741), 3 epochs, 2 seeds",
    ("cqa_full_today", "distill-a0.5"): "CQA 100% (9,741), 3 epochs, 3 seeds, bf16 default",
    ("cqa_full_verbs", "distill-a0.5"): "CQA 100% (9,741), 3 epochs, 3 seeds, one-verb pair",
    ("svamp", "distill-a0.5"): "SVAMP 100% (789), 3 epochs",
    ("svamp_seeds", "distill-a0.5"): "SVAMP 100% (789), 6 epochs, 12 seeds, bf16 default",
    ("svamp_verbs", "distill-a0.5"): "SVAMP 100% (789), 6 epochs, 12 seeds, one-verb pair",
}
# The evidence for today's defaults (the one-verb instruction pair since the 2026-11-30b runs), by
# data size: the third output's rows
DEFAULTS = {
    ("pooled_cqa_tiny_36seeds", "distill-verbs"): "CQA 3% (292 records), 36 seeds",
    ("pooled_cqa_low_33seeds", "distill-verbs"): "CQA 12.5% (1,218), 33 seeds",
    ("pooled_cqa_quarter_verbs_15seeds", "distill-a0.5"): "CQA 25% (2,435), 15 seeds",
    ("cqa_full_verbs", "distill-a0.5"): "CQA 100% (9,741), 3 seeds",
    ("svamp_verbs", "distill-a0.5"): "SVAMP 100% (789), 12 seeds",
}


def rows(folder: Path) -> list[tuple[tuple[str, str], float, float, float, tuple[float, float] | None]]:
    """Every labelled ``distill-aX - standard`` row of the results markdowns, and the pooled JSONs
    of ``benchmarks/pool_seeds.py`` (``DATE_pooled_NAME_ARM.json``)."""
    import json

    from distil_cli.evaluate.runs import across_seeds

    found = []
    for path in sorted(folder.glob("*.md")):
        name, text = path.stem.split("_", 1)[1], path.read_text(encoding="utf-8")
        for match in ROW.finditer(text):
            arm, base = match.group(2), match.group(3)
            key = (name, arm if base == "standard" else f"{arm} - {base}")  # other baselines: named in full
            if key not in LABELS:
                continue
            line = text[match.start() :].splitlines()[0]
            per_seed = [float(d) for d in SEED.findall(line.rsplit("|", 2)[-2])]
            spread = across_seeds(per_seed)
            seeds = tuple(spread["ci"]) if spread else None
            diff, low, high = (float(match.group(i)) for i in (4, 5, 6))
            found.append((key, diff, low, high, seeds))
    for path in sorted(folder.glob("*_pooled_*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = path.stem.split("_pooled_", 1)[1].removesuffix("_" + data["arm"].removeprefix("distill-"))
        key = (f"pooled_{name}", data["arm"])
        if key in LABELS:
            pooled, spread = data["pooled"], data["across_seeds"]
            found.append((key, pooled["diff"], *pooled["ci"], tuple(spread["ci"]) if spread else None))
    order = list(LABELS)
    return sorted(found, key=lambda r: order.index(r[0]))


def main(folder: str, out: str, defaults_out: str | None = None) -> None:
    data = rows(Path(folder))
    plot(data, LABELS, out, "SmolLM2-135M students, PaLM rationales (H200 GPUs, 2026-11-29/30)")
    if defaults_out:
        today = [r for r in data if r[0] in DEFAULTS]
        title = "distil's defaults: distill (alpha 0.5) - standard by training-set size (SmolLM2-135M, PaLM rationales)"
        plot(today, DEFAULTS, defaults_out, title)


def plot(data, labels: dict, out: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 0.5 * len(data) + 1.8))
    for y, (_, diff, low, high, seeds) in enumerate(reversed(data)):
        color = "tab:green" if low > 0 else ("tab:red" if high < 0 else "tab:gray")
        ax.errorbar(diff, y + 0.12, xerr=[[diff - low], [high - diff]], fmt="o", color=color, capsize=3)
        if seeds:
            shade = "tab:green" if seeds[0] > 0 else ("tab:red" if seeds[1] < 0 else "tab:gray")
            ax.errorbar(diff, y - 0.18, xerr=[[diff - seeds[0]], [seeds[1] - diff]], fmt="none", color=shade,
                        alpha=0.45, capsize=2, linewidth=3)  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(data)), [labels[r[0]] for r in reversed(data)])
    ax.set_xlabel(
        "distill - standard (x100; alpha 0.5 unless said), 95% CIs: pooled (dot; test records resampled)\n"
        "and across seeds (light bar below; t interval over the per-seed differences)",
        fontsize=9,
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(*sys.argv[1:4])
