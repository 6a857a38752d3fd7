"""The deployed path on an independent engine: moto's Step Functions interpreter, fed by moto's EventBridge.

``Engine`` starts ``mock_aws`` with moto's own ASL interpreter on (``execute_state_machine``) and deploys into it
what ``template.yaml`` declares for the deletion and migration paths, read through ``tests.support.infra``:

- the Lambda functions (CodeUri, Handler, Timeout) and the three state machines, created from the very
  ``infra/*.asl.yaml`` files with ``DefinitionSubstitutions`` applied as CloudFormation does (plain text, before
  the YAML is read);
- the EventBridge rules (patterns, buses, targets, dead-letter queue) and the ``DeletionEventsRole``.

Lambda invokes are answered in-process by the real ``functions/*/handler.py`` (the function's CodeUri and
Handler), one at a time as one execution environment per function would run them, with a context whose
remaining time counts down from the function's Timeout (or a shorter budget a test asks for). Answers travel
as Lambda's do: JSON, an exception as ``FunctionError: Unhandled`` with ``{"errorType", "errorMessage",
"stackTrace"}``, an invocation past its Timeout as ``Sandbox.Timedout``. The handlers reach the test's S3 and
MongoDB servers through their own clients (the process's installed services).

Faults the local stack cannot produce are injected here and only here (``Engine.fault``), each named by what it
stands for: ``THROTTLE`` (Lambda refuses the invoke with ``TooManyRequestsException``, HTTP 429, before the
handler runs) and ``TIMEOUT`` (the handler runs to its end, then Lambda reports the invocation timed out: the
work is done, the answer lost). A key the store refuses is ``tests.support.s3faults.FaultyS3``'s business.

Retry waits (``IntervalSeconds``...) are recorded in ``Engine.waits`` and not slept: the engine decides them,
the tests assert them, nobody waits for them.

Where moto 5.2 differs from AWS, the difference is worked around in this module, each with the AWS behaviour
it stands in for (upstream-worthy ones are reproduced in docs/deploy.md, "What the engine tests prove"):

W1. The ASL grammar refuses an integer ``ToleratedFailurePercentage`` (``0``; AWS takes any number 0-100):
    the deployed copy says ``0.0``, the same number.
W2. ``StartExecution`` without a name gives the execution no name (``$$.Execution.Name`` is null, the ARN ends
    in ``:None``); AWS generates one. Executions started here always get a generated name (a UUID, as AWS).
W3. EventBridge has no Step Functions target: a rule's state machine target is started here with the event as
    the rule delivers it without an input transform (``StartExecution``, generated name, the event as input).
W4. The delivered envelope lacks ``account`` and carries ``time`` as epoch seconds; AWS delivers the account id
    and an ISO 8601 time. Both are restored before the execution starts.
W5. A bus whose name has a ``/`` (a partner event bus: ``aws.partner/mongodb.com/stitch.trigger/<id>``) cannot
    be addressed: moto keeps only the text after the last ``/``. Names are kept whole here, an ARN's
    ``event-bus/`` prefix alone is stripped, as AWS does.
W6. Step Functions sends no "Step Functions Execution Status Change" events: the status change of an execution
    that ends FAILED, TIMED_OUT or ABORTED is put on the default bus here, with the detail AWS documents, so the
    ``DeletionExecutionFailedRule`` and its dead-letter queue are exercised.
W7. There is no ``RedriveExecution``: ``Engine.redrive`` starts the failed step again with the input it had
    (AWS: "continues the failed execution from the unsuccessful step"), then the states after it.
W8. A Distributed Map ignores ``ToleratedFailurePercentage`` (its parser says so): not worked around; the
    threshold is checked against the definition's text and AWS's documented semantics instead.
W9. The 256 KiB limit on a state's input and output is not enforced: ``Execution.largest_state`` measures every
    input and output in the history and the tests compare it with the limit.
W10. A partner event (``PutPartnerEvents``, as the Atlas Trigger sends it) lands on the default bus; AWS puts it
    on the partner event bus associated with its source. The engine names that bus in the entry.
W11. A Distributed Map's child executions keep no history of their own (``ListExecutions`` by ``mapRunArn`` is not
    supported): a child's states are seen through the Lambda invocations it made (``Engine.invocations``,
    ``Engine.largest_answer``), and its result in the map's output.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from unittest import mock

import boto3
import yaml
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError
from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.backend import execution as sfn_execution
from moto.utilities.arns import parse_arn

from tests.support.infra import Resolver, load_handler, logical_id, resources, state_machine_definition_path

MOTO_CONFIG: Final = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
REGION: Final = "us-east-1"
ACCOUNT: Final = "123456789012"
STACK: Final = "scenestore"
#: Step Functions' limit on a state's input or output (and on an execution's input).
STATE_LIMIT: Final = 256 * 1024
#: The Atlas partner event source the engine's stack is deployed with (the sample Atlas events' source prefix).
ATLAS_SOURCE: Final = "aws.partner/mongodb.com/stitch.trigger/65a1b2c3d4e5f60718293a4b"
_PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")

THROTTLE: Final = "throttle"
TIMEOUT: Final = "timeout"


class _TooManyRequests(JsonRESTError):
    """What Lambda's Invoke API answers when the function's or the account's concurrency is used up."""

    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")


@dataclass
class Invocation:
    """One Lambda invoke as the engine made it: the function (logical id), payload, and what it answered."""

    function: str
    payload: Any
    outcome: str = "ok"  # ok | error | throttled | timeout
    answer: Any = None
    seconds: float = 0.0
    #: A timed-out invocation's own answer, which Lambda never delivered (what the lost round did).
    lost: Any = None
    size: int = 0  # bytes of the answer as delivered


@dataclass
class Fault:
    """Inject ``kind`` into the next ``times`` invocations of ``function`` for which ``when(payload)`` holds."""

    function: str
    kind: str
    times: int = 1
    when: Callable[[Any], bool] | None = None
    injected: int = 0


@dataclass
class Execution:
    """A finished execution, read back through the Step Functions API."""

    arn: str
    status: str
    input: Any
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    @property
    def cause_json(self) -> Any:
        """The cause as JSON (a Lambda error: ``{"errorType", "errorMessage", ...}``)."""
        return json.loads(self.cause or "null")

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.history if e["type"] == kind]

    def states_entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]

    @property
    def largest_state(self) -> int:
        """The largest input or output (bytes of JSON text) of any state in the history (W9; a Distributed Map's
        children keep no history in moto (W11): their task results are the Lambda answers, see
        ``Engine.largest_answer``)."""
        sizes = [0]
        for event in self.history:
            for details in event.values():
                if isinstance(details, dict):
                    sizes += [len(details[k].encode()) for k in ("input", "output") if isinstance(details.get(k), str)]
        return max(sizes)


@dataclass
class _Function:
    logical: str
    name: str
    arn: str
    timeout_s: float
    handler: Callable[..., Any]


class LambdaContext:
    """What the handlers and Powertools read from Lambda's context; the remaining time counts down."""

    def __init__(self, function: _Function, budget_s: float) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "engine"
        self._ends = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


class Engine:
    """The stack's deletion and migration paths in moto (module doc). Use as a context manager."""

    def __init__(self, *, parameters: dict[str, str] | None = None) -> None:
        self.resolver = Resolver(**{"AtlasEventSourceName": ATLAS_SOURCE, **(parameters or {})})
        self.functions: dict[str, _Function] = {}
        self.machines: dict[str, str] = {}  # logical -> ARN
        self.rules: dict[str, str] = {}  # logical -> bus name
        self.queue_url = ""
        self.invocations: list[Invocation] = []
        self.faults: list[Fault] = []
        #: Time budget per function (seconds) instead of its Timeout: a shorter Lambda, so small data takes rounds.
        self.budget: dict[str, float] = {}
        #: Per function, a change made to each answer before Lambda delivers it (a test's worst case, named there).
        self.answers: dict[str, Callable[[Any], Any]] = {}
        #: Per function, a stand-in answering instead of the handler (a test's worst case, named there).
        self.stand_ins: dict[str, Callable[[Any], Any]] = {}
        self.waits: list[float] = []
        self.started_by_rules: list[tuple[str, str]] = []  # (rule, execution ARN)
        self._lock = threading.Lock()
        self._stack = ExitStack()

    # -- life cycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> Engine:
        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))  # type: ignore[arg-type]
        # moto logs every failed state with its whole parse tree; the tests read the history instead.
        quiet = logging.getLogger("moto.stepfunctions.parser")
        self._stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.CRITICAL)
        engine = self

        def invoke(backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response: Any) -> bytes:
            return engine._invoke(function_name, body, response)

        def wait(seconds: float) -> None:
            engine.waits.append(seconds)

        def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
            engine._deliver(rule, event, transform_input)

        def terminated(comm: Any) -> None:
            original_terminated(comm)
            engine._status_changed(comm.execution)

        original_terminated = sfn_execution.BaseExecutionWorkerCommunication.terminated
        self._original_send = events_models.Rule.send_to_targets
        for patch in (
            mock.patch.object(LambdaSimpleBackend, "invoke", invoke),
            mock.patch.object(retrier_decl, "time", mock.Mock(sleep=wait)),
            mock.patch.object(events_models.Rule, "send_to_targets", send_to_targets),
            mock.patch.object(events_models.EventsBackend, "_normalize_event_bus_arn", _bus_name),  # W5
            mock.patch.object(sfn_execution.BaseExecutionWorkerCommunication, "terminated", terminated),
        ):
            self._stack.enter_context(patch)
        self._deploy()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    # -- deploying the template ---------------------------------------------------------------------------
    def _deploy(self) -> None:
        iam = self.client("iam")
        role = iam.create_role(RoleName=f"{STACK}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.role = role
        lam, sfn, events, sqs = (self.client(s) for s in ("lambda", "stepfunctions", "events", "sqs"))
        symbols: dict[str, str] = {"getatt:DeletionEventsRole.Arn": role}
        for logical in self._called_functions():
            props = resources()[logical]["Properties"]
            name = f"{STACK}-{logical}"
            arn = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": _empty_zip()},
                Timeout=int(props.get("Timeout", 3)),
            )["FunctionArn"]
            self.functions[name] = _Function(logical, name, arn, float(props["Timeout"]), load_handler(logical))
            symbols[f"getatt:{logical}.Arn"] = arn
        for logical in resources("AWS::Serverless::StateMachine"):
            props = resources()[logical]["Properties"]
            substitutions = self.resolver.resolve(props["DefinitionSubstitutions"])
            values = {key: symbols.get(str(value), str(value)) for key, value in substitutions.items()}
            definition = load_definition(logical, values)
            name = self.resolver.resolve(props.get("Name")) or f"{STACK}-{logical}"
            arn = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)[
                "stateMachineArn"
            ]
            self.machines[logical] = arn
            symbols[f"ref:{logical}"] = arn
        self.queue_url = sqs.create_queue(QueueName=f"{STACK}-DeletionDeadLetterQueue")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        symbols["getatt:DeletionDeadLetterQueue.Arn"] = queue_arn
        for logical, res in resources("AWS::Events::EventBus").items():
            if self.resolver.exists(logical):
                bus_props = self.resolver.resolve(res["Properties"])
                if bus_props.get("EventSourceName"):  # what the Atlas Trigger does when it is created
                    events.create_partner_event_source(Name=bus_props["EventSourceName"], Account=ACCOUNT)
                events.create_event_bus(**{k: v for k, v in bus_props.items() if k in ("Name", "EventSourceName")})
                symbols[f"ref:{logical}"] = bus_props["Name"]
        for logical, res in resources("AWS::Events::Rule").items():
            if not self.resolver.exists(logical):
                continue
            props = _deployed(self.resolver.resolve(res["Properties"]), symbols)
            bus = props.get("EventBusName", "default")
            events.put_rule(Name=logical, EventPattern=json.dumps(props["EventPattern"]), EventBusName=bus)
            events.put_targets(Rule=logical, EventBusName=bus, Targets=props["Targets"])
            self.rules[logical] = bus

    def _called_functions(self) -> list[str]:
        called: set[str] = set()
        for res in resources("AWS::Serverless::StateMachine").values():
            for value in self.resolver.resolve(res["Properties"]["DefinitionSubstitutions"]).values():
                if isinstance(value, str) and value.startswith("getatt:"):
                    called.add(logical_id(value))
        return sorted(called)

    # -- Lambda ---------------------------------------------------------------------------------------------
    def fault(self, function: str, kind: str, *, times: int = 1, when: Callable[[Any], bool] | None = None) -> Fault:
        """Inject ``THROTTLE`` or ``TIMEOUT`` into ``function``'s next ``times`` invocations (module doc)."""
        assert kind in (THROTTLE, TIMEOUT)
        fault = Fault(function, kind, times, when)
        self.faults.append(fault)
        return fault

    def calls(self, function: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == function]

    def largest_answer(self, function: str) -> int:
        """The largest answer ``function`` delivered: a task's result, before its ``ResultSelector``."""
        return max((i.size for i in self.calls(function)), default=0)

    def _take_fault(self, function: str, payload: Any) -> str | None:
        for fault in self.faults:
            if (
                fault.function == function
                and fault.injected < fault.times
                and (fault.when is None or fault.when(payload))
            ):
                fault.injected += 1
                return fault.kind
        return None

    def _invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        function = self.functions[function_name.rsplit(":", 1)[-1] if ":function:" in function_name else function_name]
        payload = json.loads(body) if body else {}
        with self._lock:  # one process plays every execution environment: invocations take turns
            call = Invocation(function.logical, payload)
            self.invocations.append(call)
            fault = self._take_fault(function.logical, payload)
            if fault == THROTTLE:
                call.outcome = "throttled"
                raise _TooManyRequests()
            budget = self.budget.get(function.logical, function.timeout_s)
            context = LambdaContext(function, budget)
            started = time.monotonic()
            try:
                stand_in = self.stand_ins.get(function.logical)
                answer: Any = stand_in(payload) if stand_in else function.handler(payload, context)
                if function.logical in self.answers:
                    answer = self.answers[function.logical](answer)
                text = json.dumps(answer)
                call.answer = answer
            except Exception as exc:
                call.outcome, call.answer = "error", {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                text = json.dumps(
                    {
                        **call.answer,
                        "requestId": context.aws_request_id,
                        "stackTrace": traceback.format_tb(exc.__traceback__),
                    }
                )
                response_headers["x-amz-function-error"] = "Unhandled"
            finally:
                call.seconds = time.monotonic() - started
                from scenestore.observability import logger

                logger.clear_state()  # the next invocation is another request
            if fault == TIMEOUT or call.seconds > budget:
                call.outcome, call.lost = "timeout", call.answer
                call.answer = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {context.aws_request_id} Error: "
                    f"Task timed out after {budget:.2f} seconds",
                }
                response_headers["x-amz-function-error"] = "Unhandled"
                text = json.dumps(call.answer)
            call.size = len(text.encode())
            return text.encode()

    # -- Step Functions -------------------------------------------------------------------------------------
    def start(self, machine: str, payload: Any, *, name: str | None = None) -> str:
        """Start ``machine`` (a logical id) with ``payload``; a generated name unless one is given (W2)."""
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.machines[machine], name=name or str(uuid.uuid4()), input=json.dumps(payload)
            )["executionArn"]
        )

    def run(self, machine: str, payload: Any, *, name: str | None = None, timeout: float = 120) -> Execution:
        return self.wait(self.start(machine, payload, name=name), timeout=timeout)

    def wait(self, arn: str, *, timeout: float = 120) -> Execution:
        sfn = self.client("stepfunctions")
        ends = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > ends:
                raise AssertionError(f"{arn} still running after {timeout}s")
            time.sleep(0.02)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return Execution(
            arn=arn,
            status=described["status"],
            input=json.loads(described.get("input") or "null"),
            output=json.loads(described["output"]) if described.get("output") else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
        )

    def redrive(self, arn: str) -> str:
        """W7: the failed step of a failed execution started again with the input it had, then the states after
        it (AWS's ``RedriveExecution``). Returns the new execution's ARN."""
        sfn = self.client("stepfunctions")
        described = sfn.describe_execution(executionArn=arn)
        assert described["status"] in ("FAILED", "TIMED_OUT", "ABORTED"), described["status"]
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        entered = [e["stateEnteredEventDetails"] for e in history if "stateEnteredEventDetails" in e]
        failed = entered[-1]
        machine = next(logical for logical, m in self.machines.items() if m == described["stateMachineArn"])
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=described["stateMachineArn"])["definition"])
        definition["StartAt"] = failed["name"]
        name = f"{machine}-redrive-{uuid.uuid4().hex[:8]}"
        redriven = sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=self.role)
        return str(
            sfn.start_execution(
                stateMachineArn=redriven["stateMachineArn"], name=str(uuid.uuid4()), input=failed["input"]
            )["executionArn"]
        )

    # -- EventBridge ----------------------------------------------------------------------------------------
    def put_event(self, event: dict[str, Any]) -> list[str]:
        """Send ``event`` (a sample: source, detail-type, detail) as its producer does, and return the executions
        the rules started: the app's with ``PutEvents`` on ``AppEventBusName``, Atlas's with ``PutPartnerEvents``
        from the partner event source the stack's bus is associated with (W10)."""
        before = len(self.started_by_rules)
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []),
        }
        if event["source"].startswith("aws.partner/"):
            from moto.events.models import events_backends

            assert event["source"] == self.resolver.parameters["AtlasEventSourceName"], "not this stack's trigger"
            # W10: moto puts a partner event on the default bus; AWS on the partner event bus of its source.
            events_backends[ACCOUNT][REGION].put_partner_events([{**entry, "EventBusName": event["source"]}])
        else:
            entry["EventBusName"] = self.resolver.parameters["AppEventBusName"]
            answer = self.client("events").put_events(Entries=[entry])
            assert answer["FailedEntryCount"] == 0, answer
        return [arn for _, arn in self.started_by_rules[before:]]

    def _deliver(self, rule: Any, event: dict[str, Any], transform_input: bool) -> None:
        if not rule.event_pattern.matches_event(event):
            return
        machines = [t for t in rule.targets if parse_arn(t["Arn"]).service == "states"]
        others = [t for t in rule.targets if t not in machines]
        for target in machines:  # W3: a state machine target, without an input transform
            delivered = EventTemplateParser.parse(input_template=None, input_paths_map={}, event=event)
            delivered = _as_aws_delivers(delivered, event)
            execution = _sfn_backend().start_execution(
                target["Arn"], name=str(uuid.uuid4()), execution_input=json.dumps(delivered)
            )
            self.started_by_rules.append((rule.name, execution.execution_arn))
        if others:
            saved, rule.targets = rule.targets, others
            try:
                self._original_send(rule, event, transform_input)
            finally:
                rule.targets = saved

    def _status_changed(self, execution: Any) -> None:
        """W6: an execution that ended FAILED, TIMED_OUT or ABORTED announces it on the default bus."""
        status = str(getattr(execution.exec_status, "value", execution.exec_status))
        if status not in ("FAILED", "TIMED_OUT", "ABORTED"):
            return
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": int(execution.start_date.timestamp() * 1000),
            "stopDate": int(time.time() * 1000),
            "input": execution.execution_input,
            "output": None,
            "error": execution.error,
            "cause": execution.cause,
        }
        from moto.events.models import events_backends

        events_backends[ACCOUNT][REGION].put_events(
            [
                {
                    "Source": "aws.states",
                    "DetailType": "Step Functions Execution Status Change",
                    "Detail": json.dumps(detail),
                    "Resources": [execution.exec_arn],
                }
            ]
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """The messages in the deletion dead-letter queue, as ``aws sqs receive-message`` gives them."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=900, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return found
            found += got


def load_definition(logical: str, substitutions: dict[str, str]) -> dict[str, Any]:
    """The state machine's ASL file with ``${Name}`` replaced as CloudFormation's ``DefinitionSubstitutions``
    does (plain text, before the YAML is read), then W1 applied."""
    path = state_machine_definition_path(logical)
    text = path.read_text()
    missing = set(_PLACEHOLDER.findall(text)) - set(substitutions)
    assert not missing, f"{path.name}: no substitution for {sorted(missing)}"
    definition = yaml.safe_load(_PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text))
    for state in _states(definition):
        if isinstance(state.get("ToleratedFailurePercentage"), int):  # W1
            state["ToleratedFailurePercentage"] = float(state["ToleratedFailurePercentage"])
    return definition  # type: ignore[no-any-return]


def placeholders(logical: str) -> set[str]:
    return set(_PLACEHOLDER.findall(state_machine_definition_path(logical).read_text()))


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in definition.get("States", {}).values():
        yield state
        for nested in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(nested), dict):
                yield from _states(state[nested])


def _sfn_backend() -> Any:
    """moto's Step Functions backend that executes (the one its API uses with ``execute_state_machine``)."""
    from moto.stepfunctions.responses import get_backend

    return get_backend(ACCOUNT, REGION)


def _bus_name(backend: Any, bus: str | None) -> str:
    """W5: a bus name or ARN to the bus's name, which may itself contain ``/``."""
    if bus is None:
        return "default"
    return bus.split(":event-bus/", 1)[1] if bus.startswith("arn:") and ":event-bus/" in bus else bus


def _as_aws_delivers(delivered: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """W4: the envelope as EventBridge delivers it: with ``account``, and ``time`` in ISO 8601."""
    moment = original.get("time")
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {"version": "0", "id": original.get("id"), "detail-type": original.get("detail-type")}
    out.update(source=original.get("source"), account=original.get("account") or ACCOUNT, time=moment)
    out.update(region=original.get("region"), resources=delivered.get("resources", []), detail=delivered["detail"])
    return out


def _deployed(value: Any, symbols: dict[str, str]) -> Any:
    """``value`` with every resource symbol of ``tests.support.infra.Resolver`` (``ref:X``, ``getatt:X.Arn``)
    replaced by what the engine deployed for it."""
    if isinstance(value, dict):
        return {key: _deployed(item, symbols) for key, item in value.items()}
    if isinstance(value, list):
        return [_deployed(item, symbols) for item in value]
    if isinstance(value, str) and value.startswith(("ref:", "getatt:")):
        return symbols[value]
    return value


def _empty_zip() -> bytes:
    """The function's code package: empty, since the engine answers its invokes with the handler in this repo."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()
