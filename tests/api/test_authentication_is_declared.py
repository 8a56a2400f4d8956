"""Authentication is structural: every operation that answers 401 declares a dependency that
loads and checks the caller before the endpoint runs, so no endpoint body has to remember it."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.api.deps import get_current_caller, get_current_user, get_owned_item
from app.api.router import API_ROUTERS

# Each loads the account the token speaks for and refuses a deleted, revoked or deactivated one.
CALLER_CHECKS: set[Callable[..., Any]] = {get_current_caller, get_current_user, get_owned_item}
# Operations that accept anonymous callers (their 401 is a wrong password, not a token).
ANONYMOUS = {("POST", "/users"), ("POST", "/auth/token")}


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from calls(dependency)


def api_operations() -> list[tuple[str, APIRoute]]:
    """Every operation under /api/v1 (paths relative to it)."""
    return [
        (method, route)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


@pytest.mark.parametrize(
    ("method", "route"),
    api_operations(),
    ids=lambda value: getattr(value, "path", value),
)
def test_every_authenticated_operation_declares_its_caller_check(
    method: str, route: APIRoute
) -> None:
    if (method, route.path) in ANONYMOUS:
        pytest.skip("anonymous by design")

    assert CALLER_CHECKS & set(calls(route.dependant)), f"{method} {route.path}"
    assert "401" in {str(status) for status in route.responses}
