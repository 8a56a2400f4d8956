// Drives the service through openapi-fetch typed by openapi-typescript from docs/openapi.json:
//   node build/flow.js <base URL>
// Sign-up, login, an idempotent create (sent twice), a conditional update with the create's
// ETag, a stale one (412) and a conditional read (304). Exits non-zero at the first surprise.
import createClient from "openapi-fetch";
import { randomUUID } from "node:crypto";
import { strict as assert } from "node:assert";
import type { paths } from "./schema.js";

const baseUrl = process.argv[2];
assert.ok(baseUrl, "usage: node build/flow.js <base URL>");

const api = createClient<paths>({ baseUrl });
const name = `ts_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
const email = `${name}@example.com`;
const password = "password123";

const signUp = await api.POST("/api/v1/users", {
  body: { email, username: name, password },
});
assert.equal(signUp.response.status, 201);

const login = await api.POST("/api/v1/auth/token", {
  body: { username: email, password },
  bodySerializer: (form) => new URLSearchParams(form as Record<string, string>),
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
});
assert.ok(login.data, JSON.stringify(login.error));
const auth = { Authorization: `Bearer ${login.data.access_token}` };

const idempotencyKey = randomUUID();
const create = () =>
  api.POST("/api/v1/items", {
    body: { title: "typed", description: "by openapi-fetch" },
    params: { header: { "Idempotency-Key": idempotencyKey } },
    headers: auth,
  });
const created = await create();
assert.ok(created.data, JSON.stringify(created.error));
const itemId: number = created.data.id;
const tag = created.response.headers.get("ETag");
assert.ok(tag);
const retried = await create();
assert.equal(retried.response.headers.get("Idempotent-Replayed"), "true");
assert.equal(retried.data?.id, itemId);

const path = { item_id: itemId };
const update = () =>
  api.PATCH("/api/v1/items/{item_id}", {
    params: { path, header: { "If-Match": tag } },
    body: { title: "changed" },
    headers: auth,
  });
const updated = await update();
assert.equal(updated.data?.title, "changed");
const stale = await update();
assert.equal(stale.response.status, 412);
assert.equal(stale.error?.status, 412);

const fresh = await api.GET("/api/v1/items/{item_id}", { params: { path }, headers: auth });
const current = fresh.response.headers.get("ETag");
assert.ok(current);
const unchanged = await api.GET("/api/v1/items/{item_id}", {
  params: { path, header: { "If-None-Match": current } },
  headers: auth,
});
assert.equal(unchanged.response.status, 304);
console.log("flow ok");
