"""docs/bench-results.json (every benchmark's last figures) -> docs/PERFORMANCE.md.

The JSON holds one section per benchmark module: {"sections": {name: section}}. A run merges its
sections in and leaves the others alone; the Markdown is always rebuilt whole from the JSON. A
section is {"title", "module", "date", "quick", "machine": {...}, "params": {...},
"tables": [{"title", "rows": [row, ...], "notes": [str, ...]}]}, a row as bench.row() makes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import BENCHMARKS

HEADER = """# Performance

Figures measured by `make bench` (`python -m bench`; one benchmark: `python -m bench signup`;
a smaller smoke run: `python -m bench --quick`). This file is generated from
[bench-results.json](bench-results.json) — do not edit it by hand: each section is replaced when its
benchmark runs again, and the others are kept. "Baseline" is what the same work costs with nothing of
ours around it (a floor), so "× baseline" shows the price of the real path.
"""


def load(path: Path) -> dict[str, Any]:
    if path.exists():
        data = json.loads(path.read_text())
        data.setdefault("sections", {})
        return data
    return {"sections": {}}


def merge(path: Path, sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = load(path)
    data["sections"].update(sections)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    return data


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    elif unit == "s":
        text = f"{value:.3f}" if value < 1 else f"{value:.2f}"
    elif unit == "×":
        return f"{value:.1f}×"
    elif unit in ("tenants/s", "per s", "rows/s", "µs"):
        text = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    else:
        text = f"{value:g}"
    return f"{text} {unit}".strip()


def _target(r: dict[str, Any]) -> str:
    if r.get("target") is None:
        return "—"
    op = "≥" if r.get("higher_is_better") else "≤"
    return f"{op} {fmt(r['target'], r['unit'])}"


def _verdict(r: dict[str, Any]) -> str:
    met = r.get("met")
    return "—" if met is None else ("✅ met" if met else "❌ missed")


def _baseline(r: dict[str, Any]) -> tuple[str, str]:
    base = r.get("baseline")
    if base is None:
        return "—", "—"
    label = r.get("baseline_label") or "baseline"
    shown = f"{fmt(base, r['unit'])} ({label})"
    if not base:
        return shown, "—"
    ratio = r["value"] / base
    if r.get("higher_is_better"):
        ratio = base / r["value"] if r["value"] else float("inf")
    return shown, f"{ratio:.1f}×"


def machine_line(m: dict[str, Any]) -> str:
    cpu = f" ({m['cpu']})" if m.get("cpu") else ""
    return (
        f"{m.get('nproc', '?')} CPUs{cpu}, {m.get('memory_gib', '?')} GiB memory, "
        f"PostgreSQL {m.get('postgresql', '?')} ({m.get('postgresql_where', '?')}), "
        f"Python {m.get('python', '?')}, {m.get('os', '?')}"
        + (
            f"; load average (1 min) at the end: {m['load_1m_at_end']}"
            if m.get("load_1m_at_end") is not None
            else ""
        )
    )


def render_section(name: str, s: dict[str, Any]) -> str:
    out = [f"## {s.get('title', name)}", ""]
    quick = " — **quick smoke run, not the reference figures**" if s.get("quick") else ""
    out.append(
        f"Benchmark `{name}` ([{s.get('module', '')}](../{s.get('module', '')})), run {s.get('date')}{quick}.  "
    )
    out.append(f"Machine: {machine_line(s.get('machine', {}))}.")
    params = s.get("params") or {}
    if params:
        out.append("Parameters: " + ", ".join(f"{k} = {v}" for k, v in params.items()) + ".")
    out.append("")
    for table in s.get("tables", []):
        out += [f"### {table['title']}", ""]
        out.append("| Measure | Result | Target | Verdict | Baseline | × baseline |")
        out.append("|---|---:|---:|:---:|---:|---:|")
        for r in table["rows"]:
            base, ratio = _baseline(r)
            measure = r["measure"] + (f" ({r['note']})" if r.get("note") else "")
            out.append(
                f"| {measure} | {fmt(r['value'], r['unit'])} | {_target(r)} | {_verdict(r)} | {base} | {ratio} |"
            )
        out.append("")
        for note in table.get("notes", []):
            out.append(f"- {note}")
        if table.get("notes"):
            out.append("")
    return "\n".join(out)


def render(data: dict[str, Any]) -> str:
    sections = data.get("sections", {})
    order = [n for n in BENCHMARKS if n in sections] + sorted(n for n in sections if n not in BENCHMARKS)
    parts = [HEADER]
    summary = ["| Benchmark | Figure | Result | Target | Verdict |", "|---|---|---:|---:|:---:|"]
    for name in order:
        for table in sections[name].get("tables", []):
            for r in table["rows"]:
                if r.get("target") is not None:
                    summary.append(
                        f"| {sections[name].get('title', name)} | {r['measure']} | {fmt(r['value'], r['unit'])} "
                        f"| {_target(r)} | {_verdict(r)} |"
                    )
    if len(summary) > 2:
        parts += ["## Targets at a glance", "", *summary, ""]
    for name in order:
        parts.append(render_section(name, sections[name]))
    return "\n".join(parts).rstrip() + "\n"


def write(results: Path, report: Path) -> None:
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render(load(results)))
