"""Whole-file golden comparison. Regenerate with WIREWAN_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WIREWAN_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="ascii")
    assert path.exists(), f"missing golden file {path}; run with WIREWAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="ascii")
