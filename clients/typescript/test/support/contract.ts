// An independent check of every response against api/openapi.yaml: Ajv
// validates the bodies, this file finds the operation and the declared
// response. It shares no code with the server or its Go tests (kin-openapi),
// so a mistake in one does not hide in the other.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { Ajv, type ValidateFunction } from "ajv";
import { parse } from "yaml";

// ajv-formats is CommonJS; require hands over the plugin itself.
const addFormats = createRequire(import.meta.url)("ajv-formats") as (ajv: Ajv) => Ajv;

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  responses: Record<string, Json>;
}
interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  params: number;
  op: Operation;
}

const specId = "openapi.yaml";

export class Contract {
  private readonly spec: Json;
  private readonly ajv: Ajv;
  private readonly routes: Route[] = [];
  private readonly compiled = new Map<string, ValidateFunction>();
  /** Every failure seen; a test asserts it stays empty. */
  readonly failures: string[] = [];
  /** operationId → statuses seen, to show what a run covered. */
  readonly seen = new Map<string, Set<number>>();

  constructor(specPath: string) {
    this.spec = parse(readFileSync(specPath, "utf8")) as Json;
    // OpenAPI 3.0 schemas are JSON Schema plus `nullable`, `example` and
    // extensions: Ajv knows `nullable`; the others carry no rule.
    this.ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true });
    addFormats(this.ajv);
    this.ajv.addFormat("password", true); // a UI hint, no rule
    this.ajv.addSchema(this.spec, specId);
    const paths = this.spec.paths as Record<string, Record<string, Operation>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!["get", "put", "post", "delete", "patch", "head", "options"].includes(method)) continue;
        const params = (template.match(/\{[^}]+\}/g) ?? []).length;
        const re = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{[^}]+\\?\}/g, "[^/]+");
        this.routes.push({ method: method.toUpperCase(), template, pattern: new RegExp(`^${re}$`), params, op });
      }
    }
    // A literal segment wins over a parameter (/users/me before /users/{id}).
    this.routes.sort((a, b) => a.params - b.params);
  }

  private resolve(obj: Json): Json {
    let cur = obj;
    while (typeof cur.$ref === "string") {
      cur = cur.$ref
        .slice(2)
        .split("/")
        .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
        .reduce<Json>((o, k) => o[k] as Json, this.spec);
    }
    return cur;
  }

  private validator(pointer: string): ValidateFunction {
    let v = this.compiled.get(pointer);
    if (!v) {
      v = this.ajv.compile({ $ref: `${specId}#${pointer}` });
      this.compiled.set(pointer, v);
    }
    return v;
  }

  /** The problems of one response; empty when it is what the contract declares. */
  check(method: string, url: string, status: number, headers: Headers, body: string): string[] {
    const path = new URL(url).pathname;
    const route = this.routes.find((r) => r.method === method && r.pattern.test(path));
    const at = `${method} ${path} → ${status}`;
    if (!route) return [`${at}: no operation in the contract`];
    const seen = this.seen.get(route.op.operationId) ?? new Set<number>();
    seen.add(status);
    this.seen.set(route.op.operationId, seen);

    const key = route.op.responses[String(status)] ? String(status) : "default";
    const declared = route.op.responses[key];
    if (!declared) return [`${at}: status not declared by ${route.op.operationId}`];
    const response = this.resolve(declared);
    const errs: string[] = [];

    for (const [name, h] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
      const header = this.resolve(h);
      const value = headers.get(name);
      if (value === null) {
        if (header.required) errs.push(`${at}: required header ${name} missing`);
        continue;
      }
      const schema = this.resolve((header.schema ?? {}) as Json);
      const typed = schema.type === "integer" || schema.type === "number" ? Number(value) : value;
      if (!this.ajv.validate(schema, typed)) {
        errs.push(`${at}: header ${name}=${value}: ${this.ajv.errorsText()}`);
      }
    }

    const content = (response.content ?? {}) as Record<string, Json>;
    const types = Object.keys(content);
    if (types.length === 0) {
      if (body.length > 0) errs.push(`${at}: body sent where the contract declares none`);
      return errs;
    }
    const type = (headers.get("Content-Type") ?? "").split(";")[0]!.trim();
    if (!types.includes(type)) {
      errs.push(`${at}: Content-Type ${type || "(none)"}, declared ${types.join(", ")}`);
      return errs;
    }
    // The pointer to the schema inside the spec, so $refs resolve in place.
    const ref = (declared.$ref as string | undefined)?.slice(1) ??
      `/paths/${encodeURIComponent(route.template.replace(/~/g, "~0").replace(/\//g, "~1"))}/${method.toLowerCase()}/responses/${key}`;
    const pointer = `${ref}/content/${type.replace(/\//g, "~1")}/schema`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return [...errs, `${at}: body is not JSON: ${body.slice(0, 200)}`];
    }
    const validate = this.validator(pointer);
    if (!validate(parsed)) {
      errs.push(`${at}: body breaks the schema: ${this.ajv.errorsText(validate.errors)}; body ${body.slice(0, 500)}`);
    }
    return errs;
  }

  /**
   * A fetch that sends the request with `next` and checks the response
   * against the contract, recording every failure.
   */
  fetch(next: (r: Request) => Promise<Response> = (r) => globalThis.fetch(r)) {
    return async (request: Request): Promise<Response> => {
      const method = request.method;
      const response = await next(request);
      const body = await response.clone().text();
      this.failures.push(...this.check(method, request.url, response.status, response.headers, body));
      return response;
    };
  }
}
