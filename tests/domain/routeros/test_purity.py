"""app/domain/routeros stays pure: no framework or router-client imports."""

from __future__ import annotations

import ast
from pathlib import Path

import app.domain.routeros as pkg

FORBIDDEN = ("flask", "sqlalchemy", "librouteros", "rq", "redis")


def test_no_framework_imports() -> None:
    for path in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
