/**
 * The reads behind the user-facing and admin routes find their rows by an index, never by
 * reading a whole table: every statement those actions run (captured from knex as they
 * run it) is planned with sequential scans disabled, and the plan must not contain one.
 * With seqscan off PostgreSQL still picks a sequential scan when no index can serve the
 * query, so a missing index shows up here however small the test's tables are.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import type { Config } from "../../config/index.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let config: Config;
const captured: { sql: string; bindings: unknown[] }[] = [];

before(async () => {
	db = await createTestDatabase();
	({ broker, config } = await startNode({ DATABASE_URL: db.url, SERVICES: "users,ledger,payments,fraud,notifications,webhooks,reports,requests,schedules,bills", LOG_LEVEL: "fatal" }));
	acquireDb(config).knex.on("query", (q: { sql: string; bindings?: unknown[] }) => captured.push({ sql: q.sql, bindings: q.bindings ?? [] }));
});

after(async () => {
	await broker?.stop();
	if (config) await releaseDb(config);
	await db?.drop();
});

/** knex reports raw statements with `?` placeholders; pg wants `$n`. */
function positional(sql: string): string {
	let n = 0;
	return sql.replace(/\?/g, () => `$${++n}`);
}

/** Runs the action and returns the statements it issued (a refusal is fine: the read still ran). */
async function statementsOf(action: string, params: Record<string, unknown>): Promise<string[]> {
	const from = captured.length;
	await broker.call(action, params).catch((err: { code?: number }) => {
		if (!(err.code && err.code >= 400 && err.code < 500)) throw err;
	});
	// Not the ledger's periodic read of its one-row outbox format setting (a seq scan is its
	// plan), which its timer may run while the action does: it is nobody's read route.
	return captured.slice(from).map(q => q.sql).filter(sql => /^\s*(SELECT|WITH|UPDATE|DELETE)\b/i.test(sql) && !/\bFROM ledger\.outbox_format\s*$/i.test(sql));
}

async function seqScans(sql: string, bindings: unknown[]): Promise<string[]> {
	const c = new pg.Client({ connectionString: db.url });
	await c.connect();
	try {
		await c.query("SET enable_seqscan = off");
		const plan = (await c.query<{ "QUERY PLAN": string }>(`EXPLAIN ${positional(sql)}`, bindings)).rows.map(r => r["QUERY PLAN"]);
		return plan.filter(line => line.includes("Seq Scan"));
	} finally {
		await c.end();
	}
}

describe("query plans of the read routes", () => {
	it("find their rows by an index: profiles by e-mail, a user's payments, the review queue, stuck payments and the resume sweep, frozen accounts, endpoints and the rest", async () => {
		const userId = "018f0000-0000-7000-8000-0000000000a1";
		await broker.call("users.create", { userId, email: "Plans@Example.com", name: "Plans" });
		await broker.call("users.markEmailVerified", { id: userId, email: "plans@example.com" });
		const account: { id: string } = await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
		const missing = "018f0000-0000-7000-8000-0000000000ff";
		// A completed top-up to list the refunds of (written as the saga leaves it; no provider runs here).
		const topupId = "018f0000-0000-7000-8000-0000000000b1";
		const sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		await sql.query(
			`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, idempotency_key, request_hash, transfer_id)
			 VALUES ($1, $2, 'topup', 'completed', 1000, 'USD', $3, 'card', 'plans-topup', '', $4)`,
			[topupId, userId, account.id, missing],
		).finally(() => sql.end());
		const day = { from: "2026-01-01T00:00:00Z", to: "2026-12-31T00:00:00Z" };
		const reads: [string, Record<string, unknown>][] = [
			["users.findByEmail", { email: "plans@example.com" }],
			["users.get", { id: userId }],
			["ledger.accounts.list", { ownerId: userId }],
			["ledger.accounts.get", { id: account.id, ownerId: userId }],
			["ledger.accounts.frozen", {}],
			["ledger.accounts.history", { accountId: account.id, ownerId: userId }],
			["ledger.accounts.statement", { accountId: account.id, ownerId: userId, ...day }],
			["ledger.transfers.get", { id: missing, ownerId: userId }],
			["ledger.payments.recent", { ownerId: userId, limit: 20 }],
			["ledger.payments.get", { id: missing, ownerId: userId }],
			["payments.list", { userId }],
			["payments.get", { id: missing, userId }],
			["payments.review.list", {}],
			["payments.stuck", { olderThanS: 60 }],
			["payments.resume", {}],
			["payments.topupRefunds.list", { paymentId: topupId, userId }],
			["notifications.list", { userId }],
			["webhooks.list", { ownerId: userId }],
			["webhooks.deliveries", { id: missing, ownerId: userId }],
			// The transactions read model: every filter alone, some together, a later page, and the month's insights.
			["reports.transactions.list", { ownerId: userId }],
			["reports.transactions.list", { ownerId: userId, cursor: `1796000000000000_${missing}` }],
			["reports.transactions.list", { ownerId: userId, accountId: account.id, ...day }],
			["reports.transactions.list", { ownerId: userId, category: "rent", direction: "out" }],
			["reports.transactions.list", { ownerId: userId, q: "rent may", minAmountMinor: 100, maxAmountMinor: 5_000 }],
			["reports.transactions.list", { ownerId: userId, counterpartyId: missing, type: "payment", currency: "USD" }],
			["reports.transactions.get", { ownerId: userId, id: missing }],
			["reports.transactions.setCategory", { ownerId: userId, id: missing, category: "rent" }],
			["reports.insights", { ownerId: userId, month: "2026-05" }],
			// Payment requests: each side's list (with a status, a later page), one request, the expiry and resume sweep.
			["requests.list", { userId, role: "incoming" }],
			["requests.list", { userId, role: "outgoing", status: "pending", cursor: `1796000000000000_${missing}` }],
			["requests.get", { userId, id: missing }],
			["requests.sweep", {}],
			// Standing orders and payees: lists, one order with its occurrences, the scheduler's run, account close.
			["schedules.list", { ownerId: userId }],
			["schedules.get", { ownerId: userId, id: missing }],
			["schedules.payees.list", { ownerId: userId }],
			["schedules.runDue", { now: "2030-01-01T00:00:00Z" }],
			["ledger.accounts.close", { id: missing, ownerId: userId }],
			// Bills: a bill's status, a quote naming an unknown coupon, the payments (a later page), one payment, saved bills, coupons, and the sweep (resume, reminders, quote pruning).
			["bills.lookup", { userId, billerCode: "city_power", reference: "12345678" }],
			["bills.quote", { userId, billerCode: "city_power", reference: "12345678", couponCode: "NO-SUCH" }],
			["bills.payments.list", { userId }],
			["bills.payments.list", { userId, cursor: `1796000000000000_${missing}` }],
			["bills.payments.get", { userId, id: missing }],
			["bills.saved.list", { userId }],
			["bills.coupons.list", {}],
			["bills.sweep", { now: "2030-01-01T00:00:00Z" }],
		];
		const found: string[] = [];
		for (const [action, params] of reads) {
			const statements = await statementsOf(action, params);
			assert.ok(statements.length > 0, `${action} read something`);
			for (const sql of statements) {
				const q = captured.find(c => c.sql === sql) as { bindings: unknown[] };
				const scans = await seqScans(sql, q.bindings);
				if (scans.length > 0) found.push(`${action}: ${scans.join("; ").trim()} in ${sql.replace(/\s+/g, " ").slice(0, 160)}`);
			}
		}
		assert.deepEqual(found, []);
	});

	it("search the transactions' text through transactions_filters_idx: the list names the words as the index's expression does", async () => {
		// 2,000 rows, 200 of them this customer's and the rest 40 others', 2 of this one's "rent for May"; analyzed, so the planner knows.
		const ownerId = "018f0000-0000-7000-8000-0000000000c1";
		const sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		try {
			await sql.query(
				`INSERT INTO reports.transactions (id, owner_id, account_id, transfer_id, currency, direction, amount_minor, type, category, category_reason, counterparty_account_id, counterparty_name, description, created_at)
				 SELECT gen_random_uuid(), CASE WHEN g % 10 = 0 THEN $1::uuid ELSE ('018f0000-0000-7000-8000-' || lpad(to_hex(g % 50), 12, '0'))::uuid END,
					gen_random_uuid(), gen_random_uuid(), 'USD', 'out', 100 + g, 'payment', 'other', 'rules', gen_random_uuid(),
					CASE WHEN g % 2 = 0 THEN 'Bruno Diaz' ELSE 'Chen Costa' END, CASE WHEN g % 1000 = 0 THEN 'rent for May' ELSE 'coffee ' || g END, now() - g * interval '1 hour'
				 FROM generate_series(1, 2000) g`,
				[ownerId],
			);
			await sql.query("ANALYZE reports.transactions");
		} finally {
			await sql.end();
		}
		const params = { ownerId, q: "rent may", minAmountMinor: 100, maxAmountMinor: 5_000 };
		const page: { items: { description: string }[] } = await broker.call("reports.transactions.list", params);
		assert.deepEqual(page.items.map(t => t.description), ["rent for May", "rent for May"]);
		const [statement] = await statementsOf("reports.transactions.list", params);
		assert.ok(statement);
		// The same statement ran in the test before for another customer: these bindings are the last ones.
		const q = captured.findLast(c => c.sql === statement) as { bindings: unknown[] };
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const plan = (await c.query<{ "QUERY PLAN": string }>(`EXPLAIN ${positional(statement)}`, q.bindings)).rows.map(r => r["QUERY PLAN"]);
			const scan = plan.findIndex(line => line.includes("Bitmap Index Scan on transactions_filters_idx"));
			assert.ok(scan >= 0, plan.join("\n"));
			assert.match(plan[scan + 1] ?? "", /Index Cond: .*owner_id = .* AND \(to_tsvector\('simple'::regconfig, \(\(description \|\| ' '::text\) \|\| counterparty_name\)\) @@ /, plan.join("\n"));
		} finally {
			await c.end();
		}
	});

	it("stores e-mail addresses in one form; a second profile with the address stays unverified and is never the one found", async () => {
		const found: { id: string } = await broker.call("users.findByEmail", { email: "PLANS@example.COM" });
		assert.equal(found.id, "018f0000-0000-7000-8000-0000000000a1");
		// Unverified profiles may share an address (registration answers the same for a taken one: issue 16, finding 10) ...
		const twin: { id: string; emailVerified: boolean } = await broker.call("users.create", { userId: "018f0000-0000-7000-8000-0000000000a2", email: "plans@EXAMPLE.com", name: "Twin" });
		assert.deepEqual([twin.id, twin.emailVerified], ["018f0000-0000-7000-8000-0000000000a2", false]);
		assert.equal((await broker.call<{ id: string }, { email: string }>("users.findByEmail", { email: "plans@example.com" })).id, found.id);
		// ... but only one can have verified it.
		await assert.rejects(
			broker.call("users.markEmailVerified", { id: twin.id, email: "plans@example.com" }),
			(err: { type?: string; code?: number }) => err.type === "EMAIL_TAKEN" && err.code === 409,
		);
		assert.equal((await broker.call<{ emailVerified: boolean }, { id: string }>("users.get", { id: twin.id })).emailVerified, false);
	});
});
