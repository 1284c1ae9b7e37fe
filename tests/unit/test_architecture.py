"""The package's shape (docs/architecture.md): small modules, pipelines that never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "amazon_commerce_sync"
MAX_LINES = 500


def test_every_module_is_at_most_500_lines():
    too_long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these modules (docs/architecture.md): {too_long}"


def test_no_pipeline_imports_another():
    """Only ``pipelines/tasks.py`` (the task bodies) calls into the pipelines; they share code through modules."""
    pipelines = {p.stem for p in (PACKAGE / "pipelines").glob("*.py")} - {"__init__", "tasks"}
    offenders = []
    for path in (PACKAGE / "pipelines").glob("*.py"):
        if path.stem == "tasks":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "amazon_commerce_sync.pipelines":
                    names = [alias.name for alias in node.names]
                elif node.module.startswith("amazon_commerce_sync.pipelines."):
                    names = [node.module.rsplit(".", 1)[1]]
            elif isinstance(node, ast.Import):
                names = [
                    a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("amazon_commerce_sync.pipelines.")
                ]
            offenders += [f"{path.stem} imports {name}" for name in names if name in pipelines and name != path.stem]
    assert not offenders, offenders
