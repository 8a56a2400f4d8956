"""Property-based fuzzing of every documented operation (Schemathesis).

The schema is the OpenAPI document the app serves, so this checks the documentation as much as
the code: every response must be a documented status with a documented content type, headers
and body, never a 5xx; schema-valid requests must be accepted and schema-invalid ones rejected;
undeclared methods must be 405 and protected operations must refuse a request without a token.
Each operation runs as a normal user and as an admin, inside the test's rolled-back transaction
(the ``client`` fixture's session override), on both backends. Generation is derandomized and
bounded, so a run is reproducible and quick; see ``MAX_EXAMPLES``.
"""

import os
from typing import Any, ClassVar

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from app.core.rate_limit import get_rate_limiter
from app.main import app
from app.models import IdempotencyKey, Item, User
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user

# Generated cases per operation and role, on top of the schema's examples and its coverage cases
# (boundary values, missing fields, undeclared methods), which do not count against it. Raise it
# for a longer campaign: FUZZ_MAX_EXAMPLES=300 pytest tests/api/test_fuzz.py
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))

# A well-formed request may still meet a documented refusal that depends on state, not on its
# shape: someone else's row (404), a taken name (409), an If-Match tag that is not current (412).
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]

# Rules JSON Schema cannot state, as (loc, words in the message): a 422 naming only these is the
# documented answer to a schema-valid request.
RULES_BEYOND_SCHEMA = (
    (["body", "password"], "bytes of UTF-8"),  # JSON Schema counts characters, bcrypt bytes
    (["body", "new_password"], "bytes of UTF-8"),
    (["body", "current_password"], "incorrect"),  # it must be the caller's password
    (["body", "current_password"], "needs current_password"),  # only when the email changes
    (["body", "email"], "special-use or reserved name"),  # .test, .local, ... (documented)
    # State, not shape: the fuzzer sends one key (say "0") with many bodies.
    (["header", "Idempotency-Key"], "used for a different request"),
)

# Schemathesis's default answers to a schema-violating request, plus 412: an If-Match that is
# not a list of tags matches no tag, and a failed precondition is 412 (RFC 9110 13.1.1).
REJECTED_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428"]
REJECTED_STATUSES += ["429", "5xx"]

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED_STATUSES},
            "negative_data_rejection": {"expected-statuses": REJECTED_STATUSES},
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


def _only_rules_beyond_schema(response: Response) -> bool:
    if response.status_code != 422:
        return False
    errors = response.json().get("errors") or []
    return bool(errors) and all(
        any(error["loc"] == loc and words in error["msg"] for loc, words in RULES_BEYOND_SCHEMA)
        for error in errors
    )


def schema_valid_request_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``positive_data_acceptance``, except for a 422 that names only RULES_BEYOND_SCHEMA."""
    if _only_rules_beyond_schema(response):
        return None
    return positive_data_acceptance(ctx, response, case)


def _is_form(case: Case) -> bool:
    return (case.media_type or "").startswith("application/x-www-form-urlencoded")


def _empty_form_field_read_as_absent(response: Response, case: Case) -> bool:
    # An empty form field is an absent one to FastAPI; the login form's only constrained
    # optional field is grant_type, so `grant_type=` is a login without it.
    body = case.body
    return (
        response.status_code < 300
        and _is_form(case)
        and isinstance(body, dict)
        and body.get("grant_type") == ""
    )


def schema_invalid_request_rejected(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    """``negative_data_rejection``, except for the login form's empty ``grant_type``."""
    if _empty_form_field_read_as_absent(response, case):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    schema_valid_request_accepted,
    schema_invalid_request_rejected,
    missing_required_header,
    unsupported_method,
    ignored_auth,
]


@pytest.fixture(params=["user", "admin"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pick(seed: object, own: Any, others: Any) -> Any | None:
    """What replaces a generated value, chosen from the value itself (so runs stay reproducible):
    ``own``, ``others`` or, one time in three, nothing (None: keep what was generated)."""
    if isinstance(seed, str) and seed.isascii() and seed.isdigit():
        seed = int(seed)
    elif isinstance(seed, str):
        seed = len(seed)
    if not isinstance(seed, int) or isinstance(seed, bool):
        return None
    return (own, others, None)[seed % 3]


def _aim_at_real_rows(case: Case, *, actor: User, session: Session) -> None:
    """Random ids and credentials almost never exist; steer most of them at real ones, so that
    ownership, permissions and successful writes (and their response bodies) are exercised.
    Only schema-valid cases are steered: a negative case must stay invalid."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    other = make_user(session)
    rows = {
        "user_id": (actor.id, other.id),
        "item_id": (make_item(session, owner=actor).id, make_item(session, owner=other).id),
    }
    params = case.path_parameters or {}
    for name, (own, others) in rows.items():
        if name in params and (target := _pick(params[name], own, others)) is not None:
            params[name] = target
    headers = case.headers or {}
    for name in ("If-Match", "If-None-Match"):
        # A random tag is never current: "*" (any version) gives 200/204 or 304, and no
        # If-Match at all is a write without precondition.
        choice = _pick(headers.get(name), "*", "drop" if name == "If-Match" else None)
        if choice == "*":
            headers[name] = "*"
        elif choice == "drop":
            del headers[name]
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("current_password"), str):
        body["current_password"] = (
            _pick(body["current_password"], DEFAULT_PASSWORD, "wrong-password-1")
            or body["current_password"]
        )
    # The login form: the actor's own credentials, or a known email with a wrong password.
    email = _pick(body.get("username"), actor.email, other.email) if _is_form(case) else None
    if email is not None:
        body["username"] = email
        body["password"] = DEFAULT_PASSWORD if email == actor.email else "wrong-password-1"


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_operation_conforms_to_its_documentation(
    case: Case, client: TestClient, session: Session, role: str
) -> None:
    # `client` is not called: requesting it installs the session override that Schemathesis'
    # in-process ASGI calls go through. A fresh actor per example, since an example may change
    # its password (revoking its token) or its email.
    actor = make_user(session, role=role)
    _aim_at_real_rows(case, actor=actor, session=session)
    get_rate_limiter().reset()  # failed logins of earlier examples must not turn this one to 429

    case.call_and_validate(headers=auth_headers(actor), checks=CHECKS)


# The stateful phase: sequences that follow the document's links from a create to the read,
# update and delete of what it made, as an admin (who may reach every user and item).
StatefulWorkflow = schema.as_state_machine()


class AdminWorkflow(StatefulWorkflow):  # type: ignore[misc,valid-type]
    headers: ClassVar[dict[str, str]] = {}
    # (operation, status) of every call, to show the links were followed.
    calls: ClassVar[list[tuple[str, int]]] = []
    session: ClassVar[Session]
    admin_id: ClassVar[int]
    admin_row: ClassVar[dict[str, Any]]

    def setup(self) -> None:
        get_rate_limiter().reset()

    def teardown(self) -> None:
        # Every sequence starts from the same rows (the admin alone), so Hypothesis sees the
        # same responses when it generates a sequence again.
        self.session.execute(delete(IdempotencyKey))
        self.session.execute(delete(Item))
        self.session.execute(delete(User).where(User.id != self.admin_id))
        # The sequence may have changed the admin itself (email, password, token key).
        self.session.execute(update(User).where(User.id == self.admin_id).values(self.admin_row))
        self.session.commit()

    def get_call_kwargs(self, case: Case) -> dict[str, Any]:  # noqa: ARG002
        return {"headers": self.headers}

    def validate_response(self, response: Response, case: Case, **_kwargs: Any) -> None:
        self.calls.append((case.operation.label, response.status_code))
        case.validate_response(response, checks=CHECKS)


def test_sequences_of_operations_conform_to_the_documentation(
    client: TestClient, session: Session
) -> None:
    admin = make_user(session, role="admin")
    AdminWorkflow.headers = auth_headers(admin)
    AdminWorkflow.session, AdminWorkflow.admin_id = session, admin.id
    AdminWorkflow.admin_row = {
        column.key: getattr(admin, column.key)
        for column in User.__table__.columns
        if column.key != "id"
    }
    AdminWorkflow.calls.clear()

    AdminWorkflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )

    # Random ids almost never exist: a 200 on a read of one item or user is a followed link.
    reads = {"GET /api/v1/items/{item_id}", "GET /api/v1/users/{user_id}"}
    assert any(label in reads and status == 200 for label, status in AdminWorkflow.calls)
