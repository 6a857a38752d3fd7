"""The one S3 fault wrapper: a real boto3 S3 client that fails, slows or interrupts chosen operations.

moto's server never throttles, never fails a key and is never slow, so tests that need those wrap the real
client; every call that no rule touches reaches the real server unchanged::

    faulty = FaultyS3(services.s3)
    storm = faulty.fail("copy_object", "SlowDown", seconds=0.5)      # a 503 storm for half a second
    faulty.fail("delete_objects", "SlowDown", times=2)                # the next two calls, whole request
    faulty.fail("head_object", "InternalError", keys={"a.png"})       # only calls naming that Key
    faulty.fail_keys({"b.png"}, "AccessDenied")                       # DeleteObjects reports b.png, always
    faulty.fail_keys(keys, "InternalError", times=1)                  # ... each key's first attempt only
    faulty.delay("delete_objects", 0.05)                              # slowness
    faulty.after("copy_object", crash, nth=3)                         # crash between steps (after the 3rd
                                                                      # copy landed, before the caller saw it)
    run(with_s3(services, faulty))
    faulty.calls["delete_objects"], storm.injected, faulty.attempts["b.png"], faulty.max_active[...]

Operations are boto3 method names (``"*"`` matches any). Injected errors are ``botocore`` ``ClientError``s
shaped like S3's (code, message, HTTP status), raised before the real call, so nothing happened on the
server. Per-key DeleteObjects errors come back in the response's ``Errors`` the way S3 reports them.
boto3's managed transfers (``copy``, ``upload_fileobj``...) are not operations and pass through unwrapped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from scenestore.services import Services

#: S3's HTTP status and message for the codes tests inject.
ERRORS: dict[str, tuple[int, str]] = {
    "SlowDown": (503, "Please reduce your request rate."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "InternalError": (500, "We encountered an internal error."),
    "AccessDenied": (403, "Access Denied"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "RequestTimeout": (400, "Your socket connection to the server was not read from or written to."),
}


def client_error(code: str, operation: str, *, status: int | None = None, message: str | None = None) -> ClientError:
    """A ``ClientError`` as botocore raises it for an S3 error response."""
    default_status, default_message = ERRORS.get(code, (500, code))
    return ClientError(
        {
            "Error": {"Code": code, "Message": default_message if message is None else message},
            "ResponseMetadata": {"HTTPStatusCode": default_status if status is None else status},
        },
        _api_name(operation),
    )


@dataclass
class Fault:
    """One rule: fail ``operation`` with ``code`` ``times`` times (None: every time) while active."""

    operation: str
    code: str
    times: int | None = None
    until: float | None = None  # time.monotonic() after which the rule is spent
    keys: frozenset[str] | None = None  # only calls whose ``Key`` is one of these
    when: Callable[[dict[str, Any]], bool] | None = None
    status: int | None = None
    message: str | None = None
    injected: int = 0
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True

    def matches(self, operation: str, kwargs: dict[str, Any], now: float) -> bool:
        if self.stopped or self.operation not in ("*", operation):
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        if self.until is not None and now >= self.until:
            return False
        if self.keys is not None and kwargs.get("Key") not in self.keys:
            return False
        return self.when is None or self.when(kwargs)


@dataclass
class KeyFault:
    """DeleteObjects reports these keys as failed, each for its first ``times`` attempts (None: always)."""

    keys: frozenset[str]
    code: str
    times: int | None = None
    message: str | None = None

    def failing(self, key: str, attempt: int) -> bool:
        return key in self.keys and (self.times is None or attempt <= self.times)


@dataclass
class Call:
    """What a hook sees: the operation, its arguments, its 1-based index among calls of that operation,
    and (for ``after`` hooks) the real response."""

    operation: str
    kwargs: dict[str, Any]
    n: int
    response: Any = None


@dataclass
class _Hook:
    operation: str
    fn: Callable[[Call], None]
    nth: int | None


@dataclass
class FaultyS3:
    """Wraps ``real`` (a boto3 S3 client). Thread-safe; counters cover every operation called through it."""

    real: Any
    faults: list[Fault] = field(default_factory=list)
    key_faults: list[KeyFault] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    #: calls per operation (injected failures included), and finished calls (whatever their outcome)
    calls: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    #: most calls of one operation in flight at once
    max_active: Counter[str] = field(default_factory=Counter)
    #: per key: how many DeleteObjects requests that got past the whole-request faults named it; and the
    #: size of each such request
    attempts: Counter[str] = field(default_factory=Counter)
    batch_sizes: list[int] = field(default_factory=list)
    _before: list[_Hook] = field(default_factory=list)
    _after: list[_Hook] = field(default_factory=list)
    _active: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- configuring ------------------------------------------------------------------------------------
    def fail(
        self,
        operation: str,
        code: str = "SlowDown",
        *,
        times: int | None = None,
        seconds: float | None = None,
        keys: Iterable[str] | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Fail whole calls of ``operation`` with ``code``: ``times`` of them, or for ``seconds`` from now,
        or (neither) until ``stop()``; only calls naming one of ``keys``, or for which ``when(kwargs)``."""
        fault = Fault(
            operation,
            code,
            times=times,
            until=None if seconds is None else time.monotonic() + seconds,
            keys=None if keys is None else frozenset(keys),
            when=when,
            status=status,
            message=message,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_keys(
        self, keys: Iterable[str], code: str = "AccessDenied", *, times: int | None = None, message: str | None = None
    ) -> KeyFault:
        """DeleteObjects answers with a per-key error for ``keys`` (first ``times`` attempts of each key)."""
        fault = KeyFault(frozenset(keys), code, times, message)
        with self._lock:
            self.key_faults.append(fault)
        return fault

    def delay(self, operation: str, seconds: float) -> None:
        self.delays[operation] = seconds

    def before(self, operation: str, fn: Callable[[Call], None], *, nth: int | None = None) -> None:
        """Run ``fn`` before the real call (every call, or only the ``nth``); if it raises, no call is made."""
        self._before.append(_Hook(operation, fn, nth))

    def after(self, operation: str, fn: Callable[[Call], None], *, nth: int | None = None) -> None:
        """Run ``fn`` once the real call succeeded; if it raises, the call happened but the caller never
        sees the response (a crash between steps)."""
        self._after.append(_Hook(operation, fn, nth))

    @property
    def injected(self) -> int:
        """Whole-request errors injected so far, over all rules."""
        return sum(f.injected for f in self.faults)

    # -- the wrapped client ---------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "real":  # not set yet (copy, pickle): never recurse
            raise AttributeError(name)
        attr = getattr(self.real, name)
        if name in getattr(getattr(self.real, "meta", None), "method_to_api_mapping", {}):
            return lambda **kwargs: self._call(name, attr, kwargs)
        return attr

    def _call(self, operation: str, real: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            self.calls[operation] += 1
            n = self.calls[operation]
            self._active[operation] += 1
            self.max_active[operation] = max(self.max_active[operation], self._active[operation])
            fault = next((f for f in self.faults if f.matches(operation, kwargs, time.monotonic())), None)
            if fault is not None:
                fault.injected += 1
        try:
            call = Call(operation, kwargs, n)
            self._run_hooks(self._before, call)
            if self.delays.get(operation):
                time.sleep(self.delays[operation])
            if fault is not None:
                raise client_error(fault.code, operation, status=fault.status, message=fault.message)
            if operation == "delete_objects":
                call.response = self._delete_objects(real, kwargs)
            else:
                call.response = real(**kwargs)
            self._run_hooks(self._after, call)
            return call.response
        finally:
            with self._lock:
                self._active[operation] -= 1
                self.completed[operation] += 1

    def _run_hooks(self, hooks: list[_Hook], call: Call) -> None:
        for hook in hooks:
            if hook.operation in ("*", call.operation) and hook.nth in (None, call.n):
                hook.fn(call)

    def _delete_objects(self, real: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        keys = [o["Key"] for o in kwargs["Delete"]["Objects"]]
        errors: list[dict[str, str]] = []
        with self._lock:
            self.batch_sizes.append(len(keys))
            for key in keys:
                self.attempts[key] += 1
                fault = next((f for f in self.key_faults if f.failing(key, self.attempts[key])), None)
                if fault is not None:
                    message = ERRORS.get(fault.code, (500, fault.code))[1] if fault.message is None else fault.message
                    errors.append({"Key": key, "Code": fault.code, "Message": message})
        failed = {e["Key"] for e in errors}
        passing = [o for o in kwargs["Delete"]["Objects"] if o["Key"] not in failed]
        response: dict[str, Any] = {}
        if passing:
            response = dict(real(**{**kwargs, "Delete": {**kwargs["Delete"], "Objects": passing}}))
        if errors:
            response["Errors"] = [*response.get("Errors", []), *errors]
        return response


def with_s3(services: Services, s3: Any) -> Services:
    """The same services with another S3 client (a ``FaultyS3``)."""
    return services.replace(s3=s3)


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))  # list_objects_v2 -> ListObjectsV2
