/**
 * Bytes the audit log stores per event (issue 15 item 9): appends realistic
 * transfer.completed events (the ledger's payload of an approved P2P payment, outbox rows of
 * a few to a few dozen events, between random customers) to a fresh audit schema in
 * consumer pages of 50-200 events, through the service's own append path, and reports the
 * growth of every audit relation (table, TOAST, indexes) per event. A storage figure, not a
 * timing: test/integration/audit-storage.test.ts asserts the bound on a smaller run.
 * Ids are random (uuidv7), amounts and pairs seeded.
 *
 *   node bench/audit-storage.ts [events=20000]        (PostgreSQL at TEST_PG_URL)
 */
import knexFactory, { type Knex } from "knex";
import { fileURLToPath } from "node:url";
import { uuidv7 } from "../lib/ids.ts";
import { seededRandom } from "../lib/random.ts";
import { migrateLatest } from "../migrations/index.ts";
import { keyring, type Keyring } from "../services/audit/chain.ts";
import { appendPage, type PageEvent } from "../services/audit/log.ts";

const AUDIT_RELATIONS = ["audit.blocks", "audit.record_ids"];

/** Every audit relation's size with its TOAST table and indexes, in bytes. */
export async function auditBytes(knex: Knex): Promise<Record<string, number>> {
	const out: Record<string, number> = {};
	for (const r of AUDIT_RELATIONS) {
		const res = (await knex.raw("SELECT pg_total_relation_size(?::regclass)::int8 AS n", [r])) as { rows: { n: string | number }[] };
		out[r] = Number(res.rows[0]?.n ?? 0);
	}
	return out;
}

/** Pages of transfer.completed events as the ledger writes them for approved P2P payments. */
export function* transferPages(total: number, seed: number, customers = 2_000): Generator<PageEvent[]> {
	const rand = seededRandom(seed);
	const startMs = Date.UTC(2026, 11, 2, 12);
	const people = Array.from({ length: customers }, (_, i) => ({ ownerId: uuidv7(startMs - 86_400_000 + i * 7), accountId: uuidv7(startMs - 86_400_000 + i * 7 + 3) }));
	const pick = () => people[Math.floor(rand() * people.length)] ?? people[0];
	let made = 0;
	let pos = 0;
	let rowId = 1_000;
	let ms = startMs;
	while (made < total) {
		const pageSize = Math.min(total - made, 50 + Math.floor(rand() * 151));
		const page: PageEvent[] = [];
		while (page.length < pageSize) {
			// One outbox row per ledger batch: 1 to 40 payments committed together.
			const rowEvents = Math.min(pageSize - page.length, 1 + Math.floor(rand() * 40));
			pos++;
			rowId += 1 + Math.floor(rand() * 3);
			ms += 1 + Math.floor(rand() * 20);
			for (let i = 0; i < rowEvents; i++) {
				const from = pick();
				const to = pick();
				if (!from || !to) throw new Error("no customers");
				page.push({
					seq: pos, eventId: `ledger:${rowId}:${i}`, event: "transfer.completed",
					payload: {
						id: uuidv7(ms), kind: "payment", status: "completed", amount: 100 + Math.floor(rand() * 50_000), currency: "USD",
						fromAccountId: from.accountId, toAccountId: to.accountId, description: rand() < 0.3 ? "lunch" : "", holdId: null, reversesTransferId: null,
						createdAt: new Date(ms).toISOString(), fromOwnerId: from.ownerId, toOwnerId: to.ownerId, userId: from.ownerId,
						risk: { decision: "approve", score: Math.floor(rand() * 30), reasons: [] },
					},
				});
			}
		}
		made += page.length;
		yield page;
	}
}

export interface AuditStorage {
	events: number;
	blocks: number;
	bytes: number;
	bytesPerEvent: number;
	perRelation: Record<string, number>;
	rawJsonBytesPerEvent: number;
}

/** Appends the pages through the audit's append path and measures what the audit schema grew by. */
export async function measureAuditStorage(knex: Knex, pages: Iterable<PageEvent[]>, keys: Keyring = keyring("bench-audit-key-Xq7Lm2Wp9Rz4Tn8Vb3Kc6Hd1")): Promise<AuditStorage> {
	const before = await auditBytes(knex);
	let blocks = 0;
	let raw = 0;
	let events = 0;
	for (const page of pages) {
		events += page.length;
		raw += page.reduce((s, e) => s + JSON.stringify(e).length, 0);
		blocks += (await appendPage(knex, keys, "ledger", page, true)).length;
	}
	const after = await auditBytes(knex);
	const perRelation = Object.fromEntries(AUDIT_RELATIONS.map(r => [r, (after[r] ?? 0) - (before[r] ?? 0)]));
	const bytes = Object.values(perRelation).reduce((s, n) => s + n, 0);
	return { events, blocks, bytes, bytesPerEvent: bytes / events, perRelation, rawJsonBytesPerEvent: raw / events };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const { createTestDatabase } = await import("../test/support/db.ts");
	const events = Number(process.argv[2] ?? 20_000);
	const db = await createTestDatabase("paymesh_audit_bench");
	const knex = knexFactory({ client: "pg", connection: db.url, pool: { min: 0, max: 2 } });
	try {
		await migrateLatest(knex, "audit");
		const r = await measureAuditStorage(knex, transferPages(events, 1));
		const toast = (await knex.raw("SELECT current_setting('default_toast_compression') AS c")) as { rows: { c: string }[] };
		process.stdout.write(`${JSON.stringify({ ...r, bytesPerEvent: Number(r.bytesPerEvent.toFixed(1)), rawJsonBytesPerEvent: Number(r.rawJsonBytesPerEvent.toFixed(1)), defaultToastCompression: toast.rows[0]?.c }, null, 2)}\n`);
	} finally {
		await knex.destroy();
		await db.drop();
	}
}
