// The response checker the flow tests rely on must refuse what the contract
// does not declare; otherwise their "no failures" would prove nothing.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Contract } from "./support/contract.js";

const spec = process.env.GATEHOUSE_SPEC ?? "api/openapi.yaml";
const base = "http://127.0.0.1:1";
const json = (extra: Record<string, string> = {}) =>
  new Headers({ "Content-Type": "application/json", "X-Request-ID": "r1", ...extra });
const problem = new Headers({ "Content-Type": "application/problem+json", "X-Request-ID": "r1" });
const user = {
  id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  email: "ada@example.com",
  name: null,
  email_verified: true,
  email_verified_at: "2025-03-10T08:00:00Z",
  status: "active",
  roles: ["user"],
  created_at: "2025-03-10T08:00:00Z",
  updated_at: "2025-03-10T08:00:00Z",
  disabled_at: null,
  deleted_at: null,
};

test("the contract checker accepts declared responses and refuses the rest", () => {
  const c = new Contract(spec);
  const me = JSON.stringify({ data: user, meta: { request_id: "r1" } });
  const noStore = json({ "Cache-Control": "no-store" });
  assert.deepEqual(c.check("GET", `${base}/api/v1/users/me`, 200, noStore, me), []);
  assert.deepEqual(c.check("GET", `${base}/api/v1/users/${user.id}`, 404, problem, JSON.stringify({
    type: "urn:gatehouse:problem:not_found", title: "Not found", status: 404, code: "not_found", request_id: "r1",
  })), []);
  assert.deepEqual(c.check("POST", `${base}/api/v1/auth/logout`, 204, new Headers({ "X-Request-ID": "r1" }), ""), []);

  const refusals: Array<[string, string[]]> = [
    ["undeclared status", c.check("GET", `${base}/api/v1/users/me`, 418, problem, "{}")],
    ["unknown path", c.check("GET", `${base}/api/v1/nowhere`, 200, json(), "{}")],
    ["missing field", c.check("GET", `${base}/api/v1/users/me`, 200, noStore, JSON.stringify({ data: { id: user.id }, meta: { request_id: "r1" } }))],
    ["bad format", c.check("GET", `${base}/api/v1/users/me`, 200, noStore, JSON.stringify({ data: { ...user, id: "nope" }, meta: { request_id: "r1" } }))],
    ["null where not nullable", c.check("GET", `${base}/api/v1/users/me`, 200, noStore, JSON.stringify({ data: { ...user, email: null }, meta: { request_id: "r1" } }))],
    ["required header missing", c.check("GET", `${base}/api/v1/users/me`, 200, json(), me)],
    ["unknown problem code", c.check("GET", `${base}/api/v1/users/me`, 401, problem, JSON.stringify({
      type: "x", title: "x", status: 401, code: "no_such_code", request_id: "r1",
    }))],
    ["wrong content type", c.check("GET", `${base}/api/v1/users/me`, 401, json(), "{}")],
    ["body where none is declared", c.check("POST", `${base}/api/v1/auth/logout`, 204, json(), "{}")],
  ];
  for (const [what, errs] of refusals) assert.ok(errs.length > 0, `${what} was accepted`);
});
