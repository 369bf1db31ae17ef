/**
 * Bad input to every ledger action is refused by its params schema before any handler
 * runs, and writes nothing: wrong types, zero, negative, fractional and too-large
 * amounts, unknown currencies, unknown fields, missing fields and very long strings.
 * A seeded fast-check run adds generated junk bodies for the money-moving actions.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";

type Kind = "uuid" | "string" | "key" | "amount" | "currency" | "int" | "bool" | "items" | "cursor" | "kind" | "code";
type Field = { name: string; kind: Kind; optional?: boolean };

const UUID = "018f0000-0000-7000-8000-000000000000";
const LONG = "x".repeat(10_000);

const transferFields: Field[] = [
	{ name: "idempotencyKey", kind: "key" },
	{ name: "fromAccountId", kind: "uuid" },
	{ name: "toAccountId", kind: "uuid" },
	{ name: "amount", kind: "amount" },
	{ name: "currency", kind: "currency" },
	{ name: "description", kind: "string", optional: true },
];

const ACTIONS: Record<string, Field[]> = {
	"ledger.accounts.open": [
		{ name: "ownerId", kind: "string", optional: true },
		{ name: "currency", kind: "currency" },
		{ name: "label", kind: "string", optional: true },
		{ name: "kind", kind: "kind", optional: true },
		{ name: "code", kind: "code", optional: true },
	],
	"ledger.accounts.get": [{ name: "id", kind: "uuid" }, { name: "ownerId", kind: "string", optional: true }],
	"ledger.accounts.list": [{ name: "ownerId", kind: "string" }, { name: "limit", kind: "int", optional: true }],
	"ledger.accounts.freeze": [{ name: "id", kind: "uuid" }],
	"ledger.accounts.unfreeze": [{ name: "id", kind: "uuid" }],
	"ledger.accounts.history": [
		{ name: "accountId", kind: "uuid" },
		{ name: "limit", kind: "int", optional: true },
		{ name: "cursor", kind: "cursor", optional: true },
	],
	"ledger.transfers.create": transferFields,
	"ledger.transfers.createMany": [{ name: "items", kind: "items" }, { name: "linked", kind: "bool", optional: true }],
	"ledger.transfers.get": [{ name: "id", kind: "uuid" }],
	"ledger.transfers.reverse": [
		{ name: "idempotencyKey", kind: "key" },
		{ name: "transferId", kind: "uuid" },
		{ name: "description", kind: "string", optional: true },
	],
	"ledger.holds.create": [...transferFields, { name: "timeoutMs", kind: "int" }],
	"ledger.holds.post": [{ name: "idempotencyKey", kind: "key" }, { name: "holdId", kind: "uuid" }, { name: "amount", kind: "amount", optional: true }],
	"ledger.holds.void": [{ name: "idempotencyKey", kind: "key" }, { name: "holdId", kind: "uuid" }],
	"ledger.holds.get": [{ name: "id", kind: "uuid" }],
	"ledger.expireHolds": [],
	"ledger.checkInvariants": [],
	"ledger.outboxLag": [],
	"ledger.stats": [],
	"ledger.health": [],
};

const validTransfer = { idempotencyKey: "k-1", fromAccountId: UUID, toAccountId: UUID.replace(/0$/, "1"), amount: 100, currency: "USD" };

function validValue(f: Field): unknown {
	const values: Record<Kind, unknown> = {
		uuid: UUID, string: "ok", key: "key-1", amount: 100, currency: "USD", int: 10, bool: true,
		items: [validTransfer], cursor: "10", kind: "user", code: "external:bank:USD",
	};
	return values[f.kind];
}

function badValues(f: Field): unknown[] {
	// null on an optional field means "not given", which is valid; on a required one it is not.
	const common = [...(f.optional ? [] : [null]), {}, [], true];
	const byKind: Record<Kind, unknown[]> = {
		uuid: ["not-a-uuid", 123, LONG, ""],
		string: [123, LONG],
		key: [123, LONG, "", "has space", "ключ"],
		amount: ["100", 0, -1, 1.5, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, NaN, Infinity, -Infinity, 1e300],
		currency: ["XXX", "usd", 840, "US", "USDX", LONG],
		int: [0, -1, 1.5, 1e12, "abc"],
		bool: ["yes", 1],
		items: [[], Array.from({ length: 101 }, () => validTransfer), [{}], [{ ...validTransfer, amount: 0 }], [{ ...validTransfer, extra: 1 }], "x"],
		cursor: ["abc", "-1", LONG],
		kind: ["admin", 1],
		code: ["no-colon", "UPPER:x", LONG],
	};
	return [...common.filter(v => !(f.kind === "bool" && v === true)), ...byKind[f.kind]];
}

function validParams(fields: Field[]): Record<string, unknown> {
	return Object.fromEntries(fields.filter(f => !f.optional).map(f => [f.name, validValue(f)]));
}

/** Every invalid variant of an action's params: one bad field at a time, a missing field, an unknown field. */
function invalidVariants(fields: Field[]): { label: string; params: Record<string, unknown> }[] {
	const base = validParams(fields);
	const out: { label: string; params: Record<string, unknown> }[] = [{ label: "unknown field", params: { ...base, unexpected: 1 } }];
	for (const f of fields) {
		for (const bad of badValues(f)) out.push({ label: `${f.name}=${JSON.stringify(bad)?.slice(0, 40)}`, params: { ...base, [f.name]: bad } });
		if (!f.optional) {
			const { [f.name]: _omit, ...rest } = base;
			out.push({ label: `missing ${f.name}`, params: rest });
		}
	}
	return out;
}

let db: TestDatabase;
let broker: ServiceBroker;
let client: pg.Client;

async function tableCounts(): Promise<Record<string, string>> {
	const res = await client.query<Record<string, string>>(`SELECT
		(SELECT count(*) FROM ledger.accounts) AS accounts, (SELECT count(*) FROM ledger.transfers) AS transfers,
		(SELECT count(*) FROM ledger.entries) AS entries, (SELECT count(*) FROM ledger.holds) AS holds,
		(SELECT count(*) FROM ledger.idempotency) AS idempotency, (SELECT count(*) FROM ledger.outbox) AS outbox`);
	return res.rows[0] ?? {};
}

async function assertValidationError(action: string, params: unknown, label: string): Promise<void> {
	await assert.rejects(broker.call(action, params), (err: { type?: string; name?: string }) => {
		assert.equal(err.type, "VALIDATION_ERROR", `${action} ${label}: got ${err.name}/${err.type}`);
		return true;
	}, `${action} ${label}: accepted`);
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger" }));
	client = new pg.Client({ connectionString: db.url });
	await client.connect();
	// Some rows exist first, so "writes nothing" compares non-trivial counts.
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
	const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "u", currency: "USD" });
	await broker.call("ledger.transfers.create", { idempotencyKey: "seed", fromAccountId: sys.id, toAccountId: a.id, amount: 5, currency: "USD" });
});

after(async () => {
	await client?.end();
	await broker?.stop();
	await db?.drop();
});

describe("ledger params validation", () => {
	for (const [action, fields] of Object.entries(ACTIONS)) {
		it(`${action} refuses every invalid variant and writes nothing`, async () => {
			const before = await tableCounts();
			const variants = invalidVariants(fields);
			assert.ok(variants.length >= 1);
			for (const v of variants) await assertValidationError(action, v.params, v.label);
			assert.deepEqual(await tableCounts(), before);
		});
	}

	it("generated junk bodies for the money-moving actions never pass validation or write", async () => {
		const before = await tableCounts();
		const junk = fc.dictionary(
			fc.oneof(fc.constantFrom("idempotencyKey", "fromAccountId", "toAccountId", "amount", "currency", "holdId", "transferId", "extra"), fc.string()),
			fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 3 }), fc.bigInt().map(String)),
		);
		const actions = ["ledger.transfers.create", "ledger.holds.create", "ledger.holds.post", "ledger.holds.void", "ledger.transfers.reverse"];
		await fc.assert(
			fc.asyncProperty(fc.constantFrom(...actions), junk, async (action, body) => {
				await assertValidationError(action, body, JSON.stringify(body).slice(0, 80));
			}),
			{ seed: 20261123, numRuns: 500 },
		);
		assert.deepEqual(await tableCounts(), before);
	});
});
