"""The benchmark and the soak, in their short forms: both run end to end and report what they should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.app_process import ROOT


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_benchmark_smoke_run_measures_all_three_ways(tmp_path: Path) -> None:
    done = run("bench/run.py", "--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "bench.md").read_text(encoding="utf-8")
    rows = [line for line in report.splitlines() if line.startswith(("| direct", "| app", "| peer"))]
    assert {row.split("|")[1].strip() for row in rows} == {"direct", "app", "peer"}
    assert len(rows) == 7 and all(row.rstrip().endswith("| 0 |") for row in rows), "some turns failed"
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_short_soak_is_healthy(tmp_path: Path) -> None:
    done = run("bench/soak.py", "--turns", "60", "--clients", "8", "--report", str(tmp_path / "soak.md"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "soak.md").read_text(encoding="utf-8")
    assert "| turns completed | 60 |" in report and "| unhandled exceptions | 0 |" in report
    assert "| stuck sessions | 0 |" in report and report.rstrip().splitlines()[-1] == "healthy"
