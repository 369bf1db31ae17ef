/**
 * Issue 16, finding 6 (the audit part): the audit hash chain had no key, so anyone with
 * write access to the database could rewrite a record and recompute the SHA-256 hashes
 * after it, and audit.verify said ok. Now each block's hash is an HMAC-SHA256 under
 * AUDIT_KEY, which lives outside the database: the same rewrite is caught. Keys rotate
 * (AUDIT_KEYS_PREVIOUS verifies older blocks), the key is checked like every secret, and an
 * audit node in a cluster does not start without one.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { brotliCompressSync, brotliDecompressSync } from "node:zlib";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";

const KEY_1 = "audit-chain-key-one-4Rt8Wq2Zm6Xp9Lv3Nb7H";
const KEY_2 = "audit-chain-key-two-7Gh1Kd5Tf3Yw8Qs2Jc6P";
let db: TestDatabase;
let broker: ServiceBroker | null = null;
let sql: pg.Client;

type Verify = { ok: boolean; checked: number; blocks: number; seq?: number | null; problem?: string };

async function node(env: Record<string, string>): Promise<ServiceBroker> {
	await broker?.stop();
	({ broker } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger,audit", EVENT_POLL_INTERVAL_MS: "50", EVENT_PUMP_GAP_MS: "0", ...env }));
	return broker;
}

const verify = () => (broker as ServiceBroker).call<Verify, object>("audit.verify", {});

/** As an attacker with table rights: past the append-only trigger, in one transaction. */
async function asDatabaseWriter(fn: () => Promise<void>): Promise<void> {
	await sql.query("BEGIN");
	await sql.query("ALTER TABLE audit.blocks DISABLE TRIGGER USER");
	await fn();
	await sql.query("ALTER TABLE audit.blocks ENABLE TRIGGER USER");
	await sql.query("COMMIT");
}

interface Row { seq: string; body: Buffer; prev_hash: Buffer; hash: Buffer }

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

describe("finding 6: a keyed audit chain", () => {
	it("checks AUDIT_KEY like every secret, and an audit node on a transporter does not start without it", async () => {
		const random = () => randomBytes(36).toString("base64url");
		assert.throws(() => loadConfig({ AUDIT_KEY: "REPLACE_ME_WITH_32_OR_MORE_RANDOM_CHARACTERS" }), (e: unknown) => e instanceof ConfigError && /^AUDIT_KEY looks like a placeholder/.test(e.message));
		assert.throws(() => loadConfig({ AUDIT_KEY: "short" }), /AUDIT_KEY is too short/);
		const shared = random();
		assert.throws(() => loadConfig({ JWT_SECRET: shared, AUDIT_KEY: shared }), (e: unknown) => e instanceof ConfigError && /AUDIT_KEY has the same value as JWT_SECRET/.test(e.message) && !e.message.includes(shared));
		assert.throws(() => loadConfig({ AUDIT_KEYS_PREVIOUS: random() }), /AUDIT_KEYS_PREVIOUS is set without AUDIT_KEY/);
		assert.throws(() => loadConfig({ AUDIT_KEY: KEY_1, AUDIT_KEYS_PREVIOUS: KEY_1 }), /AUDIT_KEYS_PREVIOUS repeats AUDIT_KEY/);
		assert.deepEqual(loadConfig({ AUDIT_KEY: KEY_2, AUDIT_KEYS_PREVIOUS: KEY_1 }).audit, { key: KEY_2, previousKeys: [KEY_1] });
		await assert.rejects(startNode({ DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: `audit-${randomBytes(3).toString("hex")}`, SERVICES: "audit", AUDIT_KEY: "" }), /AUDIT_KEY is required when TRANSPORTER is set/);
	});

	it("catches a block rewritten with plain SHA-256 hashes recomputed from it on (what a database writer could do to the unkeyed chain)", async () => {
		const b = await node({ AUDIT_KEY: KEY_1 });
		const sys: { id: string } = await b.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
		const alice: { id: string } = await b.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000a0c01", currency: "USD" });
		const bob: { id: string } = await b.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000b0c02", currency: "USD" });
		for (let i = 0; i < 3; i++) {
			await b.call("ledger.transfers.create", { idempotencyKey: `fund-${i}`, fromAccountId: sys.id, toAccountId: alice.id, amount: 1_000 + i, currency: "USD" });
			await until(`block ${i + 2}`, async () => Number((await sql.query("SELECT count(*)::int AS n FROM audit.blocks")).rows[0]?.n) >= i + 2);
		}
		await b.call("ledger.transfers.create", { idempotencyKey: "pay", fromAccountId: alice.id, toAccountId: bob.id, amount: 500, currency: "USD" });
		await until("the payment audited", async () => (await b.call<{ items: { event: string; payload: { amount?: number } }[] }, object>("audit.list", { limit: 500 })).items.some(e => e.event === "transfer.completed" && e.payload.amount === 500));
		const good = await verify();
		assert.equal(good.ok, true);

		const rows = (await sql.query<Row>("SELECT seq::text, body, prev_hash, hash FROM audit.blocks ORDER BY seq")).rows;
		const target = rows.findIndex(r => brotliDecompressSync(r.body).toString().includes('"amount":1001'));
		assert.ok(target > 0, "a block holding the second funding");
		const original = rows.map(r => ({ ...r }));
		// The rewrite: the amount changed in the stored events, then every hash from there on
		// recomputed as plain SHA-256 over the block and the link, as one would forge a keyless chain.
		await asDatabaseWriter(async () => {
			let prev = rows[target - 1]?.hash ?? Buffer.alloc(32);
			for (const r of rows.slice(target)) {
				const body = r === rows[target] ? brotliCompressSync(Buffer.from(brotliDecompressSync(r.body).toString().replace('"amount":1001', '"amount":9001'))) : r.body;
				const hash = createHash("sha256").update(prev).update(r.seq).update(body).digest();
				await sql.query("UPDATE audit.blocks SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4", [body, prev, hash, r.seq]);
				prev = hash;
			}
		});
		const caught = await verify();
		assert.deepEqual(caught, { ok: false, checked: Number(rows[target]?.seq) - 1, blocks: target, seq: Number(rows[target]?.seq), problem: "HASH_MISMATCH" });
		// Put back as it was: ok again.
		await asDatabaseWriter(async () => {
			for (const r of original.slice(target)) await sql.query("UPDATE audit.blocks SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4", [r.body, r.prev_hash, r.hash, r.seq]);
		});
		assert.equal((await verify()).ok, true);
	});

	it("rotates keys: blocks under the previous key verify while it is listed, and not once it is gone", async () => {
		const before = await verify();
		assert.equal(before.ok, true);
		const b = await node({ AUDIT_KEY: KEY_2, AUDIT_KEYS_PREVIOUS: KEY_1 });
		await b.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-0000000c0c03", currency: "USD" });
		await until("a block under the new key", async () => (await verify()).checked > before.checked);
		const rotated = await verify();
		assert.equal(rotated.ok, true);
		await node({ AUDIT_KEY: KEY_2 });
		const withoutOld = await verify();
		assert.deepEqual([withoutOld.ok, withoutOld.seq, withoutOld.problem], [false, 1, "UNKNOWN_KEY"]);
		// A database writer holding neither key cannot make the chain verify under a key of their own.
		await node({ AUDIT_KEY: randomBytes(36).toString("base64url") });
		assert.equal((await verify()).problem, "UNKNOWN_KEY");
	});
});
