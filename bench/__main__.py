"""Benchmark harness: `python -m bench [NAME ...] [--quick] [--postgres-url URL]`.

Runs the ``run()`` of every ``bench/bench_*.py`` module (or of those named: ``import``, ``api``,
``bench_sprec``, ...), prints a Markdown table per benchmark, writes ``bench/results/<name>.json``
and ``bench/results/SUMMARY.md``. ``--quick`` runs smaller sizes: a module's ``run(quick=True)``
when it takes that argument, else the sizes in QUICK_KWARGS below. ``--postgres-url`` (or
``BIOBANK_BENCH_POSTGRES_URL``) names an existing PostgreSQL server (any database on it, usually
``postgres``): benchmarks that support PostgreSQL create scratch databases there and drop them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import re
import sqlite3
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
ROOT = BENCH_DIR.parent
# Smaller sizes for --quick, for modules whose run() has no `quick` argument.
QUICK_KWARGS: dict[str, dict[str, Any]] = {
    "bench_merkle": {"n": 100_000},
    "bench_storage": {"boxes": 1_000},
}


def discover() -> list[str]:
    """The benchmark modules, by name, in a stable order."""
    return sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))


def _module_name(name: str) -> str:
    return name if name.startswith("bench_") else f"bench_{name}"


def run_one(name: str, *, quick: bool) -> tuple[dict[str, Any], float]:
    """Import a benchmark module and call its run(); returns the result and the seconds it took."""
    module = importlib.import_module(f"bench.{name}")
    parameters = inspect.signature(module.run).parameters
    kwargs: dict[str, Any] = {}
    if quick:
        if "quick" in parameters:
            kwargs["quick"] = True
        else:
            kwargs = {k: v for k, v in QUICK_KWARGS.get(name, {}).items() if k in parameters}
    started = time.perf_counter()
    result = module.run(**kwargs)
    return (result if isinstance(result, dict) else {"result": result}), time.perf_counter() - started


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif not isinstance(value, list):
            out[f"{prefix}{key}"] = value
    return out


def markdown(name: str, result: dict[str, Any], seconds: float) -> str:
    """A benchmark's result as Markdown: its row tables (lists of dicts), then the other figures."""
    lines = [f"### {result.get('name', name)}", ""]
    if result.get("description"):
        lines += [str(result["description"]), ""]
    for value in result.values():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "---|" * len(columns))
            for row in value:
                lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
            lines.append("")
    scalars = {k: v for k, v in _flatten(result).items() if k not in ("name", "description")}
    if scalars:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in scalars.items()]
        lines.append("")
    lines.append(f"_{seconds:.1f} s_")
    lines.append("")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """The machine the figures come from."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": "yes" if os.environ.get("BIOBANK_BENCH_POSTGRES_URL") else "not configured",
    }


MARK = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n", re.S)


INTRO = "Each section: the run it comes from, then its tables. `python -m bench NAME` replaces only its sections."
EARLIER = "## Earlier runs (before sections were kept per benchmark)"


def write_summary(path: Path, sections: dict[str, str], run_line: str) -> None:
    """Replace the sections of the benchmarks just run in SUMMARY.md and keep every other one.

    Each section carries the line of the run it came from (date, load, quick or full), since the
    sections of one file may come from different runs.
    """
    text = path.read_text() if path.exists() else ""
    kept = {name: body for name, body in MARK.findall(text)}
    legacy = MARK.sub("", text)
    for boilerplate in ("# Benchmark results\n", INTRO, EARLIER):
        legacy = legacy.replace(boilerplate, "")
    legacy = legacy.strip()
    for name, section in sections.items():
        kept[name] = f"_{run_line}_\n\n{section}\n"
    lines = ["# Benchmark results", "", INTRO, ""]
    for name in sorted(kept):
        lines += [f"<!-- bench:{name} -->", kept[name].rstrip("\n") + "\n", f"<!-- /bench:{name} -->", ""]
    if legacy:
        lines += [EARLIER, "", legacy, ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit status 1 when one of them failed."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. import api sprec")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    parser.add_argument("--postgres-url", help="an existing PostgreSQL server, e.g. postgresql://postgres@host/postgres")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    if args.postgres_url:
        os.environ["BIOBANK_BENCH_POSTGRES_URL"] = args.postgres_url
    names = [_module_name(n) for n in args.names] or available
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available)}")
    sys.path.insert(0, str(ROOT))
    RESULTS.mkdir(parents=True, exist_ok=True)
    env = environment()
    sections: list[str] = []
    failed = []
    started = time.perf_counter()
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        try:
            result, seconds = run_one(name, quick=args.quick)
        except Exception:  # one failing benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            sections.append(f"### {name}\n\nfailed (see the console)\n")
            continue
        result.setdefault("environment", env)
        result["seconds"] = round(seconds, 2)
        result["quick"] = args.quick
        short = name.removeprefix("bench_")
        (RESULTS / f"{short}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        section = markdown(short, {k: v for k, v in result.items() if k != "environment"}, seconds)
        print(section, flush=True)
        sections.append(section)
    total = time.perf_counter() - started
    run_line = (
        f"{env['date']} · Python {env['python']} · SQLite {env['sqlite']} · {env['cpus']} CPUs "
        f"(load average {env['load_average_1min']} at the start) · "
        f"PostgreSQL {env['postgresql']} · {'quick' if args.quick else 'full'} run"
    )
    write_summary(RESULTS / "SUMMARY.md", dict(zip(names, sections, strict=True)), run_line)
    print(f"wrote {RESULTS / 'SUMMARY.md'} ({total:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
