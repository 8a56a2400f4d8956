"""created_location: the new resource's path under its collection, as url_for would give it."""

import pytest
from fastapi import Request

from app.api.responses import created_location


def request_for(path: str, root_path: str = "") -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "root_path": root_path})


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/api/v1/items", "", "/api/v1/items/7"),
        # Uvicorn puts root_path in front of the path; some servers (and TestClient) do not.
        ("/svc/api/v1/items", "/svc", "/svc/api/v1/items/7"),
        ("/api/v1/items", "/svc", "/svc/api/v1/items/7"),
    ],
)
def test_the_location_is_the_collection_path_plus_the_id(
    path: str, root_path: str, expected: str
) -> None:
    assert created_location(request_for(path, root_path), 7) == expected
