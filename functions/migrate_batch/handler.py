"""migrate-batch: one step of the legacy-key migration (contract section 6), looped per shard until ``done``.

Input ``{"run_id", "cursor", "batch_size", "dry_run", "shard": {"gte", "lt"} | null}``; output
``{"run_id", "cursor", "done", "scanned", "migrated", "skipped", "failed", "bytes_copied", "errors"}``.
Invalid input raises ``InvalidRequest`` (its message lists every problem). Work stops before the Lambda's
timeout with the cursor of the last finished batch.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from scenestore.budget import Deadline
from scenestore.migration import migrate_batch, parse_request
from scenestore.migration.config import LAMBDA_MARGIN
from scenestore.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_metric(name="MigrateBatchInvocations", unit=MetricUnit.Count, value=1)
    request = parse_request(event)
    logger.append_keys(run_id=request.run_id)
    result = migrate_batch(request, deadline=Deadline.from_context(context, margin_seconds=LAMBDA_MARGIN))
    metrics.add_metric(name="ObjectsMigrated", unit=MetricUnit.Count, value=result.migrated)
    metrics.add_metric(name="MigrationFailures", unit=MetricUnit.Count, value=result.failed)
    logger.info("migrate-batch finished", extra={k: v for k, v in result.to_dict().items() if k != "errors"})
    return result.to_dict()
