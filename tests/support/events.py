"""Sample events live as JSON files under ``tests/events/``; load them here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """Load ``tests/events/<name>.json`` and shallow-merge ``overrides`` into it."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    data.update(overrides)
    return data
