"""Entity tags and HTTP preconditions (RFC 9110 section 13)."""

import re
from dataclasses import dataclass
from datetime import datetime

_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e]*)"')


def entity_tag(*, version: int, created_at: datetime) -> str:
    """A strong tag that changes with every update (``version``) and differs between a deleted
    row and a later one that reuses its id (``created_at``)."""
    return f'"{version}.{int(created_at.timestamp() * 1_000_000):x}"'


@dataclass(frozen=True, slots=True)
class Precondition:
    """An ``If-Match`` header: ``*`` or a list of tags, compared strongly."""

    any_tag: bool
    tags: frozenset[str]

    @classmethod
    def parse(cls, header: str | None) -> "Precondition | None":
        if header is None:
            return None
        if header.strip() == "*":
            return cls(any_tag=True, tags=frozenset())
        # Weak tags never match strongly; a malformed header matches nothing (412).
        strong = {f'"{m.group(2)}"' for m in _ENTITY_TAG.finditer(header) if not m.group(1)}
        return cls(any_tag=False, tags=frozenset(strong))

    def matches(self, current_tag: str) -> bool:
        return self.any_tag or current_tag in self.tags


def none_match(header: str | None, current_tag: str) -> bool:
    """``If-None-Match`` (weak comparison): True when the client's copy is current."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(f'"{m.group(2)}"' == current_tag for m in _ENTITY_TAG.finditer(header))
