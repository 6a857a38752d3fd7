"""Sample events live as JSON files under ``tests/events/``; load them here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from scenestore.services import Services

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """Load ``tests/events/<name>.json`` and shallow-merge ``overrides`` into it."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    data.update(overrides)
    return data


def atlas_event(name: str, services: Services, **detail_overrides: Any) -> dict[str, Any]:
    """A sample Atlas event aimed at this test's database (``ns.db``), ``detail`` fields overridden."""
    event = copy.deepcopy(load_event(name))
    event["detail"]["ns"]["db"] = services.settings.mongodb_db
    event["detail"].update(detail_overrides)
    return event
