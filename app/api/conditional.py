"""Conditional requests: ETag on reads, If-None-Match (304) and If-Match (412)."""

from typing import Annotated

from fastapi import Depends, Header, Response
from pydantic import WithJsonSchema

from app.core.etags import Precondition, none_match
from app.models.base import VersionedMixin
from app.services.common import etag_of

# Documented as plain strings (a generated client must never send a literal "None") with the
# syntax the server parses; a header that is absent is simply not sent.
_TAG = r'(W/)?"[\x21\x23-\x7e]*"'
ENTITY_TAGS = WithJsonSchema(
    {
        "type": "string",
        "pattern": rf"^[ \t]*(\*|{_TAG}([ \t]*,[ \t]*{_TAG})*)[ \t]*$",
        "examples": ['"3.5f1c2a9b8e7d6"', "*"],
    }
)


async def if_match(  # async: parsing a header needs no thread hop
    header: Annotated[
        str | None,
        ENTITY_TAGS,
        Header(
            alias="If-Match",
            description='Entity tags (`"…"`, comma-separated) or `*`: the write happens only '
            "if the resource's current ETag is among them; otherwise 412 and nothing changes. "
            "Without it the write is accepted, and a change made by someone else during the "
            "request answers 409.",
        ),
    ] = None,
) -> Precondition | None:
    return Precondition.parse(header)


IfMatch = Annotated[Precondition | None, Depends(if_match)]
# Any text: a cache validator the server cannot read is no match, so the answer is the full 200.
ANY_TAGS = WithJsonSchema({"type": "string", "examples": ['"3.5f1c2a9b8e7d6"']})
IfNoneMatch = Annotated[
    str | None,
    ANY_TAGS,
    Header(
        alias="If-None-Match",
        description="An ETag from an earlier read: 304 with no body if it is still current.",
    ),
]


def tagged(entity: VersionedMixin, response: Response, if_none_match: str | None = None) -> bool:
    """Set the entity's ETag on ``response``; True when the client's copy is current (304)."""
    tag = etag_of(entity)
    response.headers["ETag"] = tag
    return none_match(if_none_match, tag)


def not_modified(response: Response) -> Response:
    return Response(status_code=304, headers={"ETag": response.headers["ETag"]})
