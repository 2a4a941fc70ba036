"""Forest plot of distill - standard (pooled paired difference, 95% CI) over the method experiments.

    python benchmarks/method_forest.py benchmarks/results/method docs/img/method_forest.png

Reads the "distill-a0.5 - standard" row of every results markdown (``distil experiment``'s
results.md) in the folder; the label is the file name after its date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROW = re.compile(r"\|\s*([\d.]+)\s*\|\s*distill-a0\.5 - standard\s*\|\s*([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]")
LABELS = {
    "cqa_tiny": "CQA 3% (292), 3 epochs",
    "cqa_tiny_e6": "CQA 3% (292), 6 epochs",
    "cqa_tiny_ablate": "CQA 3% (289, other subsets), 6 epochs",
    "cqa_low": "CQA 12.5% (1,218), 3 epochs",
    "cqa_low_e6": "CQA 12.5% (1,218), 6 epochs",
    "cqa_quarter": "CQA 25% (2,435), 3 epochs",
    "cqa_full": "CQA 100% (9,741), 3 epochs, 2 seeds",
    "svamp": "SVAMP 100% (789), 3 epochs",
}


def rows(folder: Path) -> list[tuple[str, float, float, float]]:
    found = []
    for path in sorted(folder.glob("*.md")):
        name = path.stem.split("_", 1)[1]
        match = ROW.search(path.read_text(encoding="utf-8"))
        if match and name in LABELS:
            found.append((name, float(match.group(2)), float(match.group(3)), float(match.group(4))))
    order = list(LABELS)
    return sorted(found, key=lambda r: order.index(r[0]))


def main(folder: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows(Path(folder))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(data) + 1.2))
    for y, (_, diff, low, high) in enumerate(reversed(data)):
        color = "tab:green" if low > 0 else ("tab:red" if high < 0 else "tab:gray")
        ax.errorbar(diff, y, xerr=[[diff - low], [high - diff]], fmt="o", color=color, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(data)), [LABELS[r[0]] for r in reversed(data)])
    ax.set_xlabel("distill (alpha 0.5) - standard (x100): pooled over seeds, 95% CI")
    ax.set_title("SmolLM2-135M students, PaLM rationales (one H200, 2026-11-29)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    main(*sys.argv[1:3])
