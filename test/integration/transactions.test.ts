/**
 * The transactions read model on real PostgreSQL with a real broker (users, ledger,
 * reports): transfers through the ledger reach each side's list with the type, the
 * counterparty's name and a category; a replayed page adds nothing; a customer's
 * correction files the next transaction with that counterparty; and a seeded property
 * test compares every filter combination, paged with random page sizes, and the monthly
 * insights with a brute-force computation over the same rows.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import type pg from "pg";
import { seededRandom, startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { reports, type TransactionView } from "../../contracts/reports.ts";
import { insertTransactions } from "../../services/reports/store.ts";
import * as namedIds from "../../migrations/reports/006_named_transaction_ids.ts";
import { CATEGORIES, matches, TRANSACTION_SORTS, TRANSACTION_TYPES, type Category, type TransactionFilter, type TransactionRow, type TransactionSort } from "../../services/reports/transactions.ts";
import { monthRange } from "../../services/reports/insights.ts";
import type { ConsumedEvent } from "../../mixins/event-consumer.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
const ALICE = "018f0000-0000-7000-8000-0000000018a1";
const BRUNO = "018f0000-0000-7000-8000-0000000018b1";
let aliceUsd = "";
let brunoUsd = "";
let system = "";

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "users,ledger,reports", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100" });
	({ broker, sql } = node);
	await broker.call("users.create", { userId: ALICE, email: "alice18@example.com", name: "Alice Moreau" });
	await broker.call("users.create", { userId: BRUNO, email: "bruno18@example.com", name: "Bruno Diaz" });
	aliceUsd = (await call(broker, ledger.accounts.open, { ownerId: ALICE, currency: "USD" })).id;
	brunoUsd = (await call(broker, ledger.accounts.open, { ownerId: BRUNO, currency: "USD" })).id;
	system = (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	await call(broker, ledger.transfers.create, { idempotencyKey: "fund-a", fromAccountId: system, toAccountId: aliceUsd, amount: 100_000, currency: "USD", description: "top-up via bank" });
});

after(() => node?.stop());

/** Hands events to the reports service's handler as its consumer would (a page delivered again). */
async function tally(events: ConsumedEvent[]): Promise<void> {
	const svc = broker.getLocalService("reports");
	const handler: unknown = Reflect.get(svc, "tally");
	assert.equal(typeof handler, "function");
	await (handler as (e: ConsumedEvent[]) => Promise<void>).call(svc, events);
}

const list = (ownerId: string, f: Record<string, unknown> = {}) => broker.call<{ items: TransactionView[]; nextCursor: string | null }, Record<string, unknown>>("reports.transactions.list", { ownerId, ...f });

describe("transactions across accounts", () => {
	it("shows each side of a transfer to its owner, with the type, the counterparty's name and a category", async () => {
		await call(broker, ledger.transfers.create, { idempotencyKey: "t1", fromAccountId: aliceUsd, toAccountId: brunoUsd, amount: 4_550, currency: "USD", description: "Dinner at Luigi's" });
		await until("both sides in the read model", async () => (await list(ALICE)).items.length === 2 && (await list(BRUNO)).items.length === 1);
		const [dinner, topup] = (await list(ALICE)).items;
		assert.deepEqual([dinner?.direction, dinner?.type, dinner?.amount, dinner?.counterparty.name, dinner?.counterparty.userId, dinner?.category], ["out", "payment", 4_550, "Bruno Diaz", BRUNO, "dining"]);
		assert.deepEqual([topup?.direction, topup?.type, topup?.counterparty.name, topup?.category], ["in", "topup", "Bank transfer", "top_up"]);
		const received = (await list(BRUNO)).items[0];
		assert.deepEqual([received?.direction, received?.counterparty.name, received?.transferId], ["in", "Alice Moreau", dinner?.transferId]);
		// Foreign ids answer like missing ones.
		await assert.rejects(call(broker, reports.transactions.get, { ownerId: BRUNO, id: dinner?.id ?? "" }), (e: { type?: string; code?: number }) => e.type === "TRANSACTION_NOT_FOUND" && e.code === 404);
		await assert.rejects(call(broker, reports.transactions.setCategory, { ownerId: BRUNO, id: dinner?.id ?? "", category: "rent" }), (e: { type?: string }) => e.type === "TRANSACTION_NOT_FOUND");
	});

	it("adds nothing when the log delivers a page again", async () => {
		const before = (await sql.query("SELECT count(*)::int AS n FROM reports.transactions")).rows[0].n as number;
		const page = await call(broker, ledger.events.read, { afterSeq: 0 });
		const events: ConsumedEvent[] = page.events.filter(e => e.event === "transfer.completed").map(e => ({ ...e, source: "ledger" as const }));
		assert.ok(events.length >= 2);
		// Transfers with rows are marked by their rows, not by processed-event markers.
		const ids = events.map(e => e.eventId);
		assert.equal((await sql.query("SELECT count(*)::int AS n FROM reports.processed_events WHERE event_id = ANY($1)", [ids])).rows[0].n, 0);
		const volume = async () => (await sql.query("SELECT coalesce(sum(count), 0)::int AS n, coalesce(sum(volume), 0)::text AS v FROM reports.daily_volume")).rows[0];
		const volumeBefore = await volume();
		await tally(events);
		assert.equal((await sql.query("SELECT count(*)::int AS n FROM reports.transactions")).rows[0].n, before);
		// The day's figures count each transfer once too.
		assert.deepEqual(await volume(), volumeBefore);
	});

	it("counts a transfer between system accounts once, by its marker, and keeps rows written before named ids once", async () => {
		const other = (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:card:USD" })).id;
		const at = "2026-01-05T10:00:00.000Z";
		const systemOnly: ConsumedEvent = { source: "ledger", eventId: `ledger:test-sys:${uuidv7()}`, seq: 0, event: "transfer.completed", payload: { id: uuidv7(), kind: "transfer", amount: 700, currency: "USD", fromAccountId: system, toAccountId: other, description: "", createdAt: at, fromOwnerId: null, toOwnerId: null } };
		const day = async () => (await sql.query("SELECT coalesce(sum(count), 0)::int AS n FROM reports.daily_volume WHERE day = '2026-01-05'")).rows[0].n as number;
		await tally([systemOnly]);
		await tally([systemOnly]);
		assert.equal(await day(), 1);
		assert.equal((await sql.query("SELECT count(*)::int AS n FROM reports.processed_events WHERE event_id = $1", [systemOnly.eventId])).rows[0].n, 1);
		// A side written with a random id before migration reports/006 is still found when its event comes again:
		// the migration is taken back, the side written as before it, and the migration run again.
		const knex: unknown = Reflect.get(broker.getLocalService("reports"), "knex");
		assert.ok(knex);
		await (knex as Knex).transaction(trx => namedIds.down(trx));
		const transferId = uuidv7(Date.parse(at));
		const old: ConsumedEvent = { source: "ledger", eventId: `ledger:test-old:${transferId}`, seq: 0, event: "transfer.completed", payload: { id: transferId, kind: "transfer", amount: 300, currency: "USD", fromAccountId: aliceUsd, toAccountId: brunoUsd, description: "old", createdAt: at, fromOwnerId: ALICE, toOwnerId: BRUNO } };
		await sql.query(
			`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason, counterparty_account_id, counterparty_owner_id, counterparty_name, description, created_at)
			 VALUES ($1, $2, $3, $4, 'USD', 'out', 300, 'payment', 'transfers', 'money sent to a person', $5, $6, 'Bruno Diaz', 'old', $7)`,
			[uuidv7(Date.parse(at)), ALICE, aliceUsd, transferId, brunoUsd, BRUNO, at],
		);
		await (knex as Knex).transaction(trx => namedIds.up(trx));
		assert.equal((await sql.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'transactions_before_named_ids'")).rows[0].n, 1);
		await tally([old]);
		const sides = await sql.query("SELECT direction FROM reports.transactions WHERE transfer_id = $1 ORDER BY direction", [transferId]);
		assert.deepEqual(sides.rows.map(r => r.direction), ["in", "out"]);
		// The side already there was left as it was, the missing one written, and the event not counted again for it.
		await tally([old]);
		assert.equal((await sql.query("SELECT count(*)::int AS n FROM reports.transactions WHERE transfer_id = $1", [transferId])).rows[0].n, 2);
	});

	it("files the next transaction with a counterparty under the customer's correction", async () => {
		await call(broker, ledger.transfers.create, { idempotencyKey: "t2", fromAccountId: aliceUsd, toAccountId: brunoUsd, amount: 80_000 - 79_000, currency: "USD", description: "for May" });
		await until("the payment for May", async () => (await list(ALICE, { q: "may" })).items.length === 1);
		const may = (await list(ALICE, { q: "may" })).items[0] as TransactionView;
		assert.equal(may.category, "transfers");
		const fixed = await call(broker, reports.transactions.setCategory, { ownerId: ALICE, id: may.id, category: "rent" });
		assert.deepEqual([fixed.category, fixed.categorySetBy], ["rent", "customer"]);
		await call(broker, ledger.transfers.create, { idempotencyKey: "t3", fromAccountId: aliceUsd, toAccountId: brunoUsd, amount: 1_000, currency: "USD", description: "for June" });
		await until("the payment for June", async () => (await list(ALICE, { q: "june" })).items.length === 1);
		const june = (await list(ALICE, { q: "june" })).items[0] as TransactionView;
		assert.deepEqual([june.category, june.categorySetBy], ["rent", "rules"]);
		assert.match(june.categoryReason, /you filed earlier transactions with Bruno Diaz under rent/);
		assert.equal((await list(ALICE, { category: "rent" })).items.length, 2);
	});
});

describe("live insights", () => {
	it("tells of a payment far above the customer's own history as it arrives, once, saying why", async () => {
		// Alice paid 10 times 10.00 USD in each of the 3 months before this one.
		const now = new Date();
		for (let back = 1; back <= 3; back++) {
			const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 1)).toISOString().slice(0, 10);
			await sql.query("INSERT INTO reports.monthly_spend (owner_id, currency, month, out_count, out_minor) VALUES ($1, 'USD', $2, 10, 10000) ON CONFLICT (owner_id, currency, month) DO UPDATE SET out_count = 10, out_minor = 10000", [ALICE, month]);
		}
		await call(broker, ledger.transfers.create, { idempotencyKey: "laptop", fromAccountId: aliceUsd, toAccountId: brunoUsd, amount: 5_000, currency: "USD", description: "new laptop" });
		await until("the insight", async () => (await sql.query("SELECT 1 FROM reports.insights WHERE owner_id = $1", [ALICE])).rowCount === 1);
		const [insight] = (await sql.query<{ why: string; amount_minor: string; compared_minor: string }>("SELECT why, amount_minor::text, compared_minor::text FROM reports.insights WHERE owner_id = $1", [ALICE])).rows;
		assert.deepEqual([insight?.amount_minor, insight?.compared_minor], ["5000", "1000"]);
		assert.match(insight?.why ?? "", /^50\.00 USD to Bruno Diaz on \d{4}-\d\d-\d\d is at least 3 times your average payment of 10\.00 USD over the 3 months before \(30 payments\)\.$/);
		// A small payment is not unusual; Bruno, who received, hears nothing.
		await call(broker, ledger.transfers.create, { idempotencyKey: "snack", fromAccountId: aliceUsd, toAccountId: brunoUsd, amount: 500, currency: "USD", description: "snack" });
		await until("the snack in the read model", async () => (await list(ALICE, { q: "snack" })).items.length === 1);
		assert.equal((await sql.query("SELECT 1 FROM reports.insights")).rowCount, 1);
		// The event for notifications and the live feed is in the reports log, once, also when the page is delivered again.
		await until("the insight positioned in the log", async () => (await call(broker, reports.events.read, { afterSeq: 0 })).events.length === 1);
		const page = await call(broker, ledger.events.read, { afterSeq: 0 });
		await sql.query("DELETE FROM reports.processed_events");
		await tally(page.events.filter(e => e.event === "transfer.completed").map(e => ({ ...e, source: "ledger" as const })));
		assert.equal((await sql.query("SELECT 1 FROM reports.insights")).rowCount, 1);
		const events = (await call(broker, reports.events.read, { afterSeq: 0 })).events;
		assert.deepEqual(events.map(e => [e.event, e.payload["ownerId"], e.payload["amount"]]), [["insight.created", ALICE, 5_000]]);
	});
});

describe("filters against brute force (seed 18)", () => {
	const OWNER = "018f0000-0000-7000-8000-0000000018c1";
	const rnd = seededRandom(Number(process.env["TRANSACTIONS_SEED"] ?? 18));
	const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
	const WORDS = ["rent", "dinner", "coffee", "taxi", "may", "june", "groceries", "gift", "book", "train", "hotel", "bill", "lunch"];
	const PEOPLE = [["018f0000-0000-7000-8000-0000000018d1", "Chen Wei"], ["018f0000-0000-7000-8000-0000000018d2", "Marta Ruiz"], ["018f0000-0000-7000-8000-0000000018d3", "Okafor Sons"], [null, "Bank transfer"]] as const;
	const ACCOUNTS = ["018f0000-0000-7000-8000-0000000018e1", "018f0000-0000-7000-8000-0000000018e2", "018f0000-0000-7000-8000-0000000018e3"];
	const CP_ACCOUNTS = ["018f0000-0000-7000-8000-0000000018f1", "018f0000-0000-7000-8000-0000000018f2", "018f0000-0000-7000-8000-0000000018f3", "018f0000-0000-7000-8000-0000000018f4"];
	const rows: (TransactionRow & { id: string })[] = [];

	before(async () => {
		const generated: TransactionRow[] = [];
		const t0 = Date.parse("2026-01-01T00:00:00Z");
		for (let i = 0; i < 600; i++) {
			const p = Math.floor(rnd() * PEOPLE.length);
			const [who, name] = PEOPLE[p] as readonly [string | null, string];
			// Some rows share an instant (one transfer's two sides, or a batch).
			const at = i > 0 && rnd() < 0.1 ? (generated[i - 1] as TransactionRow).createdAt : new Date(t0 + Math.floor(rnd() * 150 * 86_400_000));
			generated.push({
				ownerId: OWNER, accountId: pick(ACCOUNTS), transferId: uuidv7(), currency: rnd() < 0.7 ? "USD" : "EUR", direction: rnd() < 0.6 ? "out" : "in",
				amountMinor: BigInt(1 + Math.floor(rnd() * 50_000)), type: pick(TRANSACTION_TYPES), category: pick(CATEGORIES), categoryReason: "seeded",
				counterpartyAccountId: CP_ACCOUNTS[p] as string, counterpartyOwnerId: who, counterpartyName: name,
				description: Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(WORDS)).join(" "), createdAt: at,
			});
		}
		const knex: unknown = Reflect.get(broker.getLocalService("reports"), "knex");
		assert.ok(knex);
		assert.equal((await insertTransactions(knex as Knex, generated)).length, 600);
		const ids = new Map((await sql.query<{ id: string; transfer_id: string }>("SELECT id, transfer_id FROM reports.transactions WHERE owner_id = $1", [OWNER])).rows.map(r => [r.transfer_id, r.id]));
		for (const g of generated) rows.push({ ...g, id: ids.get(g.transferId) as string });
	});

	function randomFilter(): { api: Record<string, unknown>; model: TransactionFilter } {
		const api: Record<string, unknown> = {};
		const model: TransactionFilter = { ownerId: OWNER };
		const t0 = Date.parse("2026-01-01T00:00:00Z");
		if (rnd() < 0.3) {
			const a = t0 + Math.floor(rnd() * 150 * 86_400_000);
			const b = a + 1 + Math.floor(rnd() * 60 * 86_400_000);
			if (rnd() < 0.7) { api["from"] = new Date(a).toISOString(); model.from = new Date(a); }
			if (rnd() < 0.7) { api["to"] = new Date(b).toISOString(); model.to = new Date(b); }
		}
		if (rnd() < 0.3) { const v = Math.floor(rnd() * 30_000); api["minAmountMinor"] = v; model.amountMinMinor = BigInt(v); }
		if (rnd() < 0.3) { const v = 20_000 + Math.floor(rnd() * 30_000); api["maxAmountMinor"] = v; model.amountMaxMinor = BigInt(v); }
		if (rnd() < 0.3) { const v = pick(["in", "out"] as const); api["direction"] = v; model.direction = v; }
		if (rnd() < 0.3) { const v = pick(ACCOUNTS); api["accountId"] = v; model.accountId = v; }
		if (rnd() < 0.2) { const v = pick(["USD", "EUR"]); api["currency"] = v; model.currency = v; }
		if (rnd() < 0.2) { const p = PEOPLE[Math.floor(rnd() * PEOPLE.length)] as readonly [string | null, string]; const v = p[0] ?? CP_ACCOUNTS[3] as string; api["counterpartyId"] = v; model.counterpartyId = v; }
		if (rnd() < 0.2) { const v = pick(TRANSACTION_TYPES); api["type"] = v; model.type = v; }
		if (rnd() < 0.2) { const v: Category = pick(CATEGORIES); api["category"] = v; model.category = v; }
		if (rnd() < 0.3) {
			const v = rnd() < 0.5 ? pick(WORDS).slice(0, 2 + Math.floor(rnd() * 3)) : `${pick(WORDS)} ${pick(["chen", "mar", "bank", "okafor"])}`;
			api["q"] = v;
			model.q = v;
		}
		// Reversed amounts are refused (tested below): the draw keeps them in order.
		if (model.amountMinMinor !== undefined && model.amountMaxMinor !== undefined && model.amountMinMinor > model.amountMaxMinor) {
			[api["minAmountMinor"], api["maxAmountMinor"]] = [api["maxAmountMinor"], api["minAmountMinor"]];
			[model.amountMinMinor, model.amountMaxMinor] = [model.amountMaxMinor, model.amountMinMinor];
		}
		return { api, model };
	}

	/** The brute-force order of each sort: its key, then time, then id, each ascending or descending together. */
	type Row = TransactionRow & { id: string };
	function ordered(sort: TransactionSort, list: Row[]): Row[] {
		const desc = sort === "newest" || sort === "largest";
		const byAmount = sort === "largest" || sort === "smallest";
		const cmp = (a: Row, b: Row) =>
			(byAmount && a.currency !== b.currency ? (desc ? -1 : 1) * (a.currency < b.currency ? -1 : 1) : 0)
			|| (byAmount && a.amountMinor !== b.amountMinor ? (a.amountMinor < b.amountMinor ? -1 : 1) : 0)
			|| a.createdAt.getTime() - b.createdAt.getTime()
			|| (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
		return [...list].sort((a, b) => (desc ? -cmp(a, b) : cmp(a, b)));
	}

	it("answers every combination of filters and orders with exactly the brute-force rows in the brute-force order, whatever the page size", async () => {
		let nonEmpty = 0;
		const sorts = new Set<TransactionSort>();
		for (let round = 0; round < 60; round++) {
			const { api, model } = randomFilter();
			const sort: TransactionSort = rnd() < 0.4 ? "newest" : pick(TRANSACTION_SORTS);
			if (sort !== "newest" || rnd() < 0.5) api["sort"] = sort;
			sorts.add(sort);
			const expected = ordered(sort, rows.filter(r => matches(r, model))).map(r => r.id);
			const limit = pick([1, 7, 50, 100]);
			const seen: string[] = [];
			let cursor: string | null = null;
			for (let pages = 0; pages < 700; pages++) {
				const page = await list(OWNER, { ...api, limit, ...(cursor ? { cursor } : {}) });
				assert.ok(page.items.length <= limit);
				seen.push(...page.items.map(i => i.id));
				cursor = page.nextCursor;
				if (!cursor) break;
			}
			assert.deepEqual(seen, expected, `filter ${JSON.stringify(api)} with limit ${limit}`);
			if (expected.length > 0) nonEmpty++;
		}
		assert.ok(nonEmpty >= 30, `${nonEmpty} of 60 filters found rows`);
		assert.equal(sorts.size, TRANSACTION_SORTS.length, "every order was tried");
	});

	it("serves the first page for a cursor of another order's shape, never a wrong page", async () => {
		const byAmount = await list(OWNER, { sort: "largest", limit: 3 });
		const byTime = await list(OWNER, { limit: 3 });
		assert.ok(byAmount.nextCursor && byTime.nextCursor);
		assert.deepEqual((await list(OWNER, { limit: 3, cursor: byAmount.nextCursor })).items.map(i => i.id), byTime.items.map(i => i.id));
		assert.deepEqual((await list(OWNER, { sort: "largest", limit: 3, cursor: byTime.nextCursor })).items.map(i => i.id), byAmount.items.map(i => i.id));
		await assert.rejects(list(OWNER, { sort: "cheapest" }), (e: { type?: string }) => e.type === "VALIDATION_ERROR");
	});

	it("refuses a page size above 100, a reversed date range and reversed amounts", async () => {
		await assert.rejects(list(OWNER, { limit: 101 }), (e: { type?: string }) => e.type === "VALIDATION_ERROR");
		await assert.rejects(list(OWNER, { from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z" }), (e: { type?: string }) => e.type === "INVALID_DATE_RANGE");
		await assert.rejects(list(OWNER, { minAmountMinor: 5, maxAmountMinor: 4 }), (e: { type?: string }) => e.type === "VALIDATION_ERROR");
		await assert.rejects(list(OWNER, { q: "x".repeat(101) }), (e: { type?: string }) => e.type === "VALIDATION_ERROR");
	});

	it("gives the month's insights with the figures of a brute-force computation over the read model", async () => {
		for (const month of ["2026-03", "2026-04", "2026-05"]) {
			const out = await call(broker, reports.insights, { ownerId: OWNER, month });
			const { start, end, historyStart } = monthRange(month);
			const spent = rows.filter(r => r.direction === "out");
			for (const c of out.byCategory) {
				const now = spent.filter(r => r.currency === c.currency && r.category === c.category && r.createdAt >= start && r.createdAt < end);
				const hist = spent.filter(r => r.currency === c.currency && r.category === c.category && r.createdAt >= historyStart && r.createdAt < start).reduce((s, r) => s + r.amountMinor, 0n);
				assert.equal(BigInt(c.totalMinor), now.reduce((s, r) => s + r.amountMinor, 0n), `${month} ${c.currency} ${c.category}`);
				assert.equal(c.count, now.length);
				assert.ok(Math.abs(c.historyAverageMinor - Number(hist) / 3) <= 0.5);
			}
			const expectedCats = new Set(spent.filter(r => r.createdAt >= start && r.createdAt < end).map(r => `${r.currency}|${r.category}`));
			assert.deepEqual(new Set(out.byCategory.map(c => `${c.currency}|${c.category}`)), expectedCats);
			for (const t of out.totals) {
				const inMonth = rows.filter(r => r.currency === t.currency && r.createdAt >= start && r.createdAt < end);
				assert.equal(BigInt(t.outMinor), inMonth.filter(r => r.direction === "out").reduce((s, r) => s + r.amountMinor, 0n));
				assert.equal(BigInt(t.inMinor), inMonth.filter(r => r.direction === "in").reduce((s, r) => s + r.amountMinor, 0n));
			}
			for (const c of out.byCounterparty) {
				const mine = spent.filter(r => r.currency === c.currency && r.counterpartyName === c.counterpartyName && r.createdAt >= start && r.createdAt < end);
				assert.equal(BigInt(c.totalMinor), mine.reduce((s, r) => s + r.amountMinor, 0n));
			}
			assert.ok(out.byCounterparty.length > 0);
		}
	});
});
