"""A small local interpreter for the Amazon States Language, enough to run our state machines in tests.

It reads the same ASL files the template deploys (``infra/*.asl.yaml``), substitutes ``${Name}`` placeholders
the way CloudFormation's ``DefinitionSubstitutions`` does (plain text), and walks the states, invoking the real
Lambda handlers in-process. Supported: Task (``arn:aws:states:::lambda:invoke`` and plain function ARNs),
Choice, Map (inline and DISTRIBUTED fed from the state input, with MaxConcurrency threads), Pass, Wait,
Succeed, Fail; InputPath / Parameters / ItemSelector / ResultSelector / ResultPath / OutputPath with ``.$``
keys, ``$$`` context paths and the intrinsic functions listed in ``INTRINSICS``; Retry (backoff recorded,
sleeping delegated) and Catch.

Honesty over coverage: ``validate`` rejects every field it does not implement, so a definition can never use
a feature this simulator silently ignores; a path that does not exist is a ``States.Runtime`` error, which
neither Retry nor Catch can handle (as in AWS); payloads go through JSON like Lambda's do.
"""

from __future__ import annotations

import copy
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
    used = set(_PLACEHOLDER.findall(text))
    missing = used - set(substitutions)
    if missing:
        raise ASLError(f"{path.name}: no substitution for {sorted(missing)}")
    text = _PLACEHOLDER.sub(lambda m: str(substitutions[m.group(1)]), text)
    definition = yaml.safe_load(text)
    validate(definition)
    return definition


def placeholders(path: Path) -> set[str]:
    return set(_PLACEHOLDER.findall(path.read_text()))


_COMMON = {"Type", "Comment"}
_IO = {"InputPath", "OutputPath"}
_FLOW = {"Next", "End"}
_FIELDS: Final[dict[str, set[str]]] = {
    "Task": _COMMON
    | _IO
    | _FLOW
    | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "TimeoutSeconds"},
    "Pass": _COMMON | _IO | _FLOW | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _IO | _FLOW | {"Seconds", "SecondsPath"},
    "Succeed": _COMMON,  # the ASL spec also allows InputPath/OutputPath; the Step Functions schema does not
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Map": _COMMON
    | _IO
    | _FLOW
    | {
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "Iterator",
        "ItemProcessor",
        "MaxConcurrency",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        "Label",
    },
}
_RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}
_CATCH_FIELDS = {"ErrorEquals", "Next", "ResultPath"}
_COMPARATORS = {
    "StringEquals",
    "StringEqualsPath",
    "NumericEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "BooleanEquals",
    "IsPresent",
    "IsNull",
    "IsBoolean",
    "IsNumeric",
    "IsString",
}


def validate(definition: Any, *, where: str = "") -> None:
    """Reject what AWS would reject structurally and everything this simulator does not implement."""
    if not isinstance(definition, dict):
        raise ASLError(f"{where or 'definition'} is not an object")
    unknown = set(definition) - {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "ProcessorConfig"}
    if unknown:
        raise ASLError(f"{where or 'definition'}: unsupported top-level fields {sorted(unknown)}")
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise ASLError(f"{where or 'definition'}: States must be a non-empty object")
    if definition.get("StartAt") not in states:
        raise ASLError(f"{where or 'definition'}: StartAt {definition.get('StartAt')!r} is not a state")
    for name, state in states.items():
        _validate_state(f"{where}{name}", state, states)
    reachable = _reachable(definition["StartAt"], states)
    unreachable = set(states) - reachable
    if unreachable:
        raise ASLError(f"{where or 'definition'}: unreachable states {sorted(unreachable)}")


def _validate_state(name: str, state: Any, states: Mapping[str, Any]) -> None:
    if not isinstance(state, dict) or state.get("Type") not in _FIELDS:
        raise ASLError(f"state {name}: unsupported Type {state.get('Type') if isinstance(state, dict) else state!r}")
    kind = state["Type"]
    unknown = set(state) - _FIELDS[kind]
    if unknown:
        raise ASLError(f"state {name} ({kind}): unsupported fields {sorted(unknown)}")
    if kind in ("Task", "Pass", "Wait", "Map"):
        if ("Next" in state) == bool(state.get("End")):
            raise ASLError(f"state {name}: exactly one of Next or End: true")
        if "Next" in state and state["Next"] not in states:
            raise ASLError(f"state {name}: Next {state['Next']!r} is not a state")
    for retrier in state.get("Retry", []):
        _validate_errors(name, retrier, _RETRY_FIELDS)
        if retrier.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
            raise ASLError(f"state {name}: JitterStrategy must be FULL or NONE")
    for catcher in state.get("Catch", []):
        _validate_errors(name, catcher, _CATCH_FIELDS)
        if catcher.get("Next") not in states:
            raise ASLError(f"state {name}: Catch Next {catcher.get('Next')!r} is not a state")
    if kind == "Task" and not isinstance(state.get("Resource"), str):
        raise ASLError(f"state {name}: Task needs a Resource")
    if kind == "Choice":
        if not state.get("Choices"):
            raise ASLError(f"state {name}: Choice needs Choices")
        for rule in state["Choices"]:
            _validate_rule(name, rule, top=True)
            if rule["Next"] not in states:
                raise ASLError(f"state {name}: Choice Next {rule['Next']!r} is not a state")
        if "Default" in state and state["Default"] not in states:
            raise ASLError(f"state {name}: Default {state['Default']!r} is not a state")
    if kind == "Map":
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor is None or ("ItemProcessor" in state and "Iterator" in state):
            raise ASLError(f"state {name}: Map needs exactly one of ItemProcessor or Iterator")
        config = processor.get("ProcessorConfig", {})
        if set(config) - {"Mode", "ExecutionType"} or config.get("Mode", "INLINE") not in ("INLINE", "DISTRIBUTED"):
            raise ASLError(f"state {name}: unsupported ProcessorConfig {config}")
        if "ItemSelector" in state and "Parameters" in state:
            raise ASLError(f"state {name}: ItemSelector and Parameters are exclusive")
        if not isinstance(state.get("MaxConcurrency", 0), int):
            raise ASLError(f"state {name}: MaxConcurrency must be an integer (substitution left a string?)")
        validate(processor, where=f"{name}/")


def _validate_errors(name: str, entry: Any, allowed: set[str]) -> None:
    if not isinstance(entry, dict) or set(entry) - allowed or not entry.get("ErrorEquals"):
        raise ASLError(f"state {name}: bad Retry/Catch entry {entry!r}")
    errors = entry["ErrorEquals"]
    if "States.ALL" in errors and errors != ["States.ALL"]:
        raise ASLError(f"state {name}: States.ALL must appear alone")


def _validate_rule(name: str, rule: Any, *, top: bool) -> None:
    if not isinstance(rule, dict):
        raise ASLError(f"state {name}: a Choice rule must be an object")
    keys = set(rule) - {"Next", "Comment"}
    if top and "Next" not in rule:
        raise ASLError(f"state {name}: a top-level Choice rule needs Next")
    if keys & {"And", "Or"}:
        subs: list[Any] = rule.get("And") or rule.get("Or") or []
        for sub in subs:
            _validate_rule(name, sub, top=False)
        return
    if "Not" in keys:
        _validate_rule(name, rule["Not"], top=False)
        return
    comparators = keys - {"Variable"}
    if "Variable" not in keys or len(comparators) != 1 or not comparators <= _COMPARATORS:
        raise ASLError(f"state {name}: unsupported Choice rule {rule!r}")


def _reachable(start: str, states: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        nexts = [state.get("Next"), state.get("Default")]
        nexts += [rule.get("Next") for rule in state.get("Choices", [])]
        nexts += [catcher.get("Next") for catcher in state.get("Catch", [])]
        todo.extend(n for n in nexts if n)
    return seen


# -- JSONPath (reference paths) and intrinsic functions -----------------------------------------------------------

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\['([^']*)'\]|\[(\d+)\]")
_MISSING = object()


def read_path(data: Any, path: str, context: Any = None) -> Any:
    """``$.a.b[0]`` on ``data``, ``$$.Execution.Name`` on ``context``; a missing path is ``States.Runtime``."""
    value = _lookup(data, path, context)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path!r} could not be found in the input")
    return value


def path_exists(data: Any, path: str, context: Any = None) -> bool:
    return _lookup(data, path, context) is not _MISSING


def _lookup(data: Any, path: str, context: Any) -> Any:
    if path.startswith("$$"):
        value, rest = context, path[2:]
    elif path.startswith("$"):
        value, rest = data, path[1:]
    else:
        raise ASLError(f"not a reference path: {path!r}")
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        if not match:
            raise ASLError(f"unsupported JSONPath {path!r} (only .name, ['name'] and [index])")
        position = match.end()
        name, quoted, index = match.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
        else:
            key = name if name is not None else quoted
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
    return value


def _set_path(data: Any, path: str, value: Any) -> Any:
    """ResultPath: put ``value`` at ``path`` in a copy of ``data`` (``$`` replaces it, ``None`` discards)."""
    if path is None:
        return data
    if path == "$":
        return value
    keys = [m.group(1) or m.group(2) for m in _TOKEN.finditer(path[1:])]
    if not path.startswith("$.") or any(k is None for k in keys):
        raise ASLError(f"unsupported ResultPath {path!r}")
    if not isinstance(data, dict):
        raise StatesError("States.Runtime", f"ResultPath {path!r} needs an object input, got {type(data).__name__}")
    result = copy.deepcopy(data)
    node = result
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value
    return result


def _json_merge(left: Any, right: Any, deep: Any) -> Any:
    if deep is not False:
        raise StatesError("States.Runtime", "States.JsonMerge supports only shallow mode (false)")
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise StatesError("States.Runtime", "States.JsonMerge takes two objects")
    return {**left, **right}


def _format(template: Any, *args: Any) -> str:
    parts = str(template).split("{}")
    if len(parts) - 1 != len(args):
        raise StatesError("States.Runtime", "States.Format: argument count does not match the template")
    out = parts[0]
    for arg, part in zip(args, parts[1:], strict=True):
        out += (arg if isinstance(arg, str) else json.dumps(arg)) + part
    return out


INTRINSICS: Final[dict[str, Callable[..., Any]]] = {
    "States.JsonMerge": _json_merge,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.StringToJson": lambda text: json.loads(text),
    "States.Format": _format,
    "States.MathAdd": lambda a, b: a + b,
    "States.ArrayLength": lambda items: len(items),
    "States.UUID": lambda: str(uuid.uuid4()),
}


def evaluate_intrinsic(expression: str, data: Any, context: Any) -> Any:
    parser = _IntrinsicParser(expression, data, context)
    value = parser.call()
    parser.skip_space()
    if parser.pos != len(expression):
        raise ASLError(f"trailing text in intrinsic {expression!r}")
    return value


class _IntrinsicParser:
    def __init__(self, text: str, data: Any, context: Any) -> None:
        self.text, self.pos, self.data, self.context = text, 0, data, context

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def call(self) -> Any:
        self.skip_space()
        match = re.compile(r"States\.[A-Za-z]+").match(self.text, self.pos)
        if not match or match.group(0) not in INTRINSICS:
            raise ASLError(f"unsupported intrinsic in {self.text!r} at {self.pos}")
        self.pos = match.end()
        self.expect("(")
        args: list[Any] = []
        self.skip_space()
        if self.peek() != ")":
            while True:
                args.append(self.argument())
                self.skip_space()
                if self.peek() == ",":
                    self.pos += 1
                    continue
                break
        self.expect(")")
        try:
            return INTRINSICS[match.group(0)](*args)
        except StatesError:
            raise
        except Exception as exc:
            raise StatesError("States.Runtime", f"{match.group(0)}: {exc}") from None

    def argument(self) -> Any:
        self.skip_space()
        char = self.peek()
        if char == "'":
            return self.string()
        if char == "$":
            match = re.compile(r"\$\$?[^,\s)]*").match(self.text, self.pos)
            assert match
            self.pos = match.end()
            return read_path(self.data, match.group(0), self.context)
        if self.text.startswith("States.", self.pos):
            return self.call()
        match = re.compile(r"-?\d+(\.\d+)?|true|false|null").match(self.text, self.pos)
        if not match:
            raise ASLError(f"bad intrinsic argument in {self.text!r} at {self.pos}")
        self.pos = match.end()
        return json.loads(match.group(0))

    def string(self) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text) and self.text[self.pos] != "'":
            if self.text[self.pos] == "\\":
                self.pos += 1
            out.append(self.text[self.pos])
            self.pos += 1
        self.expect("'")
        return "".join(out)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        self.skip_space()
        if self.peek() != char:
            raise ASLError(f"expected {char!r} in {self.text!r} at {self.pos}")
        self.pos += 1


def render(template: Any, data: Any, context: Any) -> Any:
    """Parameters / ItemSelector / ResultSelector: ``key.$`` values are paths or intrinsics, others literal."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise ASLError(f"{key} must be a string path or intrinsic")
                out[key[:-2]] = (
                    evaluate_intrinsic(value, data, context)
                    if value.startswith("States.")
                    else read_path(data, value, context)
                )
            else:
                out[key] = render(value, data, context)
        return out
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
    """Runs a validated definition; ``functions`` maps each FunctionName/Resource ARN to a callable(payload)."""

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
            "StateMachine": {
                "Id": f"arn:aws:states:us-east-1:123456789012:stateMachine:{self.name}",
                "Name": self.name,
            },
        }
        self._run_into(execution, self.definition, _json_copy(execution_input), context)
        return execution

    # ---- the walk --------------------------------------------------------------------------------------------

    def _run_into(
        self, execution: Execution, definition: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> None:
        try:
            execution.output = self._walk(execution, definition, data, context)
            execution.status = "SUCCEEDED"
        except _Failed as failed:
            execution.status, execution.error, execution.cause = "FAILED", failed.error, failed.cause
        except StatesError as exc:  # raised outside a state's error handling (payload size): not catchable
            execution.status, execution.error, execution.cause = "FAILED", exc.error, exc.cause

    def _walk(self, execution: Execution, definition: Mapping[str, Any], data: Any, context: dict[str, Any]) -> Any:
        states = definition["States"]
        name = definition["StartAt"]
        transitions = 0
        while True:
            transitions += 1
            if transitions > self.max_transitions:
                raise _Failed("Simulator.RunawayLoop", f"more than {self.max_transitions} transitions")
            state = states[name]
            state_context = {**context, "State": {"Name": name, "RetryCount": 0}}
            event = Event(state=name, type=state["Type"], input=_json_copy(data))
            execution.history.append(event)
            try:
                data, following = self._step(execution, name, state, data, state_context)
            except StatesError as exc:
                event.error = exc.error
                handled = self._catch(state, exc, data)
                if handled is None:
                    raise _Failed(exc.error, exc.cause) from None
                data, following = handled
            _check_size(data, name)
            event.output = _json_copy(data)
            if following is None:
                return data
            name = following

    def _step(
        self, execution: Execution, name: str, state: Mapping[str, Any], data: Any, context: dict[str, Any]
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        effective = read_path(data, state.get("InputPath", "$"), context) if state.get("InputPath", "$") else {}
        if kind == "Fail":
            error = state.get("Error") or _dynamic(state.get("ErrorPath"), data, context) or "States.Fail"
            cause = state.get("Cause") or _dynamic(state.get("CausePath"), data, context) or ""
            raise _Failed(str(error), str(cause))
        if kind == "Succeed":
            return self._output(state, effective, context), None
        if kind == "Choice":
            return self._output(state, effective, context), self._choose(name, state, effective, context)
        if kind == "Wait":
            seconds = state.get("Seconds", read_path(effective, state["SecondsPath"]) if "SecondsPath" in state else 0)
            self.sleep(float(seconds))
            result = effective
        elif kind == "Pass":
            if "Parameters" in state:
                effective = render(state["Parameters"], effective, context)
            result = state.get("Result", effective)
            data = _set_path(data, state.get("ResultPath", "$"), result) if "ResultPath" in state else result
            return self._output(state, data, context), self._next(state)
        elif kind == "Task":
            result = self._with_retry(execution, name, state, lambda: self._task(state, effective, context))
        else:
            result = self._with_retry(execution, name, state, lambda: self._map(execution, state, effective, context))
        if "ResultSelector" in state:
            result = render(state["ResultSelector"], result, context)
        data = _set_path(data, state["ResultPath"], result) if "ResultPath" in state else result
        return self._output(state, data, context), self._next(state)

    @staticmethod
    def _output(state: Mapping[str, Any], data: Any, context: Any) -> Any:
        path = state.get("OutputPath", "$")
        return {} if path is None else read_path(data, path, context)

    @staticmethod
    def _next(state: Mapping[str, Any]) -> str | None:
        return None if state.get("End") else state["Next"]

    # ---- Task ------------------------------------------------------------------------------------------------

    def _task(self, state: Mapping[str, Any], effective: Any, context: Any) -> Any:
        resource = state["Resource"]
        params = render(state["Parameters"], effective, context) if "Parameters" in state else effective
        if resource == LAMBDA_INVOKE:
            if not isinstance(params, dict) or "FunctionName" not in params:
                raise ASLError("lambda:invoke needs Parameters.FunctionName")
            unknown = set(params) - {"FunctionName", "Payload"}
            if unknown:
                raise ASLError(f"lambda:invoke parameters not simulated: {sorted(unknown)}")
            payload = self._invoke(params["FunctionName"], params.get("Payload", effective))
            return {"ExecutedVersion": "$LATEST", "Payload": payload, "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:") or resource in self.functions:
            return self._invoke(resource, params)
        raise ASLError(f"unsupported Task Resource {resource!r}")

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
            cause = json.dumps({"errorMessage": str(exc), "errorType": error_type})
            raise StatesError(error_type, cause) from exc
        try:
            payload = _json_copy(response)
        except (TypeError, ValueError) as exc:
            raise StatesError("Lambda.Unknown", f"{function_name} returned something that is not JSON: {exc}") from exc
        with self._lock:
            self.responses.append((function_name, payload))
        return payload

    # ---- Retry / Catch ---------------------------------------------------------------------------------------

    def _with_retry(self, execution: Execution, name: str, state: Mapping[str, Any], work: Callable[[], Any]) -> Any:
        attempts: dict[int, int] = {}
        while True:
            try:
                return work()
            except StatesError as exc:
                index, retrier = _matching(state.get("Retry", []), exc.error)
                if retrier is None:
                    raise
                done = attempts.get(index, 0)
                if done >= retrier.get("MaxAttempts", 3):
                    raise
                attempts[index] = done + 1
                delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                if "MaxDelaySeconds" in retrier:
                    delay = min(delay, retrier["MaxDelaySeconds"])
                execution.history.append(Event(state=name, type="Retry", error=exc.error, retry_delay=delay))
                self.sleep(delay)

    def _catch(self, state: Mapping[str, Any], exc: StatesError, data: Any) -> tuple[Any, str] | None:
        _, catcher = _matching(state.get("Catch", []), exc.error)
        if catcher is None:
            return None
        error_output = {"Error": exc.error, "Cause": exc.cause}
        return _set_path(data, catcher.get("ResultPath", "$"), error_output), catcher["Next"]

    # ---- Choice ----------------------------------------------------------------------------------------------

    def _choose(self, name: str, state: Mapping[str, Any], data: Any, context: Any) -> str:
        for rule in state["Choices"]:
            if _rule_matches(rule, data, context):
                return str(rule["Next"])
        if "Default" in state:
            return str(state["Default"])
        raise StatesError("States.NoChoiceMatched", f"no Choice rule matched in {name}")

    # ---- Map -------------------------------------------------------------------------------------------------

    def _map(self, execution: Execution, state: Mapping[str, Any], effective: Any, context: dict[str, Any]) -> Any:
        items = read_path(effective, state.get("ItemsPath", "$"), context)
        if not isinstance(items, list):
            raise StatesError("States.Runtime", "the Map state's items are not an array")
        processor = state.get("ItemProcessor") or state["Iterator"]
        distributed = processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        selector = state.get("ItemSelector", state.get("Parameters"))
        workers = state.get("MaxConcurrency", 0) or max(1, len(items))
        children: list[Execution] = [Execution(name=f"{execution.name}/{index}") for index in range(len(items))]

        def run_item(index: int) -> None:
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": items[index]}}}
            item_input = render(selector, effective, item_context) if selector is not None else items[index]
            child_context = dict(context)
            child_context.pop("State", None)
            if distributed:
                child_context = {
                    **child_context,
                    "Execution": {**context["Execution"], "Name": children[index].name, "Input": item_input},
                }
            self._run_into(children[index], processor, _json_copy(item_input), child_context)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asl-map") as pool:
            list(pool.map(run_item, range(len(items))))
        execution.children.extend(children)
        failed = [child for child in children if child.status != "SUCCEEDED"]
        if failed:
            if not distributed:
                raise StatesError(str(failed[0].error), str(failed[0].cause))
            tolerated_count = state.get("ToleratedFailureCount", 0)
            tolerated_percent = state.get("ToleratedFailurePercentage", 0)
            if len(failed) > tolerated_count and 100.0 * len(failed) / len(children) > tolerated_percent:
                causes = "; ".join(f"{child.name}: {child.error}" for child in failed)
                raise StatesError("States.ExceedToleratedFailureThreshold", causes)
        return [child.output for child in children]


def _matching(entries: list[dict[str, Any]], error: str) -> tuple[int, dict[str, Any] | None]:
    """The first Retry/Catch entry handling ``error``; States.Runtime and data-limit errors are never handled."""
    if error in ("States.Runtime", "States.DataLimitExceeded") or error.startswith("Simulator."):
        return -1, None
    for index, entry in enumerate(entries):
        names = entry["ErrorEquals"]
        if error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout"):
            return index, entry
    return -1, None


def _rule_matches(rule: Mapping[str, Any], data: Any, context: Any) -> bool:
    if "And" in rule:
        return all(_rule_matches(sub, data, context) for sub in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(sub, data, context) for sub in rule["Or"])
    if "Not" in rule:
        return not _rule_matches(rule["Not"], data, context)
    variable = rule["Variable"]
    if "IsPresent" in rule:
        return path_exists(data, variable, context) == rule["IsPresent"]
    value = read_path(data, variable, context)
    op, expected = next((k, v) for k, v in rule.items() if k not in ("Variable", "Next", "Comment"))
    if op.endswith("Path"):
        op, expected = op[: -len("Path")], read_path(data, expected, context)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    checks: dict[str, Callable[[], bool]] = {
        "IsNull": lambda: (value is None) == expected,
        "IsBoolean": lambda: isinstance(value, bool) == expected,
        "IsNumeric": lambda: is_number == expected,
        "IsString": lambda: isinstance(value, str) == expected,
        "StringEquals": lambda: isinstance(value, str) and value == expected,
        "BooleanEquals": lambda: isinstance(value, bool) and value == expected,
        "NumericEquals": lambda: is_number and value == expected,
        "NumericGreaterThan": lambda: is_number and value > expected,
        "NumericGreaterThanEquals": lambda: is_number and value >= expected,
        "NumericLessThan": lambda: is_number and value < expected,
        "NumericLessThanEquals": lambda: is_number and value <= expected,
    }
    return bool(checks[op]())


def _dynamic(expression: str | None, data: Any, context: Any) -> Any:
    if not expression:
        return None
    if expression.startswith("States."):
        return evaluate_intrinsic(expression, data, context)
    return read_path(data, expression, context)


def _json_copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _check_size(value: Any, where: str) -> None:
    if len(json.dumps(value)) > PAYLOAD_LIMIT:
        raise StatesError("States.DataLimitExceeded", f"{where}: payload over {PAYLOAD_LIMIT} bytes")
