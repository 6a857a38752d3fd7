"""migrate-verify: the last state of the migration state machine; its ``ok`` decides the execution's outcome.

Input ``{"run_id", "dry_run"}`` (for the logs); output the audit of ``scenestore verify``
(``scenestore.migration.verify_storage``): ``{"run_id", "ok", "clean", "missing", "legacy_referenced", ...}``,
where ``ok`` means no referenced object is missing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from scenestore.migration import verify_storage
from scenestore.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run_id = event.get("run_id") if isinstance(event, dict) else None
    logger.append_keys(run_id=run_id)
    report = verify_storage()
    metrics.add_metric(name="MissingReferencedObjects", unit=MetricUnit.Count, value=report["missing"])
    metrics.add_metric(name="LegacyReferencesLeft", unit=MetricUnit.Count, value=report["legacy_referenced"])
    logger.info("storage verified", extra={k: v for k, v in report.items() if not k.endswith("_keys")})
    return {"run_id": run_id, **report}
