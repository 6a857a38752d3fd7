"""Logger and metrics, created once per process (Powertools), shared by every function and command.

Log keys ``user_id``, ``project_id``, ``run_id`` are appended where they are known; tokens never are.
"""

from __future__ import annotations

import os
import sys

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "scenestore")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "scenestore")

logger = Logger(service=SERVICE, stream=sys.stderr)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
