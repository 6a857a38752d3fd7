"""Alarms, the SNS topic and the dashboard in template.yaml are wired to metrics that really exist.

The project's own metrics are read from the deployed code with ``ast`` (every ``add_metric(name=...)`` in the
layer and the functions' CodeUri directories, the ``Metrics(namespace=..., service=...)`` of the module that
creates the shared metrics object, and the environment variables those read), the way the route tests read
Chalice's routes: a renamed or misspelled metric, a changed namespace or an added dimension breaks the test
instead of leaving an alarm that watches nothing. Built-in AWS metrics are checked against the names and
dimensions CloudWatch documents, and their dimension must point at a resource of the right type.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.infra import ROOT, Resolver, load_template, resources

ALARM: Final = "AWS::CloudWatch::Alarm"
FUNCTIONS: Final = sorted(resources("AWS::Serverless::Function"))
STATE_MACHINES: Final = sorted(resources("AWS::Serverless::StateMachine"))
OWN_TOPIC: Final = "ref:AlarmTopic"
GIVEN_TOPIC: Final = "arn:aws:sns:us-east-1:123456789012:ops-pager"
#: The module that creates the one ``Metrics`` object every handler imports.
METRICS_MODULE: Final = "scenestore.observability"
METRICS_OBJECT: Final = "metrics"


@dataclass(frozen=True)
class Builtin:
    """A built-in CloudWatch namespace: its one dimension, what the dimension names, and its metric names."""

    dimension: str
    resource_type: str
    #: ``ref`` (the resource's Ref is the dimension value) or ``getatt:<Attribute>``.
    value_from: str
    metrics: frozenset[str]


#: From the AWS documentation of each service's CloudWatch metrics (HTTP APIs: ApiGateway v2 names).
BUILTINS: Final = {
    "AWS/Lambda": Builtin(
        "FunctionName",
        "AWS::Serverless::Function",
        "ref",
        frozenset({"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}),
    ),
    "AWS/States": Builtin(
        "StateMachineArn",
        "AWS::Serverless::StateMachine",
        "ref",
        frozenset(
            {
                "ExecutionsStarted",
                "ExecutionsSucceeded",
                "ExecutionsFailed",
                "ExecutionsTimedOut",
                "ExecutionsAborted",
                "ExecutionTime",
            }
        ),
    ),
    "AWS/SQS": Builtin(
        "QueueName",
        "AWS::SQS::Queue",
        "getatt:QueueName",
        frozenset({"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"}),
    ),
    "AWS/ApiGateway": Builtin(
        "ApiId",
        "AWS::Serverless::HttpApi",
        "ref",
        frozenset({"Count", "4xx", "5xx", "Latency", "IntegrationLatency", "DataProcessed"}),
    ),
}


# -- what the code emits -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSetting:
    """A module-level ``NAME = os.environ.get(VARIABLE, DEFAULT)``."""

    variable: str
    default: str


@dataclass(frozen=True)
class Emitted:
    """The project's metrics as the code defines them."""

    names: dict[str, list[str]]  # metric name -> where (path:line)
    namespace: EnvSetting
    service: EnvSetting
    extra_dimensions: frozenset[str]


def deployed_sources() -> list[Path]:
    """Every Python file the stack deploys: the layer's ContentUri and each function's CodeUri."""
    props = [res["Properties"] for res in resources().values() if res["Type"].startswith("AWS::Serverless::")]
    roots = {ROOT / p[key] for p in props for key in ("ContentUri", "CodeUri") if isinstance(p.get(key), str)}
    return sorted(path for root in roots for path in root.rglob("*.py"))


def _literal(node: ast.expr | None, where: str) -> str:
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        raise AssertionError(f"{where}: not a string literal, so no alarm can be checked against it")
    return node.value


def _argument(call: ast.Call, keyword: str, position: int) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _metrics_names(tree: ast.Module) -> set[str]:
    """Local names bound to the shared metrics object (``from scenestore.observability import metrics``)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == METRICS_MODULE
        for alias in node.names
        if alias.name == METRICS_OBJECT
    }


def _env_settings(tree: ast.Module) -> dict[str, EnvSetting]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "get"
                and ast.unparse(value.func.value) == "os.environ"
            ):
                name = node.targets[0].id
                found[name] = EnvSetting(_literal(value.args[0], name), _literal(value.args[1], name))
    return found


def read_emitted(sources: Iterable[tuple[str, str]]) -> Emitted:
    """The metrics defined by ``(path, source)`` pairs; raises when the code does something this cannot follow."""
    names: dict[str, list[str]] = {}
    extra: set[str] = set()
    identity: tuple[EnvSetting, EnvSetting] | None = None
    for path, source in sources:
        tree = ast.parse(source)
        receivers = _metrics_names(tree)
        settings = _env_settings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path}:{node.lineno}"
            if isinstance(node.func, ast.Name) and node.func.id == "Metrics":
                parts = []
                for keyword in ("namespace", "service"):
                    arg = _argument(node, keyword, 99)
                    if not isinstance(arg, ast.Name) or arg.id not in settings:
                        raise AssertionError(f"{where}: Metrics({keyword}=...) is not read from the environment")
                    parts.append(settings[arg.id])
                if identity is not None:
                    raise AssertionError(f"{where}: a second Metrics object")
                identity = (parts[0], parts[1])
            if not isinstance(node.func, ast.Attribute):
                continue
            method = node.func.attr
            if method == "add_metric":
                receiver = ast.unparse(node.func.value)
                if receiver not in receivers:
                    raise AssertionError(f"{where}: {receiver}.add_metric is not the shared {METRICS_MODULE} object")
                names.setdefault(_literal(_argument(node, "name", 0), where), []).append(where)
            elif method == "add_dimension":
                extra.add(_literal(_argument(node, "name", 0), where))
            elif method == "set_default_dimensions":
                extra.update(kw.arg for kw in node.keywords if kw.arg)
    if identity is None:
        raise AssertionError("no Metrics(namespace=..., service=...) found in the deployed code")
    return Emitted(names, identity[0], identity[1], frozenset(extra))


def emitted_by_the_code() -> Emitted:
    return read_emitted((str(path.relative_to(ROOT)), path.read_text()) for path in deployed_sources())


def function_environment(resolver: Resolver, logical: str) -> dict[str, str]:
    """What a deployed function's process sees: the Globals' variables overlaid with its own."""
    template = resolver.template
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    own = template["Resources"][logical]["Properties"].get("Environment", {}).get("Variables", {})
    return {key: str(value) for key, value in resolver.resolve({**variables, **own}).items()}


@dataclass(frozen=True)
class Identity:
    namespace: str
    dimensions: tuple[tuple[str, str], ...]


def deployed_identity(resolver: Resolver, emitted: Emitted) -> Identity:
    """Namespace and dimensions the functions emit under, with the template's environment; one for all."""
    seen = set()
    for logical in FUNCTIONS:
        env = function_environment(resolver, logical)
        namespace = env.get(emitted.namespace.variable, emitted.namespace.default)
        service = env.get(emitted.service.variable, emitted.service.default)
        seen.add(Identity(namespace, (("service", service),)))
    if len(seen) != 1:
        raise AssertionError(f"functions emit under different namespaces or services: {seen}")
    return seen.pop()


# -- what the template watches -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    where: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]


def alarms(resolver: Resolver) -> dict[str, dict[str, Any]]:
    return {
        logical: resolver.resolve(res["Properties"])
        for logical, res in resolver.template["Resources"].items()
        if res["Type"] == ALARM and resolver.exists(logical)
    }


def _dims(pairs: list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d["Name"], d["Value"]) for d in pairs))


def alarm_metrics(logical: str, props: dict[str, Any]) -> list[Watched]:
    if "MetricName" in props:
        return [Watched(logical, props["Namespace"], props["MetricName"], _dims(props.get("Dimensions", [])))]
    out = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            out.append(
                Watched(
                    f"{logical}.{query['Id']}",
                    metric["Namespace"],
                    metric["MetricName"],
                    _dims(metric.get("Dimensions", [])),
                )
            )
    return out


def dashboard_body(resolver: Resolver) -> dict[str, Any]:
    (props,) = [
        resolver.resolve(res["Properties"])
        for res in resolver.template["Resources"].values()
        if res["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body: dict[str, Any] = json.loads(props["DashboardBody"])
    return body


def widget_metrics(body: dict[str, Any]) -> list[Watched]:
    out = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        title = widget["properties"]["title"]
        for row in widget["properties"]["metrics"]:
            fields = [item for item in row if not isinstance(item, dict)]
            if not fields:  # a math expression row
                continue
            if any(item in (".", "...") for item in fields):
                raise AssertionError(f"widget {title!r}: repeat shorthand hides which metric is meant; spell it out")
            namespace, name, *pairs = fields
            dims = tuple(sorted(zip(pairs[0::2], pairs[1::2], strict=True)))
            out.append(Watched(f"widget {title!r}", namespace, name, dims))
    return out


def everything_watched(resolver: Resolver) -> list[Watched]:
    watched = [metric for logical, props in alarms(resolver).items() for metric in alarm_metrics(logical, props)]
    return watched + widget_metrics(dashboard_body(resolver))


def wiring_problems(watched: Iterable[Watched], emitted: Emitted, identity: Identity, resolver: Resolver) -> list[str]:
    """Every watched metric that the code does not emit, or not under that namespace and those dimensions."""
    problems = []
    for metric in watched:
        builtin = BUILTINS.get(metric.namespace)
        if builtin is not None:
            problems += _builtin_problems(metric, builtin, resolver)
        elif metric.namespace != identity.namespace:
            problems.append(f"{metric.where}: namespace {metric.namespace!r}, the code emits {identity.namespace!r}")
        elif metric.name not in emitted.names:
            problems.append(f"{metric.where}: no add_metric(name={metric.name!r}) in the deployed code")
        else:
            expected = {name for name, _ in identity.dimensions} | emitted.extra_dimensions
            if {name for name, _ in metric.dimensions} != expected:
                problems.append(f"{metric.where}: dimensions {metric.dimensions}, the code emits {sorted(expected)}")
            elif not set(identity.dimensions) <= set(metric.dimensions):
                problems.append(f"{metric.where}: dimensions {metric.dimensions}, the code emits {identity.dimensions}")
    return problems


def _builtin_problems(metric: Watched, builtin: Builtin, resolver: Resolver) -> Iterator[str]:
    if metric.name not in builtin.metrics:
        yield f"{metric.where}: {metric.namespace} has no metric {metric.name!r}"
    if [name for name, _ in metric.dimensions] != [builtin.dimension]:
        yield f"{metric.where}: {metric.namespace} dimensions {metric.dimensions}, expected {builtin.dimension}"
        return
    value = metric.dimensions[0][1]
    kind, _, rest = value.partition(":")
    logical, _, attribute = rest.partition(".")
    resource = resolver.template["Resources"].get(logical)
    shape = kind if kind == "ref" else f"{kind}:{attribute}"
    if resource is None or resource["Type"] != builtin.resource_type or shape != builtin.value_from:
        expected = f"the {builtin.value_from} of a {builtin.resource_type}"
        yield f"{metric.where}: {builtin.dimension}={value!r} is not {expected}"


# -- tests -----------------------------------------------------------------------------------------------------------

PARAMETER_SETS: Final = [{}, {"AlarmTopicArn": GIVEN_TOPIC, "AlarmEmail": "ops@example.com"}]


@pytest.mark.parametrize("parameters", PARAMETER_SETS, ids=["own-topic", "given-topic"])
def test_every_alarm_and_widget_names_a_metric_the_code_emits_with_its_namespace_and_dimensions(
    parameters: dict[str, str],
) -> None:
    resolver = Resolver(**parameters)
    emitted = emitted_by_the_code()
    watched = everything_watched(resolver)
    assert len(watched) > 40  # the reader found the alarms and widgets, not nothing
    assert wiring_problems(watched, emitted, deployed_identity(resolver, emitted), resolver) == []


def test_the_code_reader_finds_the_metrics_and_where_the_namespace_comes_from() -> None:
    emitted = emitted_by_the_code()
    assert {"DeleteFailures", "MigrationFailures", "ObjectsDeleted", "ObjectsMigrated"} <= set(emitted.names)
    assert emitted.namespace.variable == "POWERTOOLS_METRICS_NAMESPACE"
    assert emitted.service.variable == "POWERTOOLS_SERVICE_NAME"
    assert any(where.startswith("functions/migrate_batch/") for where in emitted.names["MigrationFailures"])


def test_every_metric_the_code_emits_is_on_the_dashboard() -> None:
    resolver = Resolver()
    shown = {metric.name for metric in widget_metrics(dashboard_body(resolver)) if metric.namespace not in BUILTINS}
    assert set(emitted_by_the_code().names) - shown == set()


def _sources_with(path_suffix: str, old: str, new: str) -> list[tuple[str, str]]:
    sources = []
    changed = False
    for path in deployed_sources():
        text = path.read_text()
        if str(path).endswith(path_suffix):
            assert old in text
            text, changed = text.replace(old, new), True
        sources.append((str(path.relative_to(ROOT)), text))
    assert changed, path_suffix
    return sources


def test_the_check_notices_a_misspelled_metric() -> None:
    resolver = Resolver()
    misspelled = read_emitted(_sources_with("scenestore/cleanup.py", '"DeleteFailures"', '"DeleteFailure"'))
    problems = wiring_problems(
        everything_watched(resolver), misspelled, deployed_identity(resolver, misspelled), resolver
    )
    assert any(p.startswith("DeleteFailuresAlarm:") and "DeleteFailures" in p for p in problems), problems
    assert any("widget 'Objects deleted and failures'" in p for p in problems), problems


def test_the_check_notices_a_changed_namespace_an_added_dimension_and_a_wrong_builtin() -> None:
    resolver = Resolver()
    emitted = emitted_by_the_code()
    identity = deployed_identity(resolver, emitted)
    renamed = Identity("scenestore-prod", identity.dimensions)
    assert any("namespace" in p for p in wiring_problems(everything_watched(resolver), emitted, renamed, resolver))

    dimensioned = read_emitted(
        _sources_with(
            "migrate_batch/handler.py",
            'metrics.add_metric(name="MigrationFailures"',
            'metrics.add_dimension(name="shard", value="0")\n    metrics.add_metric(name="MigrationFailures"',
        )
    )
    problems = wiring_problems(everything_watched(resolver), dimensioned, identity, resolver)
    assert any(p.startswith("MigrationFailuresAlarm:") and "dimensions" in p for p in problems)

    wrong = [
        Watched("typo", "AWS/Lambda", "Error", (("FunctionName", "ref:PresignFunction"),)),
        Watched("wrong resource", "AWS/Lambda", "Errors", (("FunctionName", "ref:HttpApi"),)),
        Watched("arn for a name", "AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "getatt:X.Arn"),)),
    ]
    assert [p.split(":")[0] for p in wiring_problems(wrong, emitted, identity, resolver)] == [
        "typo",
        "wrong resource",
        "arn for a name",
    ]


def test_a_metric_emitted_through_another_object_or_a_computed_name_is_refused() -> None:
    with pytest.raises(AssertionError, match="not the shared"):
        read_emitted([("x.py", "import aws_lambda_powertools as p\nm = p.Metrics()\nm.add_metric(name='A')")])
    with pytest.raises(AssertionError, match="not a string literal"):
        read_emitted([("x.py", "from scenestore.observability import metrics\nmetrics.add_metric(name=n)")])


def _alarms_on(resolver: Resolver, namespace: str, name: str, dimension: tuple[str, str]) -> list[str]:
    return sorted(
        logical
        for logical, props in alarms(resolver).items()
        for metric in alarm_metrics(logical, props)
        if (metric.namespace, metric.name) == (namespace, name) and dimension in metric.dimensions
    )


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_every_function_alarms_on_its_errors_and_its_throttles(logical: str) -> None:
    resolver = Resolver()
    dimension = ("FunctionName", f"ref:{logical}")
    assert _alarms_on(resolver, "AWS/Lambda", "Errors", dimension) == [f"{logical}ErrorsAlarm"]
    assert _alarms_on(resolver, "AWS/Lambda", "Throttles", dimension) == [f"{logical}ThrottlesAlarm"]


@pytest.mark.parametrize("logical", STATE_MACHINES)
def test_every_state_machine_alarms_on_failed_plus_timed_out_executions(logical: str) -> None:
    resolver = Resolver()
    dimension = ("StateMachineArn", f"ref:{logical}")
    (failed,) = _alarms_on(resolver, "AWS/States", "ExecutionsFailed", dimension)
    assert _alarms_on(resolver, "AWS/States", "ExecutionsTimedOut", dimension) == [failed]
    queries = alarms(resolver)[failed]["Metrics"]
    (result,) = [q for q in queries if q.get("ReturnData", True)]
    ids = {q["Id"] for q in queries if "MetricStat" in q}
    assert all(query_id in result["Expression"] for query_id in ids) and "+" in result["Expression"]


def test_the_queue_and_failure_alarms_fire_on_the_first_message_or_failure_by_default() -> None:
    resolver = Resolver()
    every = alarms(resolver)
    queue = ("QueueName", "getatt:DeletionDeadLetterQueue.QueueName")
    (dlq,) = _alarms_on(resolver, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue)
    service = ("service", "scenestore")
    (deletes,) = _alarms_on(resolver, "scenestore", "DeleteFailures", service)
    (migrations,) = _alarms_on(resolver, "scenestore", "MigrationFailures", service)
    for logical in (dlq, deletes, migrations):
        props = every[logical]
        assert (props["ComparisonOperator"], float(props["Threshold"])) == ("GreaterThanThreshold", 0.0), logical
        assert props["TreatMissingData"] == "notBreaching"
    assert every[deletes]["Statistic"] == "Sum" and int(every[deletes]["Period"]) == 15 * 60
    assert every[dlq]["Statistic"] == "Maximum"


def test_the_api_alarm_is_a_5xx_rate_that_ignores_quiet_periods() -> None:
    resolver = Resolver(Api5xxMinRequests="50", Api5xxRatePercent="2")
    (logical,) = _alarms_on(resolver, "AWS/ApiGateway", "5xx", ("ApiId", "ref:HttpApi"))
    props = alarms(resolver)[logical]
    queries = {q["Id"]: q for q in props["Metrics"]}
    counted = {q["MetricStat"]["Metric"]["MetricName"]: key for key, q in queries.items() if "MetricStat" in q}
    assert set(counted) == {"5xx", "Count"}
    (rate,) = [q for q in queries.values() if q.get("ReturnData")]
    errors, requests = counted["5xx"], counted["Count"]
    assert f"{requests}, 0) >= 50" in rate["Expression"]
    assert f"100 * FILL({errors}, 0) / {requests}" in rate["Expression"]
    assert float(props["Threshold"]) == 2.0


@pytest.mark.parametrize("parameters", PARAMETER_SETS, ids=["own-topic", "given-topic"])
def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(parameters: dict[str, str]) -> None:
    resolver = Resolver(**parameters)
    topic = parameters.get("AlarmTopicArn", OWN_TOPIC)
    assert resolver.exists("AlarmTopic") is ("AlarmTopicArn" not in parameters)
    every = alarms(resolver)
    assert len(every) == 2 * len(FUNCTIONS) + len(STATE_MACHINES) + 4
    for logical, props in every.items():
        assert props["AlarmActions"] == [topic], logical
        assert props["OKActions"] == [topic], logical
    assert resolver.exists("AlarmEmailSubscription") is ("AlarmEmail" in parameters)
    if "AlarmEmail" in parameters:
        subscription = resolver.resolve(resources()["AlarmEmailSubscription"]["Properties"])
        assert subscription == {"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": topic}


def test_the_created_topic_lets_cloudwatch_of_this_account_publish() -> None:
    resolver = Resolver()
    policy = resolver.resolve(resources()["AlarmTopicPolicy"]["Properties"])
    assert policy["Topics"] == [OWN_TOPIC]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert (statement["Action"], statement["Resource"]) == ("sns:Publish", OWN_TOPIC)
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_thresholds_and_periods_are_parameters_with_defaults() -> None:
    template = load_template()
    parameters = template["Parameters"]
    for logical, res in resources(ALARM).items():
        props = res["Properties"]
        periods = (
            [props["Period"]]
            if "Period" in props
            else [q["MetricStat"]["Period"] for q in props["Metrics"] if "MetricStat" in q]
        )
        for value in [props["Threshold"], *periods]:
            assert isinstance(value, dict) and set(value) == {"Ref"}, f"{logical}: {value!r} is hard-coded"
            assert "Default" in parameters[value["Ref"]], f"{logical}: {value['Ref']} has no default"
        assert all(int(v) % 60 == 0 for p in periods for v in parameters[p["Ref"]].get("AllowedValues", [60]))


def test_the_dashboard_has_one_row_each_for_uploads_deletions_and_migration() -> None:
    body = dashboard_body(Resolver())
    widgets = body["widgets"]
    headings = [w for w in widgets if w["type"] == "text"]
    titles = [w["properties"]["markdown"].removeprefix("## ").split(" - ")[0] for w in headings]
    assert titles == ["Uploads and API", "Deletions", "Migration"]
    cells: set[tuple[int, int]] = set()
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & area, f"{widget} overlaps another widget"
        cells |= area
    tops = [h["y"] for h in headings] + [10**6]
    expected_namespaces = [
        {"AWS/ApiGateway", "AWS/Lambda"},
        {"scenestore", "AWS/States", "AWS/SQS", "AWS/Lambda"},
        {"scenestore", "AWS/States", "AWS/Lambda"},
    ]
    for index, namespaces in enumerate(expected_namespaces):
        row = [w for w in widgets if w["type"] == "metric" and tops[index] < w["y"] < tops[index + 1]]
        assert {m[0] for w in row for m in w["properties"]["metrics"]} == namespaces, titles[index]
        assert all(w["properties"]["region"] == "us-east-1" for w in row)
