"""Turn a `pytest benchmarks/ --benchmark-json=FILE` run into the Markdown table of README.md.

    .venv/bin/python benchmarks/make_table.py FILE
"""

from __future__ import annotations

import json
import sys
from typing import Any


def table(run: dict[str, Any]) -> str:
    machine = run["machine_info"]
    lines = [
        f"Run {run['datetime'][:16].replace('T', ' ')} UTC on {machine['cpu']['brand_raw']}, "
        f"{machine['cpu']['count']} cores, {machine['system']} {machine['release']}; "
        f"Python {machine['python_version']}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.get("versions", {}).items())),
        "",
        "| workload | engine | seconds | us / trial-epoch | x loop | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for bench in run["benchmarks"]:
        info = bench["extra_info"]
        prefix = bench["group"] + "-"
        param = bench["param"]
        engine = param[len(prefix):] if param.startswith(prefix) else param
        notes = []
        if info.get("peak_mib"):
            notes.append(f"peak {info['peak_mib']:.0f} MiB")
        if "trials_differing_from_numpy" in info:
            notes.append(f"{info['trials_differing_from_numpy']} trials differ from numpy by "
                         f"> 1e-9 (max {info['largest_difference']:.1e})")
        if "load_average" in info:
            notes.append(f"load {info['load_average']:.1f}")
        lines.append(
            f"| {bench['group']} | {engine} | {bench['stats']['min']:.2f} | "
            f"{info.get('us_per_trial_epoch', 0):.2f} | {info.get('x_loop', 1.0):.1f} | "
            f"{'; '.join(notes)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        print(table(json.load(handle)))
