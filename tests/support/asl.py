"""A small local interpreter for the Amazon States Language: exactly what our two state machines use.

It reads the ASL files the template deploys (``infra/deletion.asl.yaml``, ``infra/migration.asl.yaml``),
substitutes ``${Name}`` placeholders the way CloudFormation's ``DefinitionSubstitutions`` does (plain text),
and walks the states, invoking the real Lambda handlers in-process. Implemented, and nothing more:

- states: Task (``arn:aws:states:::lambda:invoke`` with FunctionName and Payload), Pass (Parameters),
  Choice (``BooleanEquals`` / ``NumericGreaterThan`` on a Variable, Default), Map (DISTRIBUTED, STANDARD
  children, ItemsPath, ItemSelector, MaxConcurrency threads, ToleratedFailurePercentage), Succeed, Fail
  (Error, CausePath);
- Parameters / ItemSelector / ResultSelector with ``.$`` keys, ResultPath and OutputPath; paths are
  ``$.a.b`` on the state's data and ``$$.Execution.*`` / ``$$.Map.Item.*`` on the context object;
- the intrinsics ``States.JsonMerge`` (shallow) and ``States.JsonToString``;
- Retry with exponential backoff and MaxDelaySeconds (delays are recorded without jitter; sleeping is
  delegated); ``TimeoutSeconds`` on the machine is accepted and never reached (the simulator has no clock).

Honesty over coverage: ``validate`` raises ``ASLError`` for every field, state type, resource, comparator,
path form or intrinsic outside that list, so a definition can never use a feature this simulator would
silently get wrong. As in AWS, a path that does not exist is a ``States.Runtime`` error that no Retry
handles, and payloads go through JSON as Lambda's do (256 KiB at most).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"
PAYLOAD_LIMIT: Final = 256 * 1024
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")
_PATH = re.compile(r"\$\$?(\.[A-Za-z0-9_\-]+)*")
_INTRINSIC = re.compile(r"(States\.[A-Za-z]+)\((.*)\)")

Function = Callable[[Any], Any]


class ASLError(Exception):
    """The definition itself is wrong or uses something this simulator does not implement."""


class StatesError(Exception):
    """A runtime error with a Step Functions error name (``Lambda.TooManyRequestsException``, ``States.Runtime``)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


# -- loading and static validation -------------------------------------------------------------------------------


def load_definition(path: Path, substitutions: Mapping[str, object]) -> dict[str, Any]:
    """Read an ASL file, substitute ``${Name}`` as CloudFormation does, parse and validate it."""
    text = path.read_text()
    missing = set(_PLACEHOLDER.findall(text)) - set(substitutions)
    if missing:
        raise ASLError(f"{path.name}: no substitution for {sorted(missing)}")
    definition = yaml.safe_load(_PLACEHOLDER.sub(lambda m: str(substitutions[m.group(1)]), text))
    validate(definition)
    return definition


def placeholders(path: Path) -> set[str]:
    return set(_PLACEHOLDER.findall(path.read_text()))


_FLOW = {"Type", "Comment", "Next", "End"}
_FIELDS: Final[dict[str, set[str]]] = {
    "Task": _FLOW | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry"},
    "Pass": _FLOW | {"Parameters", "OutputPath"},
    "Choice": {"Type", "Comment", "Choices", "Default", "OutputPath"},
    "Map": _FLOW
    | {"Label", "ItemsPath", "ItemSelector", "MaxConcurrency", "ToleratedFailurePercentage", "ItemProcessor"}
    | {"ResultPath"},
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "Comment", "Error", "CausePath"},
}
_RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}
_COMPARATORS = {"BooleanEquals", "NumericGreaterThan"}
_DISTRIBUTED = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def validate(definition: Any, *, where: str = "") -> None:
    """Reject what AWS would reject structurally and everything this simulator does not implement."""
    label = where or "definition"
    if not isinstance(definition, dict):
        raise ASLError(f"{label} is not an object")
    allowed = {"Comment", "StartAt", "States"} | ({"ProcessorConfig"} if where else {"TimeoutSeconds"})
    unknown = set(definition) - allowed
    if unknown:
        raise ASLError(f"{label}: unsupported top-level fields {sorted(unknown)}")
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise ASLError(f"{label}: States must be a non-empty object")
    if definition.get("StartAt") not in states:
        raise ASLError(f"{label}: StartAt {definition.get('StartAt')!r} is not a state")
    for name, state in states.items():
        _validate_state(f"{where}{name}", state, states)
    unreachable = set(states) - _reachable(definition["StartAt"], states)
    if unreachable:
        raise ASLError(f"{label}: unreachable states {sorted(unreachable)}")


def _validate_state(name: str, state: Any, states: Mapping[str, Any]) -> None:
    if not isinstance(state, dict) or state.get("Type") not in _FIELDS:
        raise ASLError(f"state {name}: unsupported Type {state.get('Type') if isinstance(state, dict) else state!r}")
    kind = state["Type"]
    unknown = set(state) - _FIELDS[kind]
    if unknown:
        raise ASLError(f"state {name} ({kind}): unsupported fields {sorted(unknown)}")
    if "Next" in _FIELDS[kind]:
        if ("Next" in state) == bool(state.get("End")):
            raise ASLError(f"state {name}: exactly one of Next or End: true")
        if "Next" in state and state["Next"] not in states:
            raise ASLError(f"state {name}: Next {state['Next']!r} is not a state")
    for key in ("ResultPath", "OutputPath", "ItemsPath"):
        if key in state:
            _validate_path(name, state[key], context=False)
    for key in ("Parameters", "ResultSelector", "ItemSelector"):
        if key in state:
            _validate_template(name, state[key])
    for retrier in state.get("Retry", []):
        _validate_retrier(name, retrier)
    if kind == "Task" and state.get("Resource") != LAMBDA_INVOKE:
        raise ASLError(f"state {name}: unsupported Task Resource {state.get('Resource')!r} (only {LAMBDA_INVOKE})")
    parameters = state.get("Parameters")
    invoke_ok = isinstance(parameters, dict) and "FunctionName" in parameters and set(parameters) <= _INVOKE
    if kind == "Task" and not invoke_ok:
        raise ASLError(f"state {name}: lambda:invoke takes Parameters FunctionName and Payload only")
    if kind == "Fail" and "CausePath" in state:
        _validate_expression(name, state["CausePath"])
    if kind == "Choice":
        if not state.get("Choices"):
            raise ASLError(f"state {name}: Choice needs Choices")
        for rule in state["Choices"]:
            comparators = set(rule) - {"Variable", "Next"} if isinstance(rule, dict) else set()
            if not isinstance(rule, dict) or "Variable" not in rule or len(comparators) != 1:
                raise ASLError(f"state {name}: unsupported Choice rule {rule!r}")
            if not comparators <= _COMPARATORS:
                raise ASLError(f"state {name}: unsupported Choice rule {rule!r} (only {sorted(_COMPARATORS)})")
            _validate_path(name, rule["Variable"], context=False)
            if rule.get("Next") not in states:
                raise ASLError(f"state {name}: Choice Next {rule.get('Next')!r} is not a state")
        if "Default" in state and state["Default"] not in states:
            raise ASLError(f"state {name}: Default {state['Default']!r} is not a state")
    if kind == "Map":
        processor = state.get("ItemProcessor")
        if not isinstance(processor, dict) or processor.get("ProcessorConfig") != _DISTRIBUTED:
            raise ASLError(f"state {name}: only a DISTRIBUTED Map with STANDARD children ({_DISTRIBUTED})")
        if not isinstance(state.get("MaxConcurrency", 0), int):
            raise ASLError(f"state {name}: MaxConcurrency must be an integer (substitution left a string?)")
        validate(processor, where=f"{name}/")


_INVOKE = {"FunctionName", "Payload", "Payload.$"}


def _validate_retrier(name: str, retrier: Any) -> None:
    if not isinstance(retrier, dict) or set(retrier) - _RETRY_FIELDS or not retrier.get("ErrorEquals"):
        raise ASLError(f"state {name}: bad Retry entry {retrier!r}")
    special = {e for e in retrier["ErrorEquals"] if e.startswith("States.")} - {"States.TaskFailed"}
    if special:
        raise ASLError(f"state {name}: Retry on {sorted(special)} is not simulated (only States.TaskFailed)")
    if retrier.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
        raise ASLError(f"state {name}: JitterStrategy must be FULL or NONE")


def _validate_template(name: str, template: Any) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                _validate_expression(name, value)
            else:
                _validate_template(name, value)
    elif isinstance(template, list):
        for item in template:
            _validate_template(name, item)


def _validate_expression(name: str, expression: Any) -> None:
    """A ``.$`` value: a path, or one of our intrinsics over paths and true/false/null."""
    if not isinstance(expression, str):
        raise ASLError(f"state {name}: a .$ value must be a string path or intrinsic, not {expression!r}")
    match = _INTRINSIC.fullmatch(expression)
    if match is None:
        _validate_path(name, expression, context=True)
        return
    if match.group(1) not in INTRINSICS:
        raise ASLError(f"state {name}: unsupported intrinsic {match.group(1)} (only {sorted(INTRINSICS)})")
    for argument in _arguments(match.group(2)):
        if argument not in ("true", "false", "null"):
            _validate_path(name, argument, context=True)


def _validate_path(name: str, path: Any, *, context: bool) -> None:
    if not isinstance(path, str) or not _PATH.fullmatch(path) or (path.startswith("$$") and not context):
        raise ASLError(f"state {name}: unsupported path {path!r} (only $, $.a.b and, in .$ values, $$.a.b)")


def _reachable(start: str, states: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        nexts = [state.get("Next"), state.get("Default"), *(rule.get("Next") for rule in state.get("Choices", []))]
        todo.extend(n for n in nexts if n)
    return seen


# -- paths, intrinsic functions, templates -------------------------------------------------------------------------

_MISSING = object()


def read_path(data: Any, path: str, context: Any = None) -> Any:
    """``$.a.b`` on ``data``, ``$$.Execution.Name`` on ``context``; a missing path is ``States.Runtime``."""
    if not _PATH.fullmatch(path):
        raise ASLError(f"unsupported path {path!r} (only $, $.a.b and $$.a.b)")
    value = context if path.startswith("$$") else data
    for key in path.lstrip("$").split(".")[1:]:
        if not isinstance(value, dict) or key not in value:
            raise StatesError("States.Runtime", f"the JSONPath {path!r} could not be found in the input")
        value = value[key]
    return value


def _set_path(data: Any, path: str, value: Any) -> Any:
    """ResultPath: ``value`` at ``path`` in a copy of ``data`` (``$`` replaces it)."""
    if path == "$":
        return value
    if not isinstance(data, dict):
        raise StatesError("States.Runtime", f"ResultPath {path!r} needs an object input, got {type(data).__name__}")
    result = _json_copy(data)
    node = result
    *parents, last = path.split(".")[1:]
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value
    return result


def _json_merge(left: Any, right: Any, deep: Any) -> Any:
    if deep is not False:
        raise StatesError("States.Runtime", "States.JsonMerge supports only shallow mode (false)")
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise StatesError("States.Runtime", "States.JsonMerge takes two objects")
    return {**left, **right}


INTRINSICS: Final[dict[str, Callable[..., Any]]] = {
    "States.JsonMerge": _json_merge,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
}


def _arguments(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")] if text.strip() else []


def evaluate_intrinsic(expression: str, data: Any, context: Any) -> Any:
    """One of ``INTRINSICS`` applied to paths and ``true``/``false``/``null``; anything else is an ASLError."""
    _validate_expression("intrinsic", expression)
    match = _INTRINSIC.fullmatch(expression)
    if match is None:
        raise ASLError(f"not an intrinsic: {expression!r}")
    args = [
        json.loads(arg) if arg in ("true", "false", "null") else read_path(data, arg, context)
        for arg in _arguments(match.group(2))
    ]
    try:
        return INTRINSICS[match.group(1)](*args)
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError("States.Runtime", f"{match.group(1)}: {exc}") from None


def _evaluate(expression: str, data: Any, context: Any) -> Any:
    if expression.startswith("States."):
        return evaluate_intrinsic(expression, data, context)
    return read_path(data, expression, context)


def render(template: Any, data: Any, context: Any) -> Any:
    """Parameters / ItemSelector / ResultSelector: ``key.$`` values are paths or intrinsics, others literal."""
    if isinstance(template, dict):
        return {
            key[:-2] if key.endswith(".$") else key: (
                _evaluate(value, data, context) if key.endswith(".$") else render(value, data, context)
            )
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [render(item, data, context) for item in template]
    return template


# -- execution -----------------------------------------------------------------------------------------------------


@dataclass
class Event:
    """One step of the history: which state ran, with what input and output, or which error."""

    state: str
    type: str
    input: Any = None
    output: Any = None
    error: str | None = None
    retry_delay: float | None = None


@dataclass
class Execution:
    name: str
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    history: list[Event] = field(default_factory=list)
    children: list[Execution] = field(default_factory=list)

    def states_entered(self) -> list[str]:
        return [event.state for event in self.history if event.error is None and event.retry_delay is None]

    def all_events(self) -> list[Event]:
        events = list(self.history)
        for child in self.children:
            events.extend(child.all_events())
        return events


class _Failed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error, self.cause = error, cause


class StateMachine:
    """Runs a validated definition; ``functions`` maps each FunctionName to a callable(payload)."""

    def __init__(
        self,
        definition: Mapping[str, Any],
        functions: Mapping[str, Function],
        *,
        sleep: Callable[[float], None] = lambda seconds: None,
        max_transitions: int = 10_000,
        name: str = "scenestore",
    ) -> None:
        validate(definition)
        self.definition = definition
        self.functions = dict(functions)
        self.sleep = sleep
        self.max_transitions = max_transitions
        self.name = name
        self._lock = threading.Lock()
        self.invocations: list[tuple[str, Any]] = []
        self.responses: list[tuple[str, Any]] = []

    def run(self, execution_input: Any, *, execution_name: str | None = None) -> Execution:
        execution = Execution(name=execution_name or uuid.uuid4().hex)
        context = {
            "Execution": {
                "Id": f"arn:aws:states:us-east-1:123456789012:execution:{self.name}:{execution.name}",
                "Name": execution.name,
                "Input": execution_input,
                "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        }
        self._run_into(execution, self.definition, _json_copy(execution_input), context)
        return execution

    def _run_into(
        self, execution: Execution, definition: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> None:
        try:
            execution.output = self._walk(execution, definition, data, context)
            execution.status = "SUCCEEDED"
        except (_Failed, StatesError) as failed:
            execution.status, execution.error, execution.cause = "FAILED", failed.error, failed.cause

    def _walk(self, execution: Execution, definition: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        states, name = definition["States"], definition["StartAt"]
        for _ in range(self.max_transitions):
            state = states[name]
            event = Event(state=name, type=state["Type"], input=_json_copy(data))
            execution.history.append(event)
            try:
                data, following = self._step(execution, name, state, data, context)
            except StatesError as exc:
                event.error = exc.error
                raise _Failed(exc.error, exc.cause) from None
            _check_size(data, name)
            event.output = _json_copy(data)
            if following is None:
                return data
            name = following
        raise _Failed("Simulator.RunawayLoop", f"more than {self.max_transitions} transitions")

    def _step(
        self, execution: Execution, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        if kind == "Fail":
            cause = _evaluate(state["CausePath"], data, context) if "CausePath" in state else ""
            raise _Failed(str(state.get("Error", "States.Fail")), str(cause))
        if kind == "Succeed":
            return data, None
        if kind == "Choice":
            return _output(state, data, context), self._choose(name, state, data, context)
        if kind == "Pass":
            result = render(state["Parameters"], data, context) if "Parameters" in state else data
            return _output(state, result, context), _next(state)
        if kind == "Task":
            result = self._with_retry(execution, name, state, lambda: self._task(state, data, context))
        else:
            result = self._map(execution, state, data, context)
        if "ResultSelector" in state:
            result = render(state["ResultSelector"], result, context)
        data = _set_path(data, state["ResultPath"], result) if "ResultPath" in state else result
        return data, _next(state)

    def _task(self, state: Mapping[str, Any], data: Any, context: Any) -> Any:
        params = render(state["Parameters"], data, context)
        payload = self._invoke(params["FunctionName"], params.get("Payload", data))
        return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}

    def _invoke(self, function_name: str, payload: Any) -> Any:
        function = self.functions.get(function_name)
        if function is None:
            raise ASLError(f"no function registered for {function_name!r} (known: {sorted(self.functions)})")
        request = _json_copy(payload)
        _check_size(request, function_name)
        with self._lock:
            self.invocations.append((function_name, request))
        try:
            response = function(request)
        except StatesError:
            raise
        except Exception as exc:  # what Lambda reports for an unhandled exception: errorType = class name
            error_type = type(exc).__name__
            raise StatesError(error_type, json.dumps({"errorMessage": str(exc), "errorType": error_type})) from exc
        try:
            payload = _json_copy(response)
        except (TypeError, ValueError) as exc:
            raise StatesError("Lambda.Unknown", f"{function_name} returned something that is not JSON: {exc}") from exc
        with self._lock:
            self.responses.append((function_name, payload))
        return payload

    def _with_retry(self, execution: Execution, name: str, state: Mapping[str, Any], work: Callable[[], Any]) -> Any:
        attempts: dict[int, int] = {}
        while True:
            try:
                return work()
            except StatesError as exc:
                index, retrier = _matching(state.get("Retry", []), exc.error)
                if retrier is None or attempts.get(index, 0) >= retrier.get("MaxAttempts", 3):
                    raise
                done = attempts[index] = attempts.get(index, 0) + 1
                delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** (done - 1)
                if "MaxDelaySeconds" in retrier:
                    delay = min(delay, retrier["MaxDelaySeconds"])
                execution.history.append(Event(state=name, type="Retry", error=exc.error, retry_delay=delay))
                self.sleep(delay)

    def _choose(self, name: str, state: Mapping[str, Any], data: Any, context: Any) -> str:
        for rule in state["Choices"]:
            value = read_path(data, rule["Variable"], context)
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if "BooleanEquals" in rule and isinstance(value, bool) and value == rule["BooleanEquals"]:
                return str(rule["Next"])
            if "NumericGreaterThan" in rule and is_number and value > rule["NumericGreaterThan"]:
                return str(rule["Next"])
        if "Default" in state:
            return str(state["Default"])
        raise StatesError("States.NoChoiceMatched", f"no Choice rule matched in {name}")

    def _map(self, execution: Execution, state: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        items = read_path(data, state.get("ItemsPath", "$"), context)
        if not isinstance(items, list):
            raise StatesError("States.Runtime", "the Map state's items are not an array")
        processor = state["ItemProcessor"]
        children = [Execution(name=f"{execution.name}/{index}") for index in range(len(items))]

        def run_item(index: int) -> None:
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": items[index]}}}
            item = render(state["ItemSelector"], data, item_context) if "ItemSelector" in state else items[index]
            child_context = {"Execution": {**context["Execution"], "Name": children[index].name, "Input": item}}
            self._run_into(children[index], processor, _json_copy(item), child_context)

        with ThreadPoolExecutor(max_workers=state.get("MaxConcurrency", 0) or max(1, len(items))) as pool:
            list(pool.map(run_item, range(len(items))))
        execution.children.extend(children)
        failed = [child for child in children if child.status != "SUCCEEDED"]
        if failed and 100.0 * len(failed) / len(children) > state.get("ToleratedFailurePercentage", 0):
            causes = "; ".join(f"{child.name}: {child.error}" for child in failed)
            raise StatesError("States.ExceedToleratedFailureThreshold", causes)
        return [child.output for child in children]


def _output(state: Mapping[str, Any], data: Any, context: Any) -> Any:
    return read_path(data, state.get("OutputPath", "$"), context)


def _next(state: Mapping[str, Any]) -> str | None:
    return None if state.get("End") else state["Next"]


def _matching(entries: list[dict[str, Any]], error: str) -> tuple[int, dict[str, Any] | None]:
    """The first Retry entry handling ``error``; States.Runtime and data-limit errors are never retried."""
    if error in ("States.Runtime", "States.DataLimitExceeded"):
        return -1, None
    for index, entry in enumerate(entries):
        if error in entry["ErrorEquals"] or "States.TaskFailed" in entry["ErrorEquals"]:
            return index, entry
    return -1, None


def _json_copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_size(value: Any, where: str) -> None:
    if len(json.dumps(value)) > PAYLOAD_LIMIT:
        raise StatesError("States.DataLimitExceeded", f"{where}: payload over {PAYLOAD_LIMIT} bytes")
