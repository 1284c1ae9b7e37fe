"""Validate JSON documents against the definitions of a Swagger 2.0 model.

Used by the sandboxes' conformance tests (and optionally by the sandboxes
themselves) with the official Amazon and Adobe models kept in ``reference/``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

REFERENCE = Path(__file__).resolve().parent.parent / "reference"


@functools.cache
def load_model(relative_path: str) -> dict[str, Any]:
    """Load a model file, e.g. ``sp-api/models/orders_2026-01-01.json``."""
    return json.loads((REFERENCE / relative_path).read_text(encoding="utf-8"))


def _swagger2_to_jsonschema(node: Any) -> Any:
    # Swagger 2.0 schemas are JSON-Schema draft 4 plus a few keywords;
    # ``x-nullable`` is how Swagger 2 says "may be null".
    if isinstance(node, dict):
        out = {k: _swagger2_to_jsonschema(v) for k, v in node.items() if k not in ("example", "x-nullable")}
        if node.get("x-nullable") and "type" in node:
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_swagger2_to_jsonschema(v) for v in node]
    return node


@functools.cache
def _validator(relative_path: str, definition: str) -> jsonschema.Draft4Validator:
    model = load_model(relative_path)
    schema = {
        "$ref": f"#/definitions/{definition}",
        "definitions": _swagger2_to_jsonschema(model["definitions"]),
    }
    return jsonschema.Draft4Validator(schema)


def validate(relative_path: str, definition: str, instance: Any) -> None:
    """Raise ``jsonschema.ValidationError`` if ``instance`` is not a valid ``definition``."""
    errors = sorted(_validator(relative_path, definition).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise jsonschema.ValidationError(
            f"{definition}: {first.message} at {'/'.join(map(str, first.path)) or '<root>'} ({len(errors)} error(s))"
        )
