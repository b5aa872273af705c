"""Under CI=true a skipped test fails the run and is named with its reason; locally it only skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSES = "def test_runs():\n    pass\n"
SAMPLE = """
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("needs frobnicate: apt-get install frobnicate")

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_known_bug():
    assert False
"""


def _pytest(tmp_path: Path, ci: str | None, **files: str) -> subprocess.CompletedProcess[str]:
    """An inner pytest in its own process, over the given test files, with tests/ci_skips.py loaded."""
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.ci_skips",
            "-p",
            "no:cacheprovider",
            "-q",
            *(f"{name}.py" for name in sorted(files)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_the_run_under_ci(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "true", test_sample=SAMPLE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "skipped tests fail the run under CI=true" in proc.stdout
    assert "SKIPPED test_sample.py::test_needs_a_tool: needs frobnicate: apt-get install frobnicate" in proc.stdout
    assert "test_known_bug:" not in proc.stdout  # an xfail is not a skip


def test_a_skip_is_only_a_skip_locally(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, None, test_sample=SAMPLE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fail the run" not in proc.stdout


def test_no_skip_passes_under_ci(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "true", test_sample=PASSES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_module_skipped_at_collection_fails_the_run_under_ci(tmp_path: Path) -> None:
    skipped_module = 'import pytest\npytest.skip("needs chromium", allow_module_level=True)\n'
    proc = _pytest(tmp_path, "true", test_browser=skipped_module, test_sample=PASSES)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "SKIPPED test_browser.py: needs chromium" in proc.stdout
