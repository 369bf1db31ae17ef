/**
 * lib/json-schema.ts: each fastest-validator rule form the project uses maps to the JSON
 * Schema keywords it means, and for every params schema of the gateway and the auth,
 * ledger and users services, JSON Schema (ajv, draft 2020-12, formats on) and
 * fastest-validator agree on a pool of values: what the schema accepts the validator
 * accepts, and the reverse except for the documented narrowings (convert, trim, dates).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { createRequire } from "node:module";
import type * as FastestValidator from "fastest-validator";
import { paramsToJsonSchema, ruleToJsonSchema, isRequired, type JsonSchema } from "../../../lib/json-schema.ts";
import { v1Params } from "../../../services/api/v1.ts";
import * as authParams from "../../../services/auth/params.ts";
import * as ledgerParams from "../../../services/ledger/params.ts";
import * as usersParams from "../../../services/users/params.ts";

const addFormats = addFormatsModule.default;
// The package is CommonJS (module.exports = the class) while its types declare a default
// export, which TypeScript places at `.default.default` from an ES module; require gives
// the class itself.
const Validator: typeof FastestValidator.default.default = createRequire(import.meta.url)("fastest-validator");

describe("ruleToJsonSchema", () => {
	it("string: min, max, length, pattern, empty", () => {
		assert.deepEqual(ruleToJsonSchema({ type: "string", min: 3, max: 200, pattern: /^[\x20-\x7e]+$/ }), { type: "string", minLength: 3, maxLength: 200, pattern: "^[\\x20-\\x7e]+$" });
		assert.deepEqual(ruleToJsonSchema({ type: "string", length: 3 }), { type: "string", minLength: 3, maxLength: 3 });
		assert.deepEqual(ruleToJsonSchema({ type: "string", empty: false }), { type: "string", minLength: 1 });
		assert.deepEqual(ruleToJsonSchema({ type: "string", pattern: "^[a-z]+$" }), { type: "string", pattern: "^[a-z]+$" });
		assert.deepEqual(ruleToJsonSchema({ type: "string", max: 10, trim: true }), { type: "string", maxLength: 10 });
		assert.deepEqual(ruleToJsonSchema({ type: "string", min: 1, max: 10, trim: true }), { type: "string", minLength: 1, maxLength: 10, pattern: "^\\S(?:[\\s\\S]*\\S)?$" }, "trimmed lengths: no surrounding space");
		assert.throws(() => ruleToJsonSchema({ type: "string", pattern: /^a$/i }, {}, "x"), /x: pattern flags "i"/);
	});

	it("uuid, email and url: format and the validator's own pattern", () => {
		const u = ruleToJsonSchema({ type: "uuid" });
		assert.equal(u.type, "string");
		assert.equal(u.format, "uuid");
		assert.ok(u.pattern && new RegExp(u.pattern).test("0b1e8f3c-6f0e-4c1a-9a53-3b8f2d4c5e6f"));
		assert.ok(u.pattern && !new RegExp(u.pattern).test("0b1e8f3c-6f0e-0c1a-9a53-3b8f2d4c5e6f"), "version 0 is refused like the validator does");
		assert.deepEqual(ruleToJsonSchema({ type: "email", max: 254 }), { type: "string", format: "email", pattern: "^\\S+@\\S+\\.\\S+$", maxLength: 254 });
		assert.deepEqual(ruleToJsonSchema({ type: "url" }), { type: "string", format: "uri", pattern: "^https?://\\S+" });
	});

	it("number: integer, min, max, positive, negative", () => {
		assert.deepEqual(ruleToJsonSchema({ type: "number", integer: true, min: 1, max: 200, convert: true }), { type: "integer", minimum: 1, maximum: 200 });
		assert.deepEqual(ruleToJsonSchema({ type: "number", integer: true, positive: true, finite: true, max: Number.MAX_SAFE_INTEGER, convert: false }), {
			type: "integer", exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER,
		});
		assert.deepEqual(ruleToJsonSchema({ type: "number", negative: true }), { type: "number", exclusiveMaximum: 0 });
	});

	it("boolean and enum (with the type of its values)", () => {
		assert.deepEqual(ruleToJsonSchema({ type: "boolean", convert: true }), { type: "boolean" });
		assert.deepEqual(ruleToJsonSchema({ type: "enum", values: ["json", "csv"] }), { type: "string", enum: ["json", "csv"] });
		assert.deepEqual(ruleToJsonSchema({ type: "enum", values: [1, 2] }), { type: "integer", enum: [1, 2] });
		assert.deepEqual(ruleToJsonSchema({ type: "enum", values: ["a", 1] }), { enum: ["a", 1] });
	});

	it("array: items, min, max, unique", () => {
		assert.deepEqual(ruleToJsonSchema({ type: "array", min: 1, max: 3, unique: true, items: { type: "enum", values: ["a", "b"] } }), {
			type: "array", items: { type: "string", enum: ["a", "b"] }, minItems: 1, maxItems: 3, uniqueItems: true,
		});
	});

	it("object: props, required, strict", () => {
		const s = ruleToJsonSchema({ type: "object", strict: true, props: { a: { type: "number" }, b: { type: "string", optional: true } } });
		assert.deepEqual(s, { type: "object", properties: { a: { type: "number" }, b: { type: ["string", "null"] } }, required: ["a"], additionalProperties: false });
		assert.deepEqual(ruleToJsonSchema({ type: "object", strict: "remove", props: { a: { type: "number" } } }), { type: "object", properties: { a: { type: "number" } }, required: ["a"] });
		assert.deepEqual(ruleToJsonSchema({ type: "object" }), { type: "object" });
	});

	it("optional: not required, and null accepted unless asked not to", () => {
		assert.deepEqual(ruleToJsonSchema({ type: "enum", values: ["a"], optional: true }), { type: ["string", "null"], enum: ["a", null] });
		assert.deepEqual(ruleToJsonSchema({ type: "string", optional: true }, { optionalAcceptsNull: false }), { type: "string" });
		assert.deepEqual(ruleToJsonSchema({ type: "string", nullable: true }), { type: ["string", "null"] });
		assert.equal(isRequired({ type: "string", optional: true }), false);
		assert.equal(isRequired({ type: "string", default: "x" }), false);
		assert.equal(isRequired({ type: "string" }), true);
		assert.deepEqual(ruleToJsonSchema({ type: "number", default: 5 }), { type: "number", default: 5 });
	});

	it("date with convert: an ISO string or epoch milliseconds; without convert it cannot arrive as JSON", () => {
		const s = ruleToJsonSchema({ type: "date", convert: true });
		assert.deepEqual(s.anyOf?.map(a => a.format ?? a.type), ["date-time", "date", "integer"]);
		assert.throws(() => ruleToJsonSchema({ type: "date" }, {}, "d"), /d: a date rule without `convert: true`/);
	});

	it("refs by identity and by bare type, null added around them when optional", () => {
		const currency = { type: "enum", values: ["EUR", "USD"] } as const;
		const refs = new Map<object, string>([[currency, "#/C"]]);
		assert.deepEqual(ruleToJsonSchema(currency, { refs }), { $ref: "#/C" });
		assert.deepEqual(ruleToJsonSchema({ ...currency }, { refs }), { type: "string", enum: ["EUR", "USD"] }, "a copy is not the same rule");
		const typeRefs = { uuid: "#/U" };
		assert.deepEqual(ruleToJsonSchema({ type: "uuid" }, { typeRefs }), { $ref: "#/U" });
		assert.deepEqual(ruleToJsonSchema({ type: "uuid", optional: true }, { typeRefs }), { anyOf: [{ $ref: "#/U" }, { type: "null" }] });
		assert.deepEqual(ruleToJsonSchema({ type: "uuid", optional: true }, { typeRefs, optionalAcceptsNull: false }), { $ref: "#/U" });
	});

	it("several rules: any of them", () => {
		assert.deepEqual(ruleToJsonSchema([{ type: "number" }, { type: "string" }]), { anyOf: [{ type: "number" }, { type: "string" }] });
		assert.deepEqual(ruleToJsonSchema({ type: "multi", rules: [{ type: "boolean" }, { type: "number" }] }), { anyOf: [{ type: "boolean" }, { type: "number" }] });
	});

	it("a key the validator ignores throws by default, or is reported", () => {
		assert.throws(() => ruleToJsonSchema({ type: "url", max: 2_000 }, {}, "webhook.url"), /webhook\.url: fastest-validator ignores `max` on a url rule/);
		assert.throws(() => ruleToJsonSchema({ type: "string", maxx: 3 }), /ignores `maxx`/);
		const seen: string[] = [];
		assert.deepEqual(ruleToJsonSchema({ type: "url", max: 2_000 }, { onIgnored: (p, k) => seen.push(`${p}: ${k}`) }, "u"), { type: "string", format: "uri", pattern: "^https?://\\S+" });
		assert.deepEqual(seen, ["u: max"]);
	});

	it("refuses what it cannot express", () => {
		assert.throws(() => ruleToJsonSchema("string|min:3"), /shorthand/);
		assert.throws(() => ruleToJsonSchema({ type: "luhn" }), /not supported/);
		assert.throws(() => ruleToJsonSchema({ type: "string", custom: () => true }), /custom/);
		assert.throws(() => paramsToJsonSchema({ $$root: true, x: { type: "string" } }), /\$\$root/);
	});
});

describe("paramsToJsonSchema", () => {
	it("a strict params schema is a closed object of its fields", () => {
		assert.deepEqual(paramsToJsonSchema(v1Params.setRoles), {
			type: "object",
			properties: {
				id: ruleToJsonSchema({ type: "uuid" }),
				roles: { type: "array", items: { type: "string", enum: ["user", "admin", "support", "auditor"] }, minItems: 1, maxItems: 4 },
				// Why, for the audit log (an optional string: null is accepted as absent).
				reason: { type: ["string", "null"], maxLength: 500 },
			},
			required: ["id", "roles"],
			additionalProperties: false,
		});
		assert.deepEqual(paramsToJsonSchema({ $$strict: true }), { type: "object", properties: {}, additionalProperties: false });
	});

	it("the gateway's params schemas have no constraint the validator ignores", () => {
		const ignored: string[] = [];
		for (const [name, schema] of Object.entries(v1Params)) paramsToJsonSchema(schema, { onIgnored: (p, k) => ignored.push(`${p}: ${k}`) }, name);
		assert.deepEqual(ignored, []);
	});
});

// ---- Agreement with fastest-validator ----

const ajv = new Ajv2020({ strict: false, allErrors: false });
addFormats(ajv);
const fv = new Validator();

const UUID4 = "0b1e8f3c-6f0e-4c1a-9a53-3b8f2d4c5e6f";

/** Values near a rule's edges, and a set of wrong ones. */
function pool(rule: Record<string, unknown>): unknown[] {
	const out: unknown[] = [undefined, null, true, false, 0, -1, 1, 1.5, 3, 2 ** 60, "", " ", "a", "abc", "1", "true", "12", "x".repeat(300), [], [1], {}, { a: 1 }];
	out.push(UUID4, UUID4.toUpperCase(), "00000000-0000-0000-0000-000000000000", "0b1e8f3c-6f0e-0c1a-9a53-3b8f2d4c5e6f", `${UUID4}x`);
	out.push("a@example.com", "a@b", "not an email", "https://example.com/hook", "ftp://example.com", "http://", "2026-01-31", "2026-01-31T10:00:00Z", "1700000000000", 1_700_000_000_000);
	out.push("+442071234567", "123456", "12345", "en", "en-GB", "EUR", "USD", "user", "admin", "card", "json", "csv", "payment.completed");
	for (const k of ["min", "max", "length"]) {
		const n = rule[k];
		if (typeof n === "number" && n < 10_000) out.push(n, n - 1, n + 1, "a".repeat(n), "a".repeat(Math.max(0, n - 1)), "a".repeat(n + 1));
	}
	if (Array.isArray(rule["values"])) out.push(...rule["values"], [rule["values"][0]], [rule["values"][0], rule["values"][0]]);
	if (rule["type"] === "array" && rule["items"] && typeof rule["items"] === "object") {
		for (const v of pool({ ...rule["items"], type: String((rule["items"] as { type?: unknown }).type) }).slice(0, 60)) out.push([v]);
	}
	if (rule["type"] === "object") out.push({ perTransferMinor: 1, perDayMinor: 2 }, { language: "en", notifyEmail: true }, { phone: "+442071234567" }, { language: 3 });
	return out;
}

/** Where the validator is knowingly wider than the document (lib/json-schema.ts's header). */
function narrowing(rule: Record<string, unknown>, value: unknown): boolean {
	if (rule["type"] === "date") return true;
	// convert: Number(value) (of a string, a boolean, an array…) or "true"/"1"/"on"; the document shows the typed value.
	if (rule["convert"] === true && typeof value !== (rule["type"] === "boolean" ? "boolean" : "number")) return true;
	if (rule["trim"] === true && typeof value === "string" && value !== value.trim()) return true;
	return false;
}

const SCHEMA_SETS: [string, Record<string, unknown>][] = [["api", v1Params], ["auth", authParams], ["ledger", ledgerParams], ["users", usersParams]];

describe("agreement with fastest-validator", () => {
	for (const [set, mod] of SCHEMA_SETS) {
		it(`${set}: every field of every params schema`, () => {
			let checked = 0;
			let bothAccept = 0;
			for (const [name, schema] of Object.entries(mod)) {
				if (typeof schema !== "object" || schema === null || !("$$strict" in schema)) continue;
				for (const [field, rule] of Object.entries(schema)) {
					if (field.startsWith("$$") || typeof rule !== "object" || rule === null) continue;
					const one = { $$strict: true, [field]: rule };
					// Ignored keys (none in the gateway's schemas, see above) are left out, as in the document.
					const json: JsonSchema = paramsToJsonSchema(one, { onIgnored: () => undefined }, `${name}.${field}`);
					const jsonCheck = ajv.compile(json);
					const fvCheck = fv.compile(structuredClone(one));
					for (const value of pool(rule as Record<string, unknown>)) {
						const params = value === undefined ? {} : { [field]: value };
						const byJson = jsonCheck(structuredClone(params));
						const byFv = fvCheck(structuredClone(params)) === true;
						checked++;
						if (byJson && byFv) bothAccept++;
						const where = `${set}.${name}.${field} = ${JSON.stringify(value)?.slice(0, 80)}`;
						if (byJson) assert.ok(byFv, `the schema accepts what the validator refuses: ${where}`);
						if (byFv && !narrowing(rule as Record<string, unknown>, value)) assert.ok(byJson, `the validator accepts what the schema refuses: ${where} ${JSON.stringify(jsonCheck.errors)}`);
					}
				}
			}
			assert.ok(checked > 100 && bothAccept > 20, `checked ${checked}, both accepted ${bothAccept}`);
		});
	}
});
