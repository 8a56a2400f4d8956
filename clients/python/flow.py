"""Drive the service through a client generated from docs/openapi.json.

    python flow.py <generated package directory> <base URL>

Sign-up, login, an idempotent create (sent twice), a conditional update with the create's ETag,
a stale one (412) and a conditional read (304). Exits non-zero at the first surprise.
"""

import importlib
import sys
import uuid
from pathlib import Path
from typing import Any

PASSWORD = "password123"


def main(package_dir: Path, base_url: str) -> None:
    sys.path.insert(0, str(package_dir.parent))

    def module(name: str) -> Any:
        return importlib.import_module(f"{package_dir.name}.{name}")

    client_module, models = module("client"), module("models")
    sign_up = module("api.users.users_sign_up")
    login = module("api.auth.auth_login")
    create, update, read = (module(f"api.items.items_{op}") for op in ("create", "update", "read"))

    anonymous = client_module.Client(base_url=base_url)
    name = f"gen_{uuid.uuid4().hex[:12]}"
    email = f"{name}@example.com"
    account = sign_up.sync_detailed(
        client=anonymous, body=models.UserCreate(email=email, username=name, password=PASSWORD)
    )
    assert account.status_code == 201, account.content
    token = login.sync(client=anonymous, body=models.LoginForm(username=email, password=PASSWORD))
    assert isinstance(token, models.Token), token
    client = client_module.AuthenticatedClient(base_url=base_url, token=token.access_token)

    key = str(uuid.uuid4())
    body = models.ItemCreate(title="generated", description="by openapi-python-client")
    created = create.sync_detailed(client=client, body=body, idempotency_key=key)
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, models.ItemRead)
    retried = create.sync_detailed(client=client, body=body, idempotency_key=key)
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.parsed.id == created.parsed.id

    item_id, tag = created.parsed.id, created.headers["ETag"]
    changed = models.ItemUpdate(title="changed")
    updated = update.sync_detailed(item_id=item_id, client=client, body=changed, if_match=tag)
    assert updated.status_code == 200, updated.content
    assert updated.parsed.title == "changed"
    stale = update.sync_detailed(item_id=item_id, client=client, body=changed, if_match=tag)
    assert stale.status_code == 412, stale.content
    assert isinstance(stale.parsed, models.Problem)

    fresh = read.sync_detailed(item_id=item_id, client=client)
    assert fresh.parsed.title == "changed"
    unchanged = read.sync_detailed(
        item_id=item_id, client=client, if_none_match=fresh.headers["ETag"]
    )
    assert unchanged.status_code == 304, unchanged.content
    sys.stdout.write("flow ok\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
