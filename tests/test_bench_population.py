"""The population benchmarks run end to end at a tiny size, so they cannot rot: each builds its
site, measures, verifies its own results (rollups against a recount, imported rows) and exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script: str, *args: str, tmp_path: Path) -> dict[str, object]:
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "CORRECTNESS FAILURE" not in proc.stdout
    return dict(json.loads(out.read_text()))


def test_dashboard_bench_runs_small_and_verifies_its_rollups(tmp_path: Path) -> None:
    r = _run("population_dashboard.py", "--persons", "6000", "--net-scale", "small", "--samples", "30",
             "--live-samples", "3", "--mix", "150", tmp_path=tmp_path)  # fmt: skip
    assert r["loaded"] == 6000 and r["correct"] is True
    assert r["recount_after_load"] == 0 and r["recount_after_mix"] == 0 and r["city_mismatches"] == 0
    assert set(r["levels"]) == {"province", "city", "county", "township", "community"}  # type: ignore[arg-type]
    assert r["levels"]["city"]["live_p50_ms"] > 0  # type: ignore[index]


def test_import_bench_runs_small_and_checks_the_imported_rows(tmp_path: Path) -> None:
    r = _run("population_import.py", "--sizes", "1500,3000", "--net-scale", "small", tmp_path=tmp_path)
    runs = r["runs"]
    assert [x["rows"] for x in runs] == [1500, 3000]  # type: ignore[index]
    for x in runs:  # type: ignore[attr-defined]
        assert x["correct"] is True and x["status"] == "done" and x["persons"] == x["rows"]
        assert x["raw_rows_per_s"] > 0 and x["peak_rss_mb"] > 0
