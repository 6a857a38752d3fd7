"""template.yaml as data for the infra tests: parse it, resolve its intrinsics, load what it wires.

The tests follow the names in the template (rule -> state machine -> DefinitionUri + DefinitionSubstitutions ->
function -> CodeUri + Handler), so a renamed handler, function, file or field breaks them instead of
silently drifting. Intrinsics resolve to readable symbols: a resource's ``Ref`` is ``ref:<Logical>``, a
``GetAtt`` is ``getatt:<Logical>.<Attribute>``; parameters take their defaults unless given.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from cfnlint.decode import decode

ROOT: Final = Path(__file__).resolve().parents[2]
TEMPLATE: Final = ROOT / "template.yaml"
PSEUDO: Final = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "scenestore",
    "AWS::URLSuffix": "amazonaws.com",
}
#: Values for the parameters without a default (and the Atlas source, so its conditional resources exist).
REQUIRED_PARAMETERS: Final = {
    "BucketName": "autoshorts-media",
    "R2Endpoint": "https://0123456789abcdef.r2.cloudflarestorage.com",
    "JwtIssuer": "https://auth.example.com/",
    "JwtAudience": "scenestore",
    "JwtJwksUrl": "https://auth.example.com/.well-known/jwks.json",
    "CorsOrigins": "https://app.example.com",
    "AtlasEventSourceName": "aws.partner/mongodb.com/stitch.trigger/65a1b2c3d4e5f60718293a4b",
}
NO_VALUE: Final = object()
_SUB = re.compile(r"\$\{([^}!]+)\}")


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    """The template with CloudFormation tags decoded (``!Ref x`` -> ``{"Ref": "x"}``) by cfn-lint's decoder."""
    template, matches = decode(str(TEMPLATE))
    if matches or template is None:
        raise AssertionError(f"template.yaml does not parse: {matches}")
    return template


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    found = load_template()["Resources"]
    return {name: res for name, res in found.items() if kind is None or res["Type"] == kind}


class Resolver:
    """Evaluates the intrinsics this template uses, for one set of parameter values."""

    def __init__(self, **parameters: str) -> None:
        template = load_template()
        self.template = template
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, REQUIRED_PARAMETERS.get(name, spec.get("Default")))
            if value is None:
                raise AssertionError(f"parameter {name} has no default and no test value")
            self.parameters[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else str(value)
        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise AssertionError(f"unknown parameters {unknown}")
        self.conditions = {name: self.condition(expr) for name, expr in template.get("Conditions", {}).items()}

    def condition(self, expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, args),) = expr.items()
            if fn == "Fn::Equals":
                return bool(self.resolve(args[0]) == self.resolve(args[1]))
            if fn == "Fn::Not":
                return not self.condition(args[0])
            if fn == "Fn::And":
                return all(self.condition(a) for a in args)
            if fn == "Fn::Or":
                return any(self.condition(a) for a in args)
            if fn == "Condition":
                return self.conditions[args]
        raise AssertionError(f"unsupported condition {expr!r}")

    def exists(self, logical_id: str) -> bool:
        resource = self.template["Resources"].get(logical_id)
        return resource is not None and ("Condition" not in resource or self.conditions[resource["Condition"]])

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template["Resources"]:
            if not self.exists(name):
                raise AssertionError(f"Ref to {name}, which this parameter set does not create")
            return f"ref:{name}"
        raise AssertionError(f"Ref to undeclared {name!r}")

    def getatt(self, logical_id: str, attribute: str) -> str:
        if not self.exists(logical_id):
            raise AssertionError(f"GetAtt of undeclared or absent resource {logical_id!r}")
        return f"getatt:{logical_id}.{attribute}"

    def sub(self, text: str, variables: Mapping[str, Any] | None = None) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if variables and name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.getatt(logical, attribute)
            value = self.ref(name)
            if value is NO_VALUE or isinstance(value, list):
                raise AssertionError(f"cannot substitute {name} into a string")
            return str(value)

        return _SUB.sub(one, text)

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic evaluated; ``AWS::NoValue`` entries are dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, args),) = value.items()
                if key == "Ref":
                    return self.ref(args)
                if key == "Fn::GetAtt":
                    logical, attribute = args if isinstance(args, list) else args.split(".", 1)
                    return self.getatt(logical, attribute)
                if key == "Fn::Sub":
                    return self.sub(args) if isinstance(args, str) else self.sub(args[0], args[1])
                if key == "Fn::Join":
                    return str(args[0]).join(str(self.resolve(item)) for item in self.resolve(args[1]))
                if key == "Fn::If":
                    return self.resolve(args[1] if self.conditions[args[0]] else args[2])
                if key.startswith("Fn::"):
                    raise AssertionError(f"unsupported intrinsic {key}")
            out = {}
            for key, item in value.items():
                resolved = self.resolve(item)
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        return value


def logical_id(symbol: str) -> str:
    """``ref:X`` / ``getatt:X.Arn`` -> ``X``."""
    kind, _, rest = symbol.partition(":")
    if kind not in ("ref", "getatt"):
        raise AssertionError(f"{symbol!r} does not name a template resource")
    return rest.split(".", 1)[0]


def function_entry(logical: str) -> tuple[Path, str, str]:
    """(code directory, module name, attribute) of a function, from its CodeUri and Handler."""
    props = resources()[logical]["Properties"]
    code_dir = ROOT / props["CodeUri"]
    module, _, attribute = props["Handler"].rpartition(".")
    return code_dir, module, attribute


def load_handler(logical: str) -> Callable[..., Any]:
    """Import the function's handler module by file path (as Lambda's bootstrap would find it) and return it."""
    code_dir, module, attribute = function_entry(logical)
    path = code_dir / (module.replace(".", "/") + ".py")
    name = f"scenestore_lambda_{logical}"
    loaded: ModuleType | None = sys.modules.get(name)
    if loaded is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise AssertionError(f"{logical}: cannot load {path}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[name]
            raise
    handler = getattr(loaded, attribute)
    if not callable(handler):
        raise AssertionError(f"{logical}: {module}.{attribute} is not callable")
    return handler  # type: ignore[no-any-return]


def state_machine_definition_path(logical: str) -> Path:
    return ROOT / resources()[logical]["Properties"]["DefinitionUri"]
