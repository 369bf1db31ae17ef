/**
 * The OpenAPI document served at /api/v1/openapi.json is a valid OpenAPI 3.1 document
 * (checked by an OpenAPI validator library), passes Redocly's recommended lint rules with
 * no error, lists exactly the gateway's routes and is generated from their actions.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { ServiceBroker } from "moleculer";
import { startNode } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { PRIVATE_ALIASES, PROVIDER_CALLBACK_ROUTE, PUBLIC_ALIASES, v1Params } from "../../services/api/v1.ts";
import { KYC_UPLOAD_ALIASES } from "../../services/api/identity.ts";

const REDOCLY = new URL("../../node_modules/@redocly/cli/bin/cli.js", import.meta.url).pathname;

interface LintReport {
	totals: { errors: number; warnings: number };
	problems: { ruleId: string; severity: string; message: string; location: { pointer?: string }[] }[];
}

/** Runs `redocly lint` with its recommended rules on a file; resolves with its JSON report. */
function redoclyLint(file: string): Promise<LintReport> {
	// No telemetry, no update check: the test must not reach the network.
	const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1" };
	return new Promise((resolve, reject) => {
		execFile(process.execPath, [REDOCLY, "lint", "--extends", "recommended", "--format", "json", "--max-problems", "1000", file], { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
			// It exits 1 when it finds errors; the report is on stdout either way.
			try {
				resolve(JSON.parse(stdout) as LintReport);
			} catch {
				reject(new Error(`redocly lint gave no report (${err?.message ?? "exit 0"}): ${stderr.slice(0, 2_000)}`));
			}
		});
	});
}

type Operation = {
	operationId?: string;
	tags?: string[];
	security?: Record<string, string[]>[];
	parameters?: { name: string; in: string; required?: boolean }[];
	requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
	responses: Record<string, unknown>;
};

const dataDir = mkdtempSync(join(tmpdir(), "paymesh-openapi-"));
let broker: ServiceBroker;
let doc: { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } };

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
		const served = [...routeKeys(PUBLIC_ALIASES, "/api/v1/auth"), ...routeKeys(KYC_UPLOAD_ALIASES, "/api/v1/kyc"), ...routeKeys(PRIVATE_ALIASES, "/api/v1"), ...routeKeys({ [PROVIDER_CALLBACK_ROUTE]: "" }, "/api/v1/providers")].sort();
		assert.deepEqual(documented, served);
	});

	it("passes Redocly's recommended lint rules with no error", async () => {
		const file = join(dataDir, "openapi.json");
		writeFileSync(file, JSON.stringify(doc, null, 1));
		const report = await redoclyLint(file);
		const errors = report.problems.filter(p => p.severity === "error");
		assert.equal(report.totals.errors, 0, JSON.stringify(errors, null, 1).slice(0, 3_000));
		// Warnings are allowed, but only the known one: no licence is declared for this private API.
		assert.deepEqual(report.problems.map(p => p.ruleId).sort(), ["info-license"], JSON.stringify(report.problems, null, 1).slice(0, 3_000));
	});

	it("names each operation after its gateway action, with a tag, and bearer security exactly on the token routes", () => {
		const byRoute = new Map<string, string>([
			...Object.entries(PUBLIC_ALIASES).map(([k, a]): [string, string] => [routeKeys({ [k]: "" }, "/api/v1/auth")[0] ?? "", a]),
			...Object.entries(PRIVATE_ALIASES).map(([k, a]): [string, string] => [routeKeys({ [k]: "" }, "/api/v1")[0] ?? "", a]),
			...Object.entries(KYC_UPLOAD_ALIASES).map(([k, a]): [string, string] => [routeKeys({ [k]: "" }, "/api/v1/kyc")[0] ?? "", a]),
		]);
		const privateRoutes = new Set([...routeKeys(PRIVATE_ALIASES, "/api/v1"), ...routeKeys(KYC_UPLOAD_ALIASES, "/api/v1/kyc")]);
		for (const [path, ops] of Object.entries(doc.paths)) {
			for (const [method, op] of Object.entries(ops)) {
				const key = `${method} ${path}`;
				const action = byRoute.get(key);
				if (action) assert.equal(op.operationId, action.replace(/^api\./, ""), key);
				else assert.equal(op.operationId, "providerCallback", key);
				assert.equal(op.tags?.length, 1, key);
				assert.deepEqual(op.security, privateRoutes.has(key) ? [{ bearerAuth: [] }] : [], key);
				for (const status of ["400", "429", "503"]) assert.ok(op.responses[status], `${key} documents ${status}`);
				assert.equal(Boolean(op.responses["401"]), privateRoutes.has(key) || ["login", "refresh", "clientToken", "providerCallback"].includes(op.operationId ?? ""), `${key} 401`);
			}
		}
	});

	it("takes request bodies and parameters from the actions' params schemas", () => {
		const transfer = doc.paths["/api/v1/transfers"]?.["post"];
		assert.equal(transfer?.requestBody?.content["application/json"]?.schema.$ref, "#/components/schemas/CreateTransferRequest");
		const body = doc.components.schemas["CreateTransferRequest"];
		assert.deepEqual(Object.keys(body?.properties ?? {}).sort(), Object.keys(v1Params.transfer).filter(k => !k.startsWith("$$")).sort());
		assert.deepEqual(body?.required?.sort(), ["amount", "currency", "fromAccountId", "toAccountId"]);
		assert.ok(transfer?.parameters?.some(p => p.in === "header" && p.name === "Idempotency-Key" && p.required));

		const history = doc.paths["/api/v1/accounts/{id}/transactions"]?.["get"];
		assert.deepEqual(history?.parameters?.map(p => `${p.in} ${p.name}${p.required ? "" : "?"}`), ["path id", "query limit?", "query cursor?"]);
		assert.equal(history?.requestBody, undefined);
	});
});
