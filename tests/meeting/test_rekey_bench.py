"""bench/rekey.py runs at small sizes, with the checks it makes on the way (a remaining
member derives the fresh key from the tree, the leaver does not) and a table and picture
at the end. Its figures are for the bench, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "rekey.py"


def test_the_rekey_bench_runs_and_checks_the_tree(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "10,100", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fresh key after a leave" in done.stdout
    figures = json.loads((tmp_path / "rekey.json").read_text())
    assert [r["n"] for r in figures["rekey"]] == [10, 100]
    assert (tmp_path / "rekey.png").stat().st_size > 0
