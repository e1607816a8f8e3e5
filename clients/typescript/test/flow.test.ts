// A client team's flows, end to end, with the TypeScript client against a
// real gatehouse. Every response is also checked against the contract.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { createGatehouseClient, pages, problemCode, type Tokens } from "../src/client.js";
import { contract, env, newClient, newEmail, newPassword, password } from "./support/env.js";
import { tokenFromMail } from "./support/mail.js";

afterEach(() => {
  const failures = contract.failures.splice(0);
  assert.deepEqual(failures, [], "responses that break the contract");
});

test("a user registers, verifies, logs in, refreshes, changes the password and logs out", async () => {
  const email = newEmail("flow");
  const api = newClient();

  const reg = await api.POST("/api/v1/auth/register", { body: { email, password, name: "Ada Flow" } });
  assert.equal(reg.response.status, 202);

  const token = await tokenFromMail(env.mailDir, email, "Confirm your email address");
  const verified = await api.POST("/api/v1/auth/email/verify", { body: { token } });
  assert.equal(verified.response.status, 204, JSON.stringify(verified.error));

  const login = await api.login({ email, password });
  assert.ok(login.data, JSON.stringify(login.error));
  assert.equal(api.tokens.get()?.access_token, login.data.data.access_token);
  assert.equal(api.devices.get(), login.data.data.device_token);

  const me = await api.GET("/api/v1/users/me");
  assert.ok(me.data, JSON.stringify(me.error));
  assert.equal(me.data.data.email, email);
  assert.equal(me.data.data.email_verified, true);
  assert.deepEqual(me.data.data.roles, ["user"]);

  // Refresh: a new pair, the new access token works.
  const before = api.tokens.get()!;
  const refreshed = await api.POST("/api/v1/auth/refresh", { body: { refresh_token: before.refresh_token } });
  assert.ok(refreshed.data, JSON.stringify(refreshed.error));
  assert.notEqual(refreshed.data.data.refresh_token, before.refresh_token);
  api.tokens.set(refreshed.data.data);
  assert.equal((await api.GET("/api/v1/users/me")).response.status, 200);

  // A second device: two sessions, this one marked current.
  const other = newClient();
  const otherLogin = await other.POST("/api/v1/auth/login", { body: { email, password } });
  assert.ok(otherLogin.data);
  other.tokens.set(otherLogin.data.data);
  const sessions = await api.GET("/api/v1/users/me/sessions", { params: { query: { limit: 10 } } });
  assert.ok(sessions.data, JSON.stringify(sessions.error));
  assert.equal(sessions.data.data.length, 2);
  assert.equal(sessions.data.data.filter((s) => s.current).length, 1);

  // A wrong current password is refused with a problem the client can branch on.
  const wrong = await api.PUT("/api/v1/users/me/password", {
    body: { current_password: "not the password at all", new_password: newPassword },
  });
  assert.ok(["invalid_credentials", "forbidden"].includes(problemCode(wrong.error) ?? ""), JSON.stringify(wrong.error));

  const changed = await api.PUT("/api/v1/users/me/password", {
    body: { current_password: password, new_password: newPassword },
  });
  assert.ok([200, 204].includes(changed.response.status), JSON.stringify(changed.error));
  // A 204 keeps the session but refuses its access token from now on: the
  // client refreshes once and retries. A 200 hands over the new pair itself.
  const pair = (changed.data as { data?: Tokens } | undefined)?.data;
  if (pair) api.tokens.set(pair);
  assert.equal((await api.GET("/api/v1/users/me")).response.status, 200);

  // The other device's session ended: its token is refused, and so is its
  // refresh, so the client reports the session over and clears its tokens.
  const otherMe = await other.GET("/api/v1/users/me");
  assert.equal(otherMe.response.status, 401);
  assert.equal(problemCode(otherMe.error), "invalid_token");
  assert.equal(other.tokens.get(), undefined);

  const oldLogin = await newClient().POST("/api/v1/auth/login", { body: { email, password } });
  assert.equal(problemCode(oldLogin.error), "invalid_credentials");
  assert.ok((await newClient().POST("/api/v1/auth/login", { body: { email, password: newPassword } })).data);

  // Logout: the access token it held is refused from then on; the device
  // token stays for the next login.
  const held = api.tokens.get()!;
  await api.logout();
  assert.equal(api.tokens.get(), undefined);
  assert.ok(api.devices.get());
  const stale = await newClient().GET("/api/v1/users/me", {
    headers: { Authorization: `Bearer ${held.access_token}` },
  });
  assert.equal(stale.response.status, 401);
  assert.equal(problemCode(stale.error), "invalid_token");
  const anonymous = await api.GET("/api/v1/users/me");
  assert.equal(problemCode(anonymous.error), "unauthorized");
});

test("a refused access token is refreshed once and the call retried once", async () => {
  const email = newEmail("retry");
  const calls: string[] = [];
  const logins: Record<string, unknown>[] = [];
  const counting = async (r: Request) => {
    calls.push(`${r.method} ${new URL(r.url).pathname}`);
    if (new URL(r.url).pathname.endsWith("/auth/login")) logins.push(await r.clone().json());
    return globalThis.fetch(r);
  };
  let ended = 0;
  const api = newClient({ fetch: counting, onSessionEnded: () => ended++ });
  assert.equal((await api.POST("/api/v1/auth/register", { body: { email, password } })).response.status, 202);
  const login = await api.login({ email, password });
  assert.ok(login.data);
  assert.equal(logins[0]!.device_token, undefined);
  // An access token the server refuses (as an expired one would be).
  const spoil = () => {
    const t = api.tokens.get()!;
    api.tokens.set({ ...t, access_token: `${t.access_token.slice(0, -4)}AAAA` });
  };
  api.tokens.set(login.data.data);
  spoil();
  calls.length = 0;

  // A call with a body: the retry sends it again intact.
  const renamed = await api.PATCH("/api/v1/users/me", { body: { name: "Retried" } });
  assert.ok(renamed.data, JSON.stringify(renamed.error));
  assert.equal(renamed.data.data.name, "Retried");
  assert.deepEqual(calls, ["PATCH /api/v1/users/me", "POST /api/v1/auth/refresh", "PATCH /api/v1/users/me"]);

  // Concurrent calls share one refresh.
  spoil();
  calls.length = 0;
  const all = await Promise.all([1, 2, 3].map(() => api.GET("/api/v1/users/me")));
  assert.deepEqual(all.map((r) => r.response.status), [200, 200, 200]);
  assert.equal(calls.filter((c) => c.endsWith("/auth/refresh")).length, 1);

  // A refused refresh ends the session: one try, no loop, the 401 comes back.
  const t = api.tokens.get()!;
  api.tokens.set({ ...t, access_token: "not-a-token", refresh_token: "not-a-refresh-token" });
  calls.length = 0;
  const refused = await api.GET("/api/v1/users/me");
  assert.equal(problemCode(refused.error), "invalid_token");
  assert.deepEqual(calls, ["GET /api/v1/users/me", "POST /api/v1/auth/refresh"]);
  assert.equal(api.tokens.get(), undefined);
  assert.equal(ended, 1);

  // A refresh that fails for a passing reason (here a 503) ends nothing: the
  // pair is kept and the next call refreshes and succeeds.
  const relogin = await api.login({ email, password });
  assert.ok(relogin.data, JSON.stringify(relogin.error));
  assert.equal(logins[1]!.device_token, login.data.data.device_token, "the second login presents the first one's device token");
  let down = true;
  const flaky = (r: Request) =>
    down && new URL(r.url).pathname.endsWith("/auth/refresh")
      ? Promise.resolve(new Response(JSON.stringify({ type: "urn:gatehouse:problem:service_unavailable", title: "Service unavailable",
          status: 503, code: "service_unavailable", request_id: "r" }), { status: 503, headers: { "Content-Type": "application/problem+json" } }))
      : globalThis.fetch(r);
  const shaky = createGatehouseClient({ baseUrl: env.baseUrl, fetch: flaky, tokens: api.tokens, onSessionEnded: () => ended++ });
  spoil();
  assert.equal(problemCode((await shaky.GET("/api/v1/users/me")).error), "invalid_token");
  assert.ok(api.tokens.get(), "a refresh answered 503 cleared the tokens");
  assert.equal(ended, 1);
  down = false;
  assert.equal((await shaky.GET("/api/v1/users/me")).response.status, 200);

  // Other refusals are not retried.
  const plain = createGatehouseClient({ baseUrl: env.baseUrl, fetch: contract.fetch(counting) });
  calls.length = 0;
  const noToken = await plain.GET("/api/v1/users/me");
  assert.equal(problemCode(noToken.error), "unauthorized");
  assert.deepEqual(calls, ["GET /api/v1/users/me"]);
});

test("an administrator creates users, pages through them, assigns roles and reads the audit", async () => {
  const admin = newClient();
  const login = await admin.POST("/api/v1/auth/login", { body: { email: env.adminEmail, password: env.adminPassword } });
  assert.ok(login.data, JSON.stringify(login.error));
  admin.tokens.set(login.data.data);
  const me = await admin.GET("/api/v1/users/me");
  assert.ok(me.data);
  const adminId = me.data.data.id;

  const prefix = newEmail("page").split("@")[0]!;
  const created: string[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await admin.POST("/api/v1/users", {
      body: { email: `${prefix}.${i}@example.com`, password, name: `Paged ${i}` },
    });
    assert.equal(r.response.status, 201, JSON.stringify(r.error));
    assert.ok(r.data && r.response.headers.get("Location")?.endsWith(`/api/v1/users/${r.data.data.id}`));
    created.push(r.data.data.id);
  }
  const taken = await admin.POST("/api/v1/users", { body: { email: `${prefix}.0@example.com`, password } });
  assert.equal(problemCode(taken.error), "email_taken");

  // Pages of 2 to the end: every user once, newest first.
  const listed: string[] = [];
  let cursor: string | undefined;
  let pageCount = 0;
  for (;;) {
    const query = { email: `${prefix}.`, limit: 2, cursor };
    const page = await admin.GET("/api/v1/users", { params: { query } });
    assert.ok(page.data, JSON.stringify(page.error));
    assert.equal(page.data.meta.limit, 2);
    listed.push(...page.data.data.map((u) => u.id));
    pageCount++;
    if (page.data.meta.next_cursor === undefined) break;
    cursor = page.data.meta.next_cursor;
  }
  assert.deepEqual(listed, [...created].reverse());
  assert.equal(pageCount, 3);

  // Roles: the catalogue, then an assignment the user sees at the next login.
  const roles = await admin.GET("/api/v1/roles");
  assert.ok(roles.data);
  const adminRole = roles.data.data.find((r) => r.name === "admin");
  assert.ok(adminRole?.permissions.includes("users:read"));
  const someone = newClient();
  const someoneLogin = await someone.POST("/api/v1/auth/login", { body: { email: `${prefix}.0@example.com`, password } });
  assert.ok(someoneLogin.data);
  someone.tokens.set(someoneLogin.data.data);
  const forbidden = await someone.GET("/api/v1/users");
  assert.equal(forbidden.response.status, 403);
  assert.equal(problemCode(forbidden.error), "forbidden");
  const assigned = await admin.PUT("/api/v1/users/{id}/roles", {
    params: { path: { id: created[0]! } },
    body: { roles: ["admin", "user"] },
  });
  assert.ok(assigned.data, JSON.stringify(assigned.error));
  assert.deepEqual(assigned.data.data.roles, ["admin", "user"]);

  // The audit trail of this administrator's creations, paged to the end.
  const events: string[] = [];
  for await (const e of pages((cursor) =>
    admin.GET("/api/v1/audit-events", { params: { query: { actor_id: adminId, action: "user.created", limit: 2, cursor } } }),
  )) {
    events.push(e.subject_id ?? "");
  }
  for (const id of created) assert.ok(events.includes(id), `no user.created event for ${id}`);
  const roleEvents = await admin.GET("/api/v1/audit-events", {
    params: { query: { subject_id: created[0]!, action: "user.roles.changed" } },
  });
  assert.equal(roleEvents.data?.data.length, 1);
});
