/**
 * The OpenAPI document served at /api/v1/openapi.json is a valid OpenAPI 3.1 document
 * (checked by an OpenAPI validator library) and lists exactly the gateway's routes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { ServiceBroker } from "moleculer";
import { startNode } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { PRIVATE_ALIASES, PROVIDER_CALLBACK_ROUTE, PUBLIC_ALIASES } from "../../services/api/v1.ts";

const dataDir = mkdtempSync(join(tmpdir(), "paymesh-openapi-"));
let broker: ServiceBroker;
let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

before(async () => {
	({ broker } = await startNode({ DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1" }));
	const res = await fetch(`http://127.0.0.1:${gatewayPort(broker)}/api/v1/openapi.json`);
	assert.equal(res.status, 200);
	doc = (await res.json()) as typeof doc;
});

after(async () => {
	await broker?.stop();
	rmSync(dataDir, { recursive: true, force: true });
});

function routeKeys(aliases: Record<string, string>, prefix: string): string[] {
	return Object.keys(aliases).map(k => {
		const [method, path] = k.split(" ") as [string, string];
		return `${method.toLowerCase()} ${prefix}${path.replace(/:(\w+)/g, "{$1}")}`;
	});
}

describe("OpenAPI document", () => {
	it("is valid OpenAPI 3.1", async () => {
		const validator = new Validator();
		const res = await validator.validate(structuredClone(doc));
		assert.equal(res.valid, true, JSON.stringify(res.errors, null, 1)?.slice(0, 2_000));
		assert.equal(validator.version, "3.1");
	});

	it("lists exactly the gateway's /api/v1 routes", () => {
		const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map(m => `${m} ${path}`)).sort();
		const served = [...routeKeys(PUBLIC_ALIASES, "/api/v1/auth"), ...routeKeys(PRIVATE_ALIASES, "/api/v1"), ...routeKeys({ [PROVIDER_CALLBACK_ROUTE]: "" }, "/api/v1/providers")].sort();
		assert.deepEqual(documented, served);
	});
});
