"""Turn a `pytest benchmarks/ --benchmark-json=FILE` run into the Markdown table of README.md.

    .venv/bin/python benchmarks/make_table.py FILE
"""

from __future__ import annotations

import json
import sys
from typing import Any

END_TO_END = "W49 end to end"


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
    end_to_end = [b for b in run["benchmarks"] if b["group"] == END_TO_END]
    estimates = [b for b in run["benchmarks"] if b["group"] == "estimates"]
    for bench in run["benchmarks"]:
        if bench in end_to_end or bench in estimates:
            continue
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
    if len(lines) == 4:  # no in-process figures in this run: no empty table
        del lines[1:]
    if end_to_end:
        epochs = end_to_end[0]["extra_info"].get("epochs")
        lines += ["", f"W49 end to end, {epochs} epochs, each figure a process from start to exit:",
                  "", "| figure | seconds | x loop | load |", "|---|---:|---:|---:|"]
        for bench in end_to_end:
            info = bench["extra_info"]
            lines.append(f"| {bench['param']} | {info['seconds']:.2f} | {info['x_loop']:.2f} | "
                         f"{info['load_average']:.1f} |")
    if estimates:
        lines += ["", "| sweep | validate said | run took | ratio | load |",
                  "|---|---:|---:|---:|---:|"]
        for bench in estimates:
            info = bench["extra_info"]
            lines.append(f"| {bench['param']} | {info['estimated']:.0f} s | "
                         f"{info['measured']:.1f} s | {info['ratio']:.2f} | "
                         f"{info['load_average']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        print(table(json.load(handle)))
