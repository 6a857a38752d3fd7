"""The migrate-batch contract (section 6): the validated input, the cursor, and the result.

Input ``{"run_id", "cursor": str|null, "batch_size": 1..1000 (default 100), "dry_run", "shard": {"gte", "lt"}|null}``;
output ``{"run_id", "cursor", "done", "scanned", "migrated", "skipped", "failed", "bytes_copied", "errors"}``.

A shard is read in two phases: its scenes (their media and audio keys), then its projects (their output
keys; a project is taken by its own ``_id``, so a project whose scenes are spread over several shards is
moved once, and one without scenes is moved too). The cursor names the phase and the last ``_id`` done:
``scenes:oid:65f0...``, ``projects:`` (projects phase, nothing done yet), ``projects:str:p-9``. ``null`` is
the start. Extra keys in the input are ignored, so a state machine may feed an output back as the next input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from scenestore.common import MAX_REPORTED_ERRORS, extend_capped, validation_problems
from scenestore.db import PROJECTS, SCENES
from scenestore.errors import InvalidRequest
from scenestore.migration.config import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE
from scenestore.migration.ids import decode_id, encode_id, sort_key
from scenestore.migration.shards import Shard

RUN_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"

Phase = Literal["scenes", "projects"]
PHASES: Final[tuple[str, ...]] = (SCENES, PROJECTS)

#: Left untouched on purpose and reported; not a failure of the migration.
SKIP_CODES: Final = frozenset({"source_missing", "orphan_scene", "changed_by_app"})
#: :class:`BatchResult`'s counted fields, named once: ``merge`` sums these, ``counters`` reports them and the
#: run document (``scenestore.migration.runs``) keeps one total of each, so a new count cannot miss one of them.
COUNTERS: Final = ("scanned", "migrated", "skipped", "failed", "bytes_copied")
#: The moves a dry run lists (the first ones; the counts stay exact).
MAX_LISTED_MOVES: Final = 1000


@dataclass(frozen=True, slots=True)
class Position:
    """Where a shard's reading stands: the phase and the last ``_id`` finished in it (``None``: none yet)."""

    phase: str = SCENES
    after: Any = None

    def encode(self) -> str:
        return f"{self.phase}:{encode_id(self.after) if self.after is not None else ''}"

    def order(self) -> tuple[int, int, Any]:
        """Sort key: phase first, then "nothing yet" before any ``_id``, then the ``_id``."""
        if self.after is None:
            return (PHASES.index(self.phase), 0, (0, 0))
        return (PHASES.index(self.phase), 1, sort_key(self.after))

    @classmethod
    def decode(cls, cursor: str | None) -> Position:
        if cursor is None:
            return cls()
        phase, sep, rest = cursor.partition(":")
        if not sep or phase not in PHASES:
            raise InvalidRequest(f"cursor {cursor!r} must look like 'scenes:<id>' or 'projects:<id>' (or be null)")
        return cls(phase=phase, after=decode_id(rest) if rest else None)


class ShardRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gte: str | None = None
    lt: str | None = None

    def to_shard(self) -> Shard:
        return Shard(gte=self.gte, lt=self.lt)


class BatchRequest(BaseModel):
    """The validated input of one migrate-batch invocation."""

    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID_PATTERN, description="1-128 of A-Z a-z 0-9 _ . : -")
    cursor: str | None = None
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
    dry_run: StrictBool = False
    shard: ShardRange | None = None

    @field_validator("cursor")
    @classmethod
    def _cursor_parses(cls, value: str | None) -> str | None:
        try:
            Position.decode(value)
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("shard")
    @classmethod
    def _shard_parses(cls, value: ShardRange | None) -> ShardRange | None:
        if value is not None:
            try:
                value.to_shard()
            except InvalidRequest as exc:
                raise ValueError(exc.message) from None
        return value

    @property
    def the_shard(self) -> Shard:
        return self.shard.to_shard() if self.shard is not None else Shard()

    @property
    def position(self) -> Position:
        return Position.decode(self.cursor)


def parse_request(event: Any) -> BatchRequest:
    """Validate an event into a :class:`BatchRequest`; a bad one raises ``InvalidRequest`` listing every problem."""
    from pydantic import ValidationError

    if not isinstance(event, dict):
        raise InvalidRequest("the event must be a JSON object")
    try:
        return BatchRequest.model_validate(event)
    except ValidationError as exc:
        problems = validation_problems(exc.errors(), root="event")
        raise InvalidRequest(f"invalid migrate-batch input: {problems}") from None


@dataclass(slots=True)
class BatchResult:
    """Counts of one invocation (or, merged, of a whole run); ``errors`` holds the first 100, counts are exact."""

    run_id: str
    cursor: str | None = None
    done: bool = False
    scanned: int = 0
    migrated: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_copied: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: A dry run's first ``MAX_LISTED_MOVES`` moves, ``{"collection", "id", "field", "from", "to"}``. Left out of
    #: ``to_dict`` (a state machine's payload stays small): the CLI's run summary lists them.
    moves: list[dict[str, Any]] = field(default_factory=list)

    def report(self, code: str, message: str, **context: Any) -> None:
        """Count one reference left unmoved: a skip for the codes in ``SKIP_CODES``, else a failure."""
        if code in SKIP_CODES:
            self.skipped += 1
        else:
            self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            entry: dict[str, Any] = {"code": code, "message": message}
            entry.update({k: (encode_id(v) if k == "id" else v) for k, v in context.items() if v is not None})
            self.errors.append(entry)

    def merge(self, other: BatchResult) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        extend_capped(self.errors, other.errors)
        extend_capped(self.moves, other.moves, cap=MAX_LISTED_MOVES)
        self.cursor = other.cursor
        self.done = other.done

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "cursor": self.cursor,
            "done": self.done,
            **self.counters(),
            "errors": self.errors,
        }
