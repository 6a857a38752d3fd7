"""migrate-plan: the first state of the migration state machine (infra/migration.asl.yaml).

Input ``{"request": <the execution's input>, "execution_name": <$$.Execution.Name>}`` where the execution's
input is ``{"run_id"?, "shards"?: K (default 8), "batch_size"?: (default 100), "dry_run"?: false}``; output
``{"run_id", "batch_size", "dry_run", "shards": [{"gte", "lt"}, ...]}``, the items of the Distributed Map.

The run id defaults to the execution's name. A real run records its plan in ``scenestore_migrations`` the first
time; a later execution with the same ``run_id`` (a resumed run) gets the ranges it planned first, so shards
never overlap whatever was inserted since. A dry run records nothing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from scenestore.common import validation_problems
from scenestore.errors import InvalidRequest
from scenestore.migration import Shard, plan_shards, runs
from scenestore.migration.config import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE
from scenestore.migration.models import RUN_ID_PATTERN
from scenestore.migration.shards import MAX_SHARDS
from scenestore.observability import logger, metrics
from scenestore.services import Services, get_services

DEFAULT_SHARDS = 8


class MigrationInput(BaseModel):
    """What an operator passes to ``aws stepfunctions start-execution --input``; unknown keys are typos."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    shards: StrictInt = Field(default=DEFAULT_SHARDS, ge=1, le=MAX_SHARDS)
    batch_size: StrictInt = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
    dry_run: StrictBool = False


class PlanEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request: MigrationInput
    execution_name: str = Field(pattern=RUN_ID_PATTERN)


def plan_run(services: Services, run_id: str, request: MigrationInput) -> dict[str, Any]:
    """The run's shards: planned now, or (resumed run) as recorded when it was first planned."""
    planned = plan_shards(services.db, request.shards)
    batch_size = request.batch_size
    if not request.dry_run:
        doc = runs.ensure_run(services.db, run_id, batch_size=batch_size, planned=[Shard.from_dict(s) for s in planned])
        runs.require_forward(doc)
        planned = doc.get("planned") or planned
    return {"run_id": run_id, "batch_size": batch_size, "dry_run": request.dry_run, "shards": planned}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        parsed = parse(event=event, model=PlanEvent)
    except ValidationError as exc:
        problems = validation_problems(exc.errors(), root="event")
        raise InvalidRequest(f"invalid migration input: {problems}") from None
    run_id = parsed.request.run_id or parsed.execution_name
    logger.append_keys(run_id=run_id)
    plan = plan_run(get_services(), run_id, parsed.request)
    logger.info("migration planned", extra={"shards": len(plan["shards"]), "dry_run": plan["dry_run"]})
    return plan
