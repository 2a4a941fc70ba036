"""Print a bench JSON report as one line per run (and the profile's groups): python3 benchmarks/summary.py F..."""

import json
import sys

for path in sys.argv[1:]:
    report = json.load(open(path))
    print(report["benchmark"], report["env"])
    for row in report["results"]:
        figure = row.get("new_tokens_per_s", row["useful_tokens_per_s"])
        print(f"  {row['name']}: {figure} tok/s, {row['peak_gib']} GiB, mfu {row.get('mfu')}, x{row['ratio_to_seed']}")
        if "profile" in row:
            profile = {k: v for k, v in row["profile"].items() if k not in ("top", "host_top")}
            print("    profile", profile)
            for top in row["profile"]["top"][:12]:
                print(f"      {top['self_ms_per_step']:8.2f} ms x{top['calls']:<4} {top['name'][:100]}")
            for top in row["profile"].get("host_top", [])[:8]:
                print(f"      host {top['self_cpu_ms_per_step']:8.2f} ms {top['name'][:100]}")
