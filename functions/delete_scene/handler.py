"""delete-scene: a scene was deleted; delete its prefix and the legacy objects only it referenced.

Accepts the app's ``SceneDeleted`` EventBridge event, an Atlas Trigger delete event on ``scenes``, or a
direct ``{"user_id", "project_id", "scene_id", "continuation"?}``; returns the contract's result (``complete: false``
with a ``continuation`` when its time ran out: re-invoke with the same event plus that continuation).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from scenestore.cleanup import handle_deletion_event
from scenestore.events import SCENE
from scenestore.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_deletion_event(event, context, expect=SCENE)
