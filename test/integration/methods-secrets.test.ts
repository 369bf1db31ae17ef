/**
 * Saved payment methods' tokens at rest: sealed under SECRETS_KEY and bound to their row
 * (a sealed token copied to another method's row does not open: the payment fails, it is
 * never made with the other token), and sealed again under a new key at the next start
 * when the old one is retired to SECRETS_KEYS_PREVIOUS, each still opening to the token the
 * provider issued.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { methods } from "../../contracts/methods.ts";
import { secretKeyring } from "../../lib/secret-box.ts";

const KEY_1 = randomBytes(36).toString("base64url");
const KEY_2 = randomBytes(36).toString("base64url");
const NEXT_YEAR = new Date().getUTCFullYear() + 1;

let db: TestDatabase;
let sql: pg.Client;
let broker: ServiceBroker | null = null;

async function start(env: Record<string, string>): Promise<ServiceBroker> {
	await broker?.stop();
	broker = (await startNode({ DATABASE_URL: db.url, SERVICES: "methods,providers", LOG_LEVEL: "fatal", ...env })).broker;
	return broker;
}

const sealedOf = async (id: string) => (await sql.query<{ t: string }>("SELECT token_sealed AS t FROM methods.methods WHERE id = $1", [id])).rows[0]?.t ?? "";

before(async () => {
	db = await createTestDatabase();
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
});

after(async () => {
	await broker?.stop();
	await sql?.end();
	await db?.drop();
});

describe("payment method tokens at rest", () => {
	it("bind each sealed token to its row and seal them again under a new key", async () => {
		const b = await start({ SECRETS_KEY: KEY_1 });
		const userId = randomUUID();
		const cards = ["4242424242424242", "5555555555554444", "378282246310005"];
		const saved = [];
		for (const number of cards) saved.push(await call(b, methods.add, { userId, card: { number, expMonth: 6, expYear: NEXT_YEAR, cvc: number.startsWith("3") ? "1234" : "123", holderName: "Alice" } }));
		const bank = await call(b, methods.add, { userId, bankAccount: { iban: "GB82WEST12345698765432", holderName: "Alice" } });
		const tokens = new Map<string, string>();
		for (const m of saved) tokens.set(m.id, (await call(b, methods.resolve, { userId, id: m.id, use: "topup" })).token);
		tokens.set(bank.id, (await call(b, methods.resolve, { userId, id: bank.id, use: "payout" })).token);
		const key1 = secretKeyring(KEY_1)[0]?.id ?? "";
		for (const id of tokens.keys()) assert.ok((await sealedOf(id)).startsWith(`sb1.${key1}.`));

		// A sealed token moved to another method's row does not open there.
		const [first, second] = saved;
		assert.ok(first && second);
		const secondSealed = await sealedOf(second.id);
		await sql.query("UPDATE methods.methods SET token_sealed = $1 WHERE id = $2", [await sealedOf(first.id), second.id]);
		await assert.rejects(call(b, methods.resolve, { userId, id: second.id, use: "topup" }), /does not open/);
		await sql.query("UPDATE methods.methods SET token_sealed = $1 WHERE id = $2", [secondSealed, second.id]);

		// Rotation: the new key current, the old one retired; every token is sealed again and still the provider's.
		const b2 = await start({ SECRETS_KEY: KEY_2, SECRETS_KEYS_PREVIOUS: KEY_1 });
		const key2 = secretKeyring(KEY_2)[0]?.id ?? "";
		await until("every token sealed under the new key", async () => (await sql.query("SELECT count(*)::int AS n FROM methods.methods WHERE NOT starts_with(token_sealed, $1)", [`sb1.${key2}.`])).rows[0].n === 0);
		for (const [id, token] of tokens) assert.equal((await call(b2, methods.resolve, { userId, id, use: id === bank.id ? "payout" : "topup" })).token, token);
		// The retired key alone no longer opens them.
		const b3 = await start({ SECRETS_KEY: KEY_1 });
		await assert.rejects(call(b3, methods.resolve, { userId, id: bank.id, use: "payout" }), /does not open/);
	});
});
