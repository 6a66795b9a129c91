"""The shared-polls plot of docs/performance.rst ("shared-polls"), drawn at docs build time from the committed
output of ``benchmarks/trigger_fleet.py --json`` (``trigger_fleet_shared.json`` beside this file), so the docs
build never runs the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("_data").resolve()
data = json.loads((HERE / "trigger_fleet_shared.json").read_text())
runs = [r for r in data["runs"] if r["kind"] in ("sensor", "sensor-unshared")]


def layout(run: dict) -> str:
    return "N resources" if run["resources"] == run["n"] else f"{run['resources']} resource(s)"


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
colours = {"1 resource(s)": "tab:blue", "10 resource(s)": "tab:orange", "N resources": "tab:green"}
for kind, style in (("sensor", "-"), ("sensor-unshared", "--")):
    for name, colour in colours.items():
        points = sorted((r["n"], r) for r in runs if r["kind"] == kind and layout(r) == name)
        if not points:
            continue
        ns = [n for n, _ in points]
        label = f"{name}, {'shared' if kind == 'sensor' else 'unshared'}"
        left.plot(
            ns, [r["requests_per_interval"] for _, r in points], style, color=colour, marker="o", label=label
        )
        right.plot(
            ns,
            [r["cpu_us_per_trigger_wake"] for _, r in points],
            style,
            color=colour,
            marker="o",
            label=label,
        )
left.set_xscale("log")
left.set_yscale("log")
left.set_xlabel("waiting sensor triggers N")
left.set_ylabel("GET /events per poll interval")
left.set_title("Requests per interval")
right.set_xscale("log")
right.set_xlabel("waiting sensor triggers N")
right.set_ylabel("CPU µs per trigger per interval")
right.set_title("CPU per trigger wake")
right.set_ylim(bottom=0)
for axis in (left, right):
    axis.set_xticks(sorted({r["n"] for r in runs}))
    axis.xaxis.set_major_formatter(ScalarFormatter())
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.grid(True, which="both", alpha=0.3)
handles, labels = left.get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
fig.suptitle(
    f"benchmarks/trigger_fleet.py, {data['measured']} (solid: shared polls, dashed: unshared)", fontsize=9
)
fig.tight_layout(rect=(0, 0.12, 1, 1))
