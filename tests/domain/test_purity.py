"""app/domain stays pure: no web framework, ORM or router client imports anywhere under it."""

from __future__ import annotations

import ast
from pathlib import Path

import app.domain

FORBIDDEN = {
    "flask",
    "flask_sqlalchemy",
    "flask_login",
    "flask_wtf",
    "sqlalchemy",
    "librouteros",
    "redis",
    "rq",
}
DOMAIN = Path(app.domain.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in {
            "import_module",
            "__import__",
        }:
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    roots.add(arg.value.split(".")[0])
    return roots


def test_domain_modules_exist() -> None:
    names = {p.name for p in DOMAIN.rglob("*.py")}
    assert {"addressing.py", "conflicts.py", "keys.py", "validation.py", "errors.py", "model.py"} <= names


def test_domain_imports_no_framework() -> None:
    offenders = {
        str(path.relative_to(DOMAIN)): sorted(imported_roots(path) & FORBIDDEN) for path in sorted(DOMAIN.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_domain_does_not_import_the_app_outside_domain() -> None:
    """Importing app.models or app.services would drag SQLAlchemy in indirectly."""
    for path in DOMAIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("app"):
                assert node.module is not None
                if node.module == "app" or node.module.startswith("app."):
                    assert node.module.startswith("app.domain"), f"{path}: imports {node.module}"


def test_detector_catches_forbidden_imports(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import flask\nfrom sqlalchemy.orm import Session\nimport librouteros.login\n"
        "import importlib\nimportlib.import_module('flask_sqlalchemy')\nfrom . import model\n"
    )
    assert imported_roots(sample) & FORBIDDEN == {"flask", "sqlalchemy", "librouteros", "flask_sqlalchemy"}
