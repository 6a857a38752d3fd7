"""template.yaml itself: lint, the Lambda layout of every function, the layer's requirements, IAM, secrets, routes.

Every check follows names from the template, so a renamed file, handler, route or resource fails here instead
of at deploy time. IAM: least privilege is asserted per principal (which actions, on which resources), not
just "no wildcard".
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from scenestore.secrets import CREDENTIAL_KEYS, SECRETS_ARN_VAR, SECRETS_REQUIRED_VAR
from scenestore.settings import Settings

from tests.support.infra import (
    ROOT,
    TEMPLATE,
    Resolver,
    function_entry,
    load_handler,
    load_template,
    resources,
)
from tests.support.moto_engine import load_definition, placeholders

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
FUNCTIONS = sorted(resources("AWS::Serverless::Function"))
STATE_MACHINES = sorted(resources("AWS::Serverless::StateMachine"))
LAYER_DIR = ROOT / resources()["SharedLayer"]["Properties"]["ContentUri"]
#: Shipped inside the Lambda runtime itself (and the dependencies of boto3, which the layer bundles anyway).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
SECRET_SETTINGS = {*CREDENTIAL_KEYS, "SCENESTORE_MONGODB_URI", "SCENESTORE_JWT_SECRET"}
#: Actions without resource-level permissions (none used today; listed here so an exception is explicit).
UNSCOPED_ACTIONS: set[str] = set()


def run_cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cfn_lint_is_clean() -> None:
    result = run_cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


# -- state machine definitions --------------------------------------------------------------------------------------


def definitions() -> Iterator[tuple[str, dict[str, Any]]]:
    resolver = Resolver()
    for logical in STATE_MACHINES:
        substitutions = resolver.resolve(resources()[logical]["Properties"]["DefinitionSubstitutions"])
        arns = {
            key: f"arn:aws:lambda:us-east-1:123456789012:function:{value.split(':', 1)[1].split('.')[0]}"
            if isinstance(value, str) and value.startswith("getatt:")
            else value
            for key, value in substitutions.items()
        }
        yield logical, load_definition(logical, {key: str(value) for key, value in arns.items()})


@pytest.mark.parametrize("logical", STATE_MACHINES)
def test_asl_placeholders_and_substitutions_agree(logical: str) -> None:
    used = placeholders(logical)
    given = set(resources()[logical]["Properties"]["DefinitionSubstitutions"])
    assert used == given


def test_asl_files_pass_the_step_functions_schema(tmp_path: Path) -> None:
    """cfn-lint validates a definition only inline, so each substituted ASL file is inlined into a scratch
    template; a deliberately broken copy proves the check bites."""
    scratch: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}
    for logical, definition in definitions():
        scratch["Resources"][logical] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/sfn", "Definition": definition},
        }
    good = tmp_path / "asl.json"
    good.write_text(json.dumps(scratch))
    result = run_cfn_lint(good)
    assert result.returncode == 0, result.stdout

    broken = json.loads(json.dumps(scratch))
    first = next(iter(broken["Resources"].values()))["Properties"]["Definition"]
    next(iter(first["States"].values()))["Retry"] = [{"ErrorEquals": ["X"], "BackoffRate": "fast"}]
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    assert run_cfn_lint(bad).returncode != 0


# -- functions: the Lambda layout ------------------------------------------------------------------------------------

_IMPORT_CHECK = """
import importlib, json, sys
code_dir, layer, module, attribute, *site_dirs = sys.argv[1:]
sys.path[:0] = [code_dir, layer]      # /var/task, then the layer's /opt/python
sys.path.extend(site_dirs)            # third-party packages, without the editable install's path hooks
handler = getattr(importlib.import_module(module), attribute)
import scenestore
print(json.dumps({
    "module": sys.modules[module].__file__,
    "scenestore": scenestore.__file__,
    "callable": callable(handler),
    "functions_package": sorted(m for m in sys.modules if m == "functions" or m.startswith("functions.")),
}))
"""


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_code_uri_and_handler_import_in_the_lambda_layout(logical: str, tmp_path: Path) -> None:
    """GIVEN only the function's folder and the layer folder on sys.path (no editable install, no repo root)
    THEN the handler imports, is callable, comes from CodeUri, and finds scenestore in the layer."""
    code_dir, module, attribute = function_entry(logical)
    assert code_dir.is_dir(), f"{logical}: CodeUri {code_dir} does not exist"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "POWERTOOLS_METRICS_NAMESPACE": "scenestore"}
    argv = [sys.executable, "-I", "-S", "-c", _IMPORT_CHECK, str(code_dir), str(LAYER_DIR), module, attribute]
    result = subprocess.run(
        [*argv, *site.getsitepackages()], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["callable"]
    assert Path(found["module"]).resolve().parent == code_dir.resolve()
    assert Path(found["scenestore"]).resolve().is_relative_to(LAYER_DIR.resolve())
    assert found["functions_package"] == [], "handlers must import only absolute scenestore names"


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_every_function_uses_the_layer_and_the_runtime_the_layer_was_built_for(logical: str) -> None:
    template = load_template()
    props = {**template["Globals"]["Function"], **resources()[logical]["Properties"]}
    layer = resources()["SharedLayer"]
    assert props["Runtime"] in layer["Properties"]["CompatibleRuntimes"]
    assert props["Architectures"] == layer["Properties"]["CompatibleArchitectures"]
    # shared/Makefile builds the layer (bytecode, pinned wheels): for this runtime and architecture by default
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": props["Architectures"][0]}
    makefile = (LAYER_DIR / "Makefile").read_text()
    assert f"PYTHON312 ?= {props['Runtime']}\n" in makefile
    assert f"SCENESTORE_LAYER_ARCH ?= {props['Architectures'][0]}\n" in makefile
    assert {"Ref": "SharedLayer"} in props["Layers"]


# -- the layer's requirements ---------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Absolute imports anywhere in the file (also inside functions), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module_file(name: str) -> Path | None:
    base = LAYER_DIR.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules reachable from the handlers, with the files importing them."""
    todo = [function_entry(f)[0] / (function_entry(f)[1] + ".py") for f in FUNCTIONS]
    seen: set[Path] = set()
    found: dict[str, set[str]] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "scenestore":
                parts = name.split(".")
                for end in range(1, len(parts) + 1):
                    module = _module_file(".".join(parts[:end]))
                    if module is not None:
                        todo.append(module)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def requirement_closure(lines: list[str] | None = None) -> set[str]:
    """Distributions installed by shared/requirements.in's roots, with the extras they ask for, transitively."""
    if lines is None:
        lines = (LAYER_DIR / "requirements.in").read_text().splitlines()
    todo = [Requirement(line) for line in (ln.split("#")[0].strip() for ln in lines) if line]
    names: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = requirement.name.lower().replace("_", "-")
        extras = requirement.extras
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in names:
            continue
        names.update({key, name})
        for sub in metadata.distribution(name).requires or []:
            parsed = Requirement(sub)
            if parsed.marker is None or any(parsed.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append(parsed)
    return {n for n in names if "[" not in n}


def uncovered_imports(lines: list[str] | None = None) -> dict[str, list[str]]:
    distributions = metadata.packages_distributions()
    installed = requirement_closure(lines) | RUNTIME_PROVIDED
    missing = {}
    for module, files in third_party_imports().items():
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not owners & installed:
            missing[module] = sorted(files)
    return missing


def test_layer_requirements_cover_every_third_party_import_of_the_handlers() -> None:
    assert uncovered_imports() == {}, "shared/requirements.in does not provide these"


def test_the_requirements_check_notices_a_missing_extra() -> None:
    """Without Powertools' [parser] extra, pydantic (the event models) would be missing from the layer
    (pydantic-settings, the other route to pydantic, is left out too)."""
    text = (LAYER_DIR / "requirements.in").read_text().replace("[parser]", "")
    lines = [line for line in text.splitlines() if not line.startswith("pydantic-settings")]
    assert "pydantic" in uncovered_imports(lines)


def test_layer_requirements_list_nothing_the_handlers_do_not_import() -> None:
    distributions = metadata.packages_distributions()
    imported = {
        d.lower().replace("_", "-") for module in third_party_imports() for d in distributions.get(module, [module])
    }
    lines = (LAYER_DIR / "requirements.in").read_text().splitlines()
    listed = {Requirement(ln.split("#")[0]).name.lower() for ln in lines if ln.split("#")[0].strip()}
    assert listed - imported == set()


# -- IAM ------------------------------------------------------------------------------------------------------------


def policy_statements(resolver: Resolver) -> Iterator[tuple[str, dict[str, Any]]]:
    """(principal, statement) for every identity policy in the template, intrinsics resolved."""
    for name, res in resources().items():
        if not resolver.exists(name):
            continue
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in resolver.resolve(props.get("Policies", [])):
                assert isinstance(policy, dict) and "Statement" in policy, f"{name}: only inline statements expected"
                for statement in policy["Statement"]:
                    yield name, statement
        elif res["Type"] == "AWS::IAM::Role":
            for policy in resolver.resolve(props.get("Policies", [])):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(resolver: Resolver) -> dict[str, dict[str, set[str]]]:
    """principal -> action -> resources."""
    table: dict[str, dict[str, set[str]]] = {}
    for principal, statement in policy_statements(resolver):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            table.setdefault(principal, {}).setdefault(action, set()).update(_as_list(statement["Resource"]))
    return table


def state_machine_arn(resolver: Resolver, logical: str) -> str:
    name = resolver.resolve(resources()[logical]["Properties"].get("Name"))
    assert name, f"{logical} needs a Name to be referenced by ARN"
    return f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"


@pytest.mark.parametrize("backend", ["R2", "S3"])
def test_every_iam_resource_is_declared_in_the_template_and_none_is_a_wildcard(backend: str) -> None:
    resolver = Resolver(StorageBackend=backend)
    bucket = resolver.parameters["BucketName"]
    named_arns = {state_machine_arn(resolver, "MigrationStateMachine"), f"arn:aws:s3:::{bucket}"}
    for principal, actions in grants(resolver).items():
        for action, targets in actions.items():
            for target in targets:
                if action in UNSCOPED_ACTIONS:
                    continue
                assert "*" not in target.replace(f"{bucket}/*", "").replace("-migration/*", ""), (principal, action)
                if target.startswith(("ref:", "getatt:")):
                    continue  # the resolver already refused anything undeclared
                assert (
                    target in named_arns
                    or target == f"arn:aws:s3:::{bucket}/*"
                    or target.startswith("arn:aws:states:us-east-1:123456789012:execution:scenestore-migration/")
                ), (principal, action, target)


def test_r2_needs_no_s3_permission_and_s3_names_the_bucket() -> None:
    r2 = grants(Resolver(StorageBackend="R2"))
    assert not [a for actions in r2.values() for a in actions if a.startswith("s3:")]
    s3 = grants(Resolver(StorageBackend="S3"))
    for principal, actions in s3.items():
        for action, targets in actions.items():
            if action.startswith("s3:"):
                expected = (
                    {"arn:aws:s3:::autoshorts-media"}
                    if action in ("s3:ListBucket", "s3:ListBucketMultipartUploads")  # bucket-level actions
                    else {"arn:aws:s3:::autoshorts-media/*"}
                )
                assert targets == expected, (principal, action)
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(s3["MigrateBatchFunction"])
    assert "s3:PutObject" not in s3["DeleteProjectFunction"] and "s3:DeleteObject" not in s3["MigrateVerifyFunction"]
    for deleter in ("DeleteProjectFunction", "DeleteSceneFunction"):  # a deletion aborts the uploads in progress
        assert {"s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload"} <= set(s3[deleter])


def test_each_function_reads_only_the_runtime_secret_and_nothing_else_reads_secrets() -> None:
    table = grants(Resolver())
    readers = {p: a["secretsmanager:GetSecretValue"] for p, a in table.items() if "secretsmanager:GetSecretValue" in a}
    assert set(readers) == set(FUNCTIONS)
    assert all(targets == {"ref:RuntimeSecret"} for targets in readers.values())
    assert not [
        a
        for actions in table.values()
        for a in actions
        if a.startswith("secretsmanager:") and a != "secretsmanager:GetSecretValue"
    ]


def test_lambda_invoke_is_granted_only_to_state_machines_for_exactly_the_functions_their_asl_calls() -> None:
    resolver = Resolver()
    table = grants(resolver)
    invokers = {p for p, actions in table.items() if "lambda:InvokeFunction" in actions}
    assert invokers == set(STATE_MACHINES)
    for logical in STATE_MACHINES:
        substitutions = resolver.resolve(resources()[logical]["Properties"]["DefinitionSubstitutions"])
        called = {v for v in substitutions.values() if isinstance(v, str) and v.startswith("getatt:")}
        assert table[logical]["lambda:InvokeFunction"] == called, logical


def test_start_execution_is_granted_only_where_executions_are_started() -> None:
    resolver = Resolver()
    table = grants(resolver)
    starters = {p: a["states:StartExecution"] for p, a in table.items() if "states:StartExecution" in a}
    assert starters == {
        "DeletionEventsRole": {"ref:ProjectDeletionStateMachine", "ref:SceneDeletionStateMachine"},
        "MigrationStateMachine": {state_machine_arn(resolver, "MigrationStateMachine")},  # its Distributed Map
    }
    role = resolver.resolve(resources()["DeletionEventsRole"]["Properties"]["AssumeRolePolicyDocument"])
    assert role["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    used_by = {
        t["Arn"]
        for name, res in resources("AWS::Events::Rule").items()
        if resolver.exists(name)
        for t in resolver.resolve(res["Properties"])["Targets"]
        if t.get("RoleArn") == "getatt:DeletionEventsRole.Arn"
    }
    assert used_by == starters["DeletionEventsRole"]


# -- secrets and configuration --------------------------------------------------------------------------------------


def function_environment(resolver: Resolver, logical: str) -> dict[str, str]:
    template = load_template()
    env = dict(resolver.resolve(template["Globals"]["Function"]["Environment"]["Variables"]))
    own = resources()[logical]["Properties"].get("Environment", {}).get("Variables", {})
    env.update(resolver.resolve(own))
    return env


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_no_credential_is_a_plain_environment_variable(logical: str) -> None:
    env = function_environment(Resolver(), logical)
    assert not SECRET_SETTINGS & set(env)
    assert env[SECRETS_ARN_VAR] == "ref:RuntimeSecret"
    assert not [v for v in env.values() if "mongodb://" in v or "mongodb+srv://" in v]


@pytest.mark.parametrize("backend", ["R2", "S3"])
@pytest.mark.parametrize("logical", FUNCTIONS)
def test_the_deployed_environment_plus_the_secret_is_a_valid_configuration(logical: str, backend: str) -> None:
    """What a cold start builds: template env + the secret's keys -> Settings.from_env, no ConfigError."""
    env = function_environment(Resolver(StorageBackend=backend), logical)
    required = env[SECRETS_REQUIRED_VAR].split(",")
    assert set(required) <= SECRET_SETTINGS
    secret = {
        "AWS_ACCESS_KEY_ID": "r2-key",
        "AWS_SECRET_ACCESS_KEY": "r2-secret",
        "SCENESTORE_MONGODB_URI": "mongodb+srv://c.example.net/",
    }
    settings = Settings.from_env({**env, **{k: secret[k] for k in required}})
    assert settings.bucket == "autoshorts-media"
    if backend == "R2":
        assert (settings.s3_endpoint_url, settings.s3_region) == (
            "https://0123456789abcdef.r2.cloudflarestorage.com",
            "auto",
        )
        assert set(required) == set(secret)
    else:
        assert (settings.s3_endpoint_url, settings.s3_region) == ("https://s3.us-east-1.amazonaws.com", "us-east-1")
        assert required == ["SCENESTORE_MONGODB_URI"]
    if logical == "PresignFunction":
        assert settings.jwt_jwks_url and settings.jwt_issuer and settings.jwt_audience
        # Lambda adds the marker; the operator's secret adds the media key: the dev token keys check then passes.
        deployed = {**env, "AWS_LAMBDA_FUNCTION_NAME": "presign", "SCENESTORE_MEDIA_TOKEN_SECRET": "k" * 48}
        Settings.from_env(deployed).require_token_keys(deployed)


def test_the_secret_starts_empty_and_no_value_is_in_the_template() -> None:
    secret = resources()["RuntimeSecret"]["Properties"]
    assert json.loads(secret["SecretString"]) == {}
    assert "GenerateSecretString" not in secret


# -- HTTP API ---------------------------------------------------------------------------------------------------------


def http_events() -> dict[str, dict[str, Any]]:
    events = resources()["PresignFunction"]["Properties"]["Events"]
    return {name: event["Properties"] for name, event in events.items() if event["Type"] == "HttpApi"}


def test_every_api_route_is_a_route_of_the_chalice_app_and_back() -> None:
    app = load_handler("PresignFunction")
    served = {(path, method) for path, methods in app.routes.items() for method in methods if method != "OPTIONS"}
    wired = {(props["Path"], props["Method"]) for props in http_events().values()}
    assert wired == served
    assert all(props["PayloadFormatVersion"] == "1.0" for props in http_events().values()), "Chalice reads v1 events"


def test_the_jwt_authorizer_guards_every_route_but_health_and_the_storage_redirect() -> None:
    api = resources()["HttpApi"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "JwtAuthorizer"
    open_routes = {
        props["Path"] for props in http_events().values() if props.get("Auth", {}).get("Authorizer") == "NONE"
    }
    assert open_routes == {"/health", "/storage/{key+}"}
    jwt = api["Auth"]["Authorizers"]["JwtAuthorizer"]
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert jwt["JwtConfiguration"] == {"issuer": {"Ref": "JwtIssuer"}, "audience": [{"Ref": "JwtAudience"}]}
    assert api["CorsConfiguration"]["AllowOrigins"] == {"Ref": "CorsOrigins"}
