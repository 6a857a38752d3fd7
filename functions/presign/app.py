"""The presign HTTP function (Chalice): thin routes over the shared layer.

Lambda handler: ``app.app`` (API Gateway HTTP API). ``scenestore serve`` serves this same object locally.
"""

from __future__ import annotations

from chalice import Chalice, Response

app = Chalice(app_name="scenestore-presign")


@app.route("/health", methods=["GET"])
def health() -> Response:
    from scenestore.health import check_health

    status = check_health()
    ok = all(v == "ok" for v in status.values())
    return Response(body=status, status_code=200 if ok else 503, headers={"Content-Type": "application/json"})
