"""The real SAM transform (aws-sam-translator) accepts template.yaml and generates what the other tests assume.

cfn-lint checks SAM templates against SAM's schema without running the transform; this runs it, as
CloudFormation does at deploy time, for both storage backends. Skipped when aws-sam-translator is not installed
(it is not a dev dependency yet; see the infra issue's report).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.infra import REQUIRED_PARAMETERS, load_template

translator = pytest.importorskip("samtranslator.translator.transform")


class _NoManagedPolicies:
    """The template names no managed policy, so the translator never needs IAM to look one up."""

    def load(self) -> dict[str, str]:
        return {}


def transform(backend: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = json.loads(json.dumps(load_template()))
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):  # what `sam package` does with local paths
                props[key] = f"s3://artifacts/{name}"
    parameters = {
        **REQUIRED_PARAMETERS,
        "CorsOrigins": ["https://app.example.com"],
        "StorageBackend": backend,
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "AWS::StackName": "scenestore",
    }
    result: dict[str, Any] = translator.transform(template, parameters, _NoManagedPolicies())
    return result


@pytest.mark.parametrize("backend", ["R2", "S3"])
def test_the_sam_transform_succeeds_and_keeps_the_conditional_s3_policies(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = transform(backend, monkeypatch)
    resources = out["Resources"]
    role = resources["MigrateBatchFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    ]
    conditional = [p for p in role["Policies"] if "Fn::If" in p]
    assert len(conditional) == 1 and conditional[0]["Fn::If"][0] == "UseS3"
    definition = resources["MigrationStateMachine"]["Properties"]
    assert definition["DefinitionS3Location"]["Key"] == "MigrationStateMachine"
    assert set(definition["DefinitionSubstitutions"]) == {
        "MigratePlanFunctionArn",
        "MigrateBatchFunctionArn",
        "MigrateVerifyFunctionArn",
        "MaxConcurrency",
    }


def test_the_http_api_routes_carry_the_authorizer_and_cors(monkeypatch: pytest.MonkeyPatch) -> None:
    body = transform("R2", monkeypatch)["Resources"]["HttpApi"]["Properties"]["Body"]
    security = {path: ops["get" if "get" in ops else "post"]["security"] for path, ops in body["paths"].items()}
    assert security.pop("/health") == [{"NONE": []}]
    assert security.pop("/storage/{key+}") == [{"NONE": []}]
    assert all(value == [{"JwtAuthorizer": []}] for value in security.values())
    assert body["x-amazon-apigateway-cors"]["allowOrigins"] == ["https://app.example.com"]
    jwt = body["components"]["securitySchemes"]["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert jwt["type"] == "jwt" and jwt["identitySource"] == "$request.header.Authorization"
