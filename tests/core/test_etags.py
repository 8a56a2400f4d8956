"""Unit tests of entity tags and HTTP preconditions (app.core.etags, RFC 9110 section 13)."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.core.etags import Precondition, entity_tag, none_match

CREATED_AT = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)
CURRENT = entity_tag(version=3, created_at=CREATED_AT)
STALE = entity_tag(version=2, created_at=CREATED_AT)
# RFC 9110: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
STRONG_TAG = re.compile(r'"[\x21\x23-\x7e]*"')


# --- entity_tag -----------------------------------------------------------------------------


def test_entity_tag_is_a_strong_quoted_tag() -> None:
    tag = entity_tag(version=1, created_at=CREATED_AT)

    assert STRONG_TAG.fullmatch(tag)
    assert not tag.startswith("W/")


def test_entity_tag_is_the_same_for_the_same_version_and_creation_instant() -> None:
    same_instant_elsewhere = CREATED_AT.astimezone(timezone(timedelta(hours=-5)))

    assert entity_tag(version=1, created_at=CREATED_AT) == entity_tag(
        version=1, created_at=same_instant_elsewhere
    )


def test_entity_tag_changes_with_the_version() -> None:
    tags = {entity_tag(version=version, created_at=CREATED_AT) for version in range(1, 50)}

    assert len(tags) == 49


def test_entity_tag_differs_for_a_row_created_a_microsecond_later() -> None:
    later = CREATED_AT + timedelta(microseconds=1)

    assert entity_tag(version=1, created_at=CREATED_AT) != entity_tag(version=1, created_at=later)


# --- Precondition.parse / matches (If-Match, strong comparison) ---------------------------


def test_parse_without_a_header_is_no_precondition() -> None:
    assert Precondition.parse(None) is None


@pytest.mark.parametrize("header", ["*", " * "])
def test_parse_star_matches_any_tag(header: str) -> None:
    precondition = Precondition.parse(header)

    assert precondition is not None
    assert precondition.matches(CURRENT)
    assert precondition.matches(STALE)


def test_parse_a_single_tag_matches_only_that_tag() -> None:
    precondition = Precondition.parse(CURRENT)

    assert precondition is not None
    assert precondition.matches(CURRENT)
    assert not precondition.matches(STALE)


@pytest.mark.parametrize(
    "header",
    [f'"other", {CURRENT}', f"{STALE},{CURRENT}", f'  {CURRENT} ,  "x"  ', f'"a",\t{CURRENT}'],
    ids=["last", "no-space", "padded-first", "tab"],
)
def test_parse_a_list_matches_any_tag_in_it(header: str) -> None:
    precondition = Precondition.parse(header)

    assert precondition is not None
    assert precondition.matches(CURRENT)


def test_parse_a_list_of_other_tags_does_not_match() -> None:
    precondition = Precondition.parse(f'{STALE}, "other"')

    assert precondition is not None
    assert not precondition.matches(CURRENT)


@pytest.mark.parametrize(
    "header", [f"W/{CURRENT}", f'"other", W/{CURRENT}'], ids=["alone", "in-a-list"]
)
def test_parse_a_weak_tag_never_matches_strongly(header: str) -> None:
    precondition = Precondition.parse(header)

    assert precondition is not None
    assert not precondition.matches(CURRENT)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", CURRENT.strip('"'), CURRENT[:-1], "**", "W/"],
    ids=["empty", "garbage", "unquoted", "unterminated", "double-star", "bare-weak-prefix"],
)
def test_parse_a_malformed_header_matches_nothing(header: str) -> None:
    precondition = Precondition.parse(header)

    assert precondition is not None
    assert not precondition.matches(CURRENT)


def test_parse_a_quoted_comma_belongs_to_the_tag() -> None:
    precondition = Precondition.parse('"a,b"')

    assert precondition is not None
    assert precondition.matches('"a,b"')
    assert not precondition.matches('"a"')
    assert not precondition.matches('"b"')


def test_parse_does_not_match_a_tag_by_prefix() -> None:
    precondition = Precondition.parse('"12"')

    assert precondition is not None
    assert not precondition.matches('"1"')
    assert not precondition.matches('"123"')


# --- none_match (If-None-Match, weak comparison) -----------------------------------------


def test_none_match_without_a_header_is_false() -> None:
    assert none_match(None, CURRENT) is False


@pytest.mark.parametrize("header", ["*", " * "])
def test_none_match_star_is_true(header: str) -> None:
    assert none_match(header, CURRENT) is True


def test_none_match_the_current_tag_is_true() -> None:
    assert none_match(CURRENT, CURRENT) is True


def test_none_match_a_stale_tag_is_false() -> None:
    assert none_match(STALE, CURRENT) is False


def test_none_match_a_list_containing_the_current_tag_is_true() -> None:
    assert none_match(f'{STALE}, "other",{CURRENT}', CURRENT) is True


def test_none_match_a_list_of_other_tags_is_false() -> None:
    assert none_match(f'{STALE}, "other"', CURRENT) is False


def test_none_match_compares_weakly() -> None:
    assert none_match(f"W/{CURRENT}", CURRENT) is True


@pytest.mark.parametrize(
    "header",
    ["", "garbage", CURRENT.strip('"'), CURRENT[:-1]],
    ids=["empty", "garbage", "unquoted", "unterminated"],
)
def test_none_match_a_malformed_header_is_false(header: str) -> None:
    assert none_match(header, CURRENT) is False
