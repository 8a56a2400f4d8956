from fastapi.testclient import TestClient

from app.models import User


def test_sign_up_then_log_in_then_create_and_list_items(client: TestClient) -> None:
    created = client.post(
        "/api/v1/users",
        json={"email": "Ada@Example.com", "username": "ada", "password": "secret123"},
    )
    token = client.post(
        "/api/v1/auth/token", data={"username": "ada@example.com", "password": "secret123"}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    item = client.post("/api/v1/items", json={"title": "first"}, headers=headers)

    listed = client.get("/api/v1/items", headers=headers)

    assert created.status_code == 201
    assert created.json()["email"] == "ada@example.com"
    assert item.status_code == 201
    assert listed.json()["items"] == [item.json()]
    assert listed.json()["total"] == 1


def test_me_reads_the_token_user(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/users/me", headers=user_headers)

    assert response.status_code == 200
    assert response.json()["id"] == user.id
