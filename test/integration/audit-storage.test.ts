/**
 * The audit log's storage and its migration, on real PostgreSQL, through the service's own
 * append path (services/audit/log.ts):
 * - 5,000 transfer.completed events in consumer pages of 50-200 cost at most 150 bytes each
 *   in the audit schema (table, TOAST, indexes), and every one of them is in the log (issue
 *   15 item 9: the audit's share of at most 2,500 bytes per payment; it was about 900);
 * - a replayed page records nothing;
 * - migration 002 turns the first schema's rows into blocks whose chain still verifies, a
 *   keyed block anchors them, and its down gives back exactly the rows there were, with
 *   the keyed blocks' events after them in a plain chain of the first schema;
 * - on PGlite (the embedded default, no AUDIT_KEY) the same chain is written, listed and
 *   verified, keyed with a generated key kept in DATA_DIR/audit.key (mode 0600).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import knexFactory, { type Knex } from "knex";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { migrateLatest, migrateRollback, migrateUp } from "../../migrations/index.ts";
import { decodeEvents, keyring, startState, verifyBlocks } from "../../services/audit/chain.ts";
import { anchorLegacy, appendPage } from "../../services/audit/log.ts";
import * as store from "../../services/audit/store.ts";
import { measureAuditStorage, transferPages } from "../../bench/audit-storage.ts";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";

const BYTES_PER_EVENT_MAX = 150;
const KEYS = keyring("test-audit-storage-key-7Hw3Qp9Zx2Lm5Rt8Vb1");
let db: TestDatabase;
let knex: Knex;

before(async () => {
	db = await createTestDatabase();
	knex = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 2 } });
});

after(async () => {
	await knex?.destroy();
	await db?.drop();
});

async function verifyAll(): Promise<ReturnType<typeof startState> & { problem: unknown }> {
	const state = startState();
	let afterSeq = 0;
	for (;;) {
		const blocks = await store.blocksAfter(knex, afterSeq, 100);
		const problem = verifyBlocks(blocks, KEYS, state);
		if (problem) return { ...state, problem };
		const last = blocks[blocks.length - 1];
		if (!last) return { ...state, problem: null };
		afterSeq = last.seq;
	}
}

describe("audit storage", () => {
	it(`stores 5,000 events in pages of 50-200 at most ${BYTES_PER_EVENT_MAX} bytes each, every event kept`, async () => {
		await migrateLatest(knex, "audit");
		const pages = [...transferPages(5_000, 7)];
		const r = await measureAuditStorage(knex, pages, KEYS);
		assert.ok(r.bytesPerEvent <= BYTES_PER_EVENT_MAX, `${r.bytesPerEvent.toFixed(1)} bytes per event (${JSON.stringify(r.perRelation)})`);
		assert.ok(r.blocks >= 5_000 / 200 && r.blocks <= 5_000 / 50, `${r.blocks} blocks`);
		const v = await verifyAll();
		assert.deepEqual([v.problem, v.events, v.blocks], [null, 5_000, r.blocks]);
		// Every event is there whole: the same events, in order, with their payloads.
		const expected = pages.flat();
		const stored = (await store.blocksAfter(knex, 0, 1_000)).flatMap(b => decodeEvents(b));
		assert.equal(stored.length, expected.length);
		assert.deepEqual(stored[1_234], { pos: expected[1_234]?.seq, eventId: expected[1_234]?.eventId, event: "transfer.completed", payload: expected[1_234]?.payload });
		assert.deepEqual(stored.map(e => e.eventId), expected.map(e => e.eventId));
	});

	it("records nothing for a replayed page, and only the new tail of a page that overlaps", async () => {
		// The first pages of the run above again (same seed: same positions and event ids).
		const pages = [...transferPages(300, 7)];
		const before = await store.totals(knex, Number.MAX_SAFE_INTEGER);
		assert.deepEqual(await appendPage(knex, KEYS, "ledger", pages[0] ?? [], true), []);
		assert.deepEqual(await store.totals(knex, Number.MAX_SAFE_INTEGER), before);
		// Events after the mark go in; the ones at or below it do not.
		const tail = pages[pages.length - 1] ?? [];
		const lastPos = tail[tail.length - 1]?.seq ?? 0;
		const fresh = [{ seq: lastPos + 10_000, eventId: "ledger:999999:0", event: "transfer.completed", payload: { amount: 1 } }];
		const [block] = await appendPage(knex, KEYS, "ledger", [...tail, ...fresh], true);
		assert.deepEqual(block && decodeEvents(block).map(e => e.eventId), ["ledger:999999:0"]);
	});
});

describe("audit migration 002", () => {
	it("converts the first schema's rows into blocks that verify, and its down gives them back exactly", async () => {
		await migrateRollback(knex, "audit", true);
		await migrateUp(knex, "audit");
		// Three records of the first schema, in its plain SHA-256 chain.
		const old: string[][] = [];
		let prev = "0".repeat(64);
		for (let seq = 1; seq <= 3; seq++) {
			const row = [String(seq), `ledger:${seq}:0`, "ledger", "transfer.completed", JSON.stringify({ amount: seq, note: "it's" }), new Date(Date.UTC(2026, 0, seq)).toISOString(), prev];
			const hash = createHash("sha256").update([prev, String(seq), row[1], row[2], row[3], row[5], row[4]].join("\n")).digest("hex");
			old.push([...row, hash]);
			prev = hash;
		}
		for (const r of old) await knex.raw("INSERT INTO audit.records (seq, event_id, source, event, payload_json, recorded_at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", r);
		await migrateLatest(knex, "audit");
		const converted = await verifyAll();
		assert.deepEqual([converted.problem, converted.events, converted.unanchored], [null, 3, 3]);
		// The service anchors them with a keyed block, then appends pages after it.
		const anchor = await anchorLegacy(knex, KEYS);
		assert.equal(anchor?.seq, 4);
		assert.equal(await anchorLegacy(knex, KEYS), null, "anchored once");
		// A page replayed across the migration: the event the first schema holds is left out.
		const [page] = await appendPage(knex, KEYS, "ledger", [
			{ seq: 3, eventId: "ledger:3:0", event: "transfer.completed", payload: { amount: 3 } },
			{ seq: 4, eventId: "ledger:4:0", event: "transfer.completed", payload: { amount: 4 } },
			{ seq: 4, eventId: "ledger:4:1", event: "transfer.completed", payload: { amount: 5 } },
		], true);
		assert.deepEqual(page && decodeEvents(page).map(e => e.eventId), ["ledger:4:0", "ledger:4:1"]);
		const anchored = await verifyAll();
		assert.deepEqual([anchored.problem, anchored.events, anchored.unanchored], [null, 6, 0]);

		await migrateRollback(knex, "audit");
		const rows = ((await knex.raw("SELECT seq::text, event_id, source, event, payload_json, recorded_at, prev_hash, hash FROM audit.records ORDER BY seq")) as { rows: Record<string, string>[] }).rows;
		assert.deepEqual(rows.slice(0, 3).map(r => Object.values(r)), old);
		assert.deepEqual(rows.map(r => r["event_id"]), ["ledger:1:0", "ledger:2:0", "ledger:3:0", "audit:anchor:4", "ledger:4:0", "ledger:4:1"]);
		// The expanded events continue the first schema's plain chain.
		let link = "0".repeat(64);
		for (const r of rows) {
			assert.equal(r["prev_hash"], link);
			const hash = createHash("sha256").update([r["prev_hash"], r["seq"], r["event_id"], r["source"], r["event"], r["recorded_at"], r["payload_json"]].join("\n")).digest("hex");
			assert.equal(r["hash"], hash, `record ${r["seq"]}`);
			link = hash;
		}
		await migrateLatest(knex, "audit");
	});
});

describe("audit on PGlite without AUDIT_KEY", () => {
	it("writes, lists and verifies the chain, keyed with a generated key in DATA_DIR/audit.key", async () => {
		const dataDir = mkdtempSync(join(tmpdir(), "paymesh-audit-"));
		try {
			const start = () => startNode({ DATA_DIR: dataDir, SERVICES: "ledger,audit", AUDIT_KEY: "", EVENT_POLL_INTERVAL_MS: "50", EVENT_PUMP_GAP_MS: "0" });
			let { broker } = await start();
			try {
				const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:test:USD", currency: "USD" });
				const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: "018f0000-0000-7000-8000-00000000e001", currency: "USD" });
				await broker.call("ledger.transfers.create", { idempotencyKey: "f-1", fromAccountId: sys.id, toAccountId: a.id, amount: 700, currency: "USD" });
				await broker.call("audit.record", { id: "pglite-1", action: "account.freeze", actor: "018f0000-0000-7000-8000-00000000e002", target: a.id, reason: "test" });
				type Page = { items: { seq: number; event: string; payload: { amount?: number; actor?: string } }[]; nextAfterSeq: number | null };
				await until("audited", async () => (await broker.call<Page, object>("audit.list", {})).items.some(i => i.event === "transfer.completed"));
				const page = await broker.call<Page, object>("audit.list", { limit: 2 });
				assert.deepEqual(page.items.map(i => i.seq), [1, 2]);
				const rest = await broker.call<Page, object>("audit.list", { afterSeq: page.nextAfterSeq ?? 0 });
				assert.ok([...page.items, ...rest.items].some(i => i.event === "admin.account.freeze" && i.payload.actor === "018f0000-0000-7000-8000-00000000e002"));
				assert.equal((await broker.call<{ recorded: boolean }, object>("audit.record", { id: "pglite-1", action: "account.freeze", actor: "x", target: a.id })).recorded, false, "once per id");
				assert.equal((await broker.call<{ ok: boolean }, object>("audit.verify", {})).ok, true);
			} finally {
				await broker.stop();
			}
			assert.equal(statSync(join(dataDir, "audit.key")).mode & 0o777, 0o600);
			// The next start reads the same key: the chain still verifies.
			({ broker } = await start());
			try {
				assert.equal((await broker.call<{ ok: boolean }, object>("audit.verify", {})).ok, true);
			} finally {
				await broker.stop();
			}
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});
