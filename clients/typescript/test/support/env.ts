// What the Go test that runs these files (cmd/gatehouse/clients_test.go)
// hands over: a real gatehouse, its mail folder and an administrator.
import { randomUUID } from "node:crypto";

import { createGatehouseClient, type GatehouseClient, type GatehouseOptions } from "../../src/client.js";
import { Contract } from "./contract.js";

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`go test ./cmd/gatehouse -run TestTypeScriptClient\``);
  return v;
}

export const env = {
  baseUrl: need("GATEHOUSE_URL"),
  mailDir: need("GATEHOUSE_MAIL_DIR"),
  spec: need("GATEHOUSE_SPEC"),
  adminEmail: need("GATEHOUSE_ADMIN_EMAIL"),
  adminPassword: need("GATEHOUSE_ADMIN_PASSWORD"),
};

export const password = "correct horse battery staple";
export const newPassword = "a brand new passphrase nobody uses";

export const contract = new Contract(env.spec);

/** A new address no other test uses. */
export function newEmail(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}@example.com`;
}

/** A client whose every response is checked against the contract. */
export function newClient(options: Partial<GatehouseOptions> = {}): GatehouseClient {
  return createGatehouseClient({ baseUrl: env.baseUrl, ...options, fetch: contract.fetch(options.fetch) });
}
