/**
 * Refunds of top-ups through their provider (services/payments/topup-refunds.ts) on real
 * PostgreSQL and NATS, with two payments nodes on one database: a refund holds the
 * customer's money, the provider refunds, the hold is posted (completed) or released
 * (compensated, once); each refund is idempotent by its key (a refusal too); a seeded run
 * races partial refunds of the same top-ups from both nodes, with declines, lost provider
 * answers and callbacks, and no top-up's refunds ever add up to more than it. Disputes and
 * refunds of one top-up, either order and racing from both nodes: a dispute is recorded at
 * its amount but never holds from the customer what refunds already gave back (that part is
 * flagged and paid from suspense if lost), and a refund counts the disputes not won.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { signedCall } from "../support/caller.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let a: ServiceBroker;
let b: ServiceBroker;
let sql: pg.Client;
const STAFF = "018f0000-0000-7000-8000-000000005af1";
const namespace = `topup-refunds-${randomBytes(4).toString("hex")}`;

type Payment = { id: string; status: string; amount: number };
type TopupRefund = { id: string; paymentId: string; status: string; amount: number; holdId: string | null; transferId: string | null; failureCode: string | null };

async function customer(): Promise<{ userId: string; accountId: string }> {
	const userId = uuidv7();
	await a.call("users.create", { userId, email: `tr-${userId}@example.com`, name: "Refund Customer" });
	const acc: { id: string } = await a.call("ledger.accounts.open", { ownerId: userId, currency: "USD" });
	return { userId, accountId: acc.id };
}

async function topup(c: { userId: string; accountId: string }, amount: number, provider: "card" | "bank"): Promise<Payment> {
	const p: Payment = await signedCall(a, "payments.topup", { idempotencyKey: `topup-${uuidv7()}`, userId: c.userId, accountId: c.accountId, amount, currency: "USD", provider });
	await until(`top-up ${p.id} completed`, async () => ((await a.call("payments.get", { id: p.id })) as Payment).status === "completed");
	return p;
}

const refund = (node: ServiceBroker, paymentId: string, amount: number, key = `tr-${uuidv7()}`, staffId = STAFF) =>
	signedCall<TopupRefund>(node, "payments.topupRefunds.create", { idempotencyKey: key, paymentId, amount, staffId, reason: "customer asked" }, { retries: 0, timeout: 20_000 });

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
	await assert.rejects(p, (err: { type?: string }) => {
		assert.equal(err.type, code);
		return true;
	});
}

async function posted(accountId: string): Promise<number> {
	return ((await a.call("ledger.accounts.get", { id: accountId })) as { balance: { posted: number } }).balance.posted;
}

async function inFlight(): Promise<number> {
	return Number((await sql.query("SELECT count(*) AS n FROM payments.topup_refunds WHERE status IN ('created', 'processing')")).rows[0].n);
}

async function assertInvariants(): Promise<void> {
	const report: InvariantReport = await a.call("ledger.checkInvariants", {});
	assert.deepEqual(report.violations, []);
	for (const c of report.currencies) assert.equal(c.sum, "0");
}

before(async () => {
	db = await createTestDatabase();
	const common = { DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: namespace, PROVIDER_LATENCY_MS: "1", PAYMENT_RESUME_AFTER_MS: "200", PROVIDER_TIMEOUT_MS: "300", REQUEST_TIMEOUT_MS: "20000" };
	({ broker: a } = await startNode({ ...common, NODE_ID: "tr-a", SERVICES: "api,ledger,payments,providers,fraud,users,audit", PORT: "0", HOST: "127.0.0.1", PROVIDER_BREAKER_REQUESTS_MIN: "1000" }));
	// A second payments node: its refunds of the same top-ups meet the first node's only in the database.
	({ broker: b } = await startNode({ ...common, NODE_ID: "tr-b", SERVICES: "payments" }));
	await b.waitForServices(["ledger", "providers", "audit"], 20_000);
	sql = new pg.Client({ connectionString: db.url });
	await sql.connect();
});

after(async () => {
	await sql?.end();
	await b?.stop();
	await a?.stop();
	await db?.drop();
});

describe("top-up refunds through the provider", () => {
	it("refunds in parts, replays by key, refuses beyond the top-up, compensates a decline once, never a staff member's own", async () => {
		const c = await customer();
		const t = await topup(c, 10_000, "card");
		const first = await refund(a, t.id, 4_000, "tr-first");
		assert.equal(first.status, "completed", JSON.stringify(first));
		assert.equal(await posted(c.accountId), 6_000);
		// Linked to the top-up, moved to the provider's account by the hold's post.
		const link = await sql.query("SELECT r.payment_id, t.amount, t.to_account_id, a.code FROM payments.topup_refunds r JOIN ledger.transfers t ON t.id = r.transfer_id JOIN ledger.accounts a ON a.id = t.to_account_id WHERE r.id = $1", [first.id]);
		assert.equal(link.rows[0].payment_id, t.id);
		assert.equal(Number(link.rows[0].amount), 4_000);
		assert.equal(link.rows[0].code, "external:card:USD");

		// Same key, same request (from either node): the first refund; another request under it: a mismatch.
		assert.deepEqual({ ...(await refund(b, t.id, 4_000, "tr-first")), updatedAt: null }, { ...first, updatedAt: null });
		await refusedWith(refund(a, t.id, 3_999, "tr-first"), "IDEMPOTENCY_MISMATCH");
		// Beyond what is left: refused, and the key keeps the refusal even once more would fit.
		await refusedWith(refund(a, t.id, 6_001, "tr-too-much"), "REFUND_EXCEEDS_PAYMENT");
		await refusedWith(refund(b, t.id, 6_001, "tr-too-much"), "REFUND_EXCEEDS_PAYMENT");

		// The provider declines: the hold is released and the money is back, once.
		await a.call("providers.simulate", { provider: "card", failurePercent: 0, refundDeclinePercent: 100 });
		const declined = await refund(a, t.id, 1_000, "tr-declined");
		await a.call("providers.simulate", { provider: "card", failurePercent: 0, refundDeclinePercent: 0 });
		assert.deepEqual([declined.status, declined.failureCode], ["compensated", "PROVIDER_DECLINED"]);
		assert.equal(await posted(c.accountId), 6_000);
		const hold = await sql.query("SELECT status FROM ledger.holds WHERE id = $1", [declined.holdId]);
		assert.equal(hold.rows[0].status, "voided");
		// Driven again (a late callback, the sweep): nothing more moves.
		await a.call("payments.resume", {});
		assert.equal((await refund(a, t.id, 1_000, "tr-declined")).status, "compensated");
		assert.equal(await posted(c.accountId), 6_000);

		// The rest, whole; then nothing is left.
		assert.equal((await refund(b, t.id, 6_000)).status, "completed");
		await refusedWith(refund(a, t.id, 1), "REFUND_EXCEEDS_PAYMENT");
		const listed: { refundedAmount: number; refundableAmount: number; items: TopupRefund[] } = await a.call("payments.topupRefunds.list", { paymentId: t.id, userId: c.userId });
		assert.deepEqual([listed.refundedAmount, listed.refundableAmount], [10_000, 0]);
		assert.equal(listed.items.filter(i => i.status === "completed").length, 2);
		await refusedWith(a.call("payments.topupRefunds.list", { paymentId: t.id, userId: uuidv7() }), "PAYMENT_NOT_FOUND");
		// payment.refunded for each completed refund, in the payments outbox (webhooks, notifications).
		await until("payment.refunded events", async () => {
			const r = await sql.query("SELECT count(*) AS n FROM payments.outbox o, json_array_elements(o.events) e WHERE e->>'event' = 'payment.refunded' AND e->'payload'->>'paymentId' = $1", [t.id]);
			return Number(r.rows[0].n) === 2;
		});

		// Money already spent is not refunded: the hold is refused, nothing moves, the balance never goes below zero.
		const spender = await customer();
		const spent = await topup(spender, 1_000, "card");
		const shop: { id: string } = await a.call("ledger.accounts.open", { kind: "system", code: "external:trshop:USD", currency: "USD" });
		await a.call("ledger.transfers.create", { idempotencyKey: `spend-${spent.id}`, fromAccountId: spender.accountId, toAccountId: shop.id, amount: 700, currency: "USD" });
		await refusedWith(refund(a, spent.id, 500, "tr-spent"), "INSUFFICIENT_FUNDS");
		await refusedWith(refund(b, spent.id, 500, "tr-spent"), "INSUFFICIENT_FUNDS");
		assert.equal(await posted(spender.accountId), 300);
		assert.equal((await refund(a, spent.id, 300)).status, "completed");
		assert.equal(await posted(spender.accountId), 0);

		// Nobody refunds their own top-up; a P2P payment or an unknown id is no top-up.
		const own = await topup(c, 500, "card");
		await refusedWith(refund(a, own.id, 100, undefined, c.userId), "FORBIDDEN");
		await refusedWith(refund(a, uuidv7(), 100), "PAYMENT_NOT_FOUND");

		// A top-up whose ledger credit staff reversed (four eyes) is not refunded through the provider as well.
		const reversedTopup = await topup(c, 700, "card");
		const credit: { transferId: string } = await a.call("payments.get", { id: reversedTopup.id });
		const proposal: { id: string } = await signedCall(a, "payments.reversals.propose", { transferId: credit.transferId, staffId: uuidv7(), reason: "charged twice by mistake" });
		await signedCall(a, "payments.reversals.approve", { id: proposal.id, staffId: uuidv7() });
		await refusedWith(refund(a, reversedTopup.id, 100), "ALREADY_REVERSED");
		// ... and a top-up refunded through its provider is not reversed as well: refused at the proposal,
		// and when the approval races a refund, exactly one of the two goes ahead (both lock the top-up's row).
		const refundedTopup = await topup(c, 800, "card");
		const refundedCredit: { transferId: string } = await a.call("payments.get", { id: refundedTopup.id });
		await refund(a, refundedTopup.id, 100);
		await refusedWith(signedCall(a, "payments.reversals.propose", { transferId: refundedCredit.transferId, staffId: uuidv7(), reason: "charged twice by mistake" }), "ALREADY_REFUNDED");
		const outcomes: string[] = [];
		for (let i = 0; i < 6; i++) {
			const t = await topup(c, 600, "card");
			const credit: { transferId: string } = await a.call("payments.get", { id: t.id });
			const proposed: { id: string } = await signedCall(a, "payments.reversals.propose", { transferId: credit.transferId, staffId: uuidv7(), reason: "charged twice by mistake" });
			// The refund starts a varying moment after the approval, so either may take the top-up's row first (either order must pass).
			const later = (ms: number) => new Promise(r => setTimeout(r, ms));
			const [approval, refunded] = await Promise.allSettled([signedCall(b, "payments.reversals.approve", { id: proposed.id, staffId: uuidv7() }), later(i * 8).then(() => refund(a, t.id, 200))]);
			const codes = [approval, refunded].map(r => (r.status === "fulfilled" ? "ok" : String((r.reason as { type?: string }).type)));
			assert.ok((codes[0] === "ok") !== (codes[1] === "ok"), `both or neither went ahead: ${codes.join(", ")}`);
			assert.ok(codes.includes("ALREADY_REFUNDED") || codes.includes("ALREADY_REVERSED"), codes.join(", "));
			outcomes.push(codes[0] === "ok" ? "reversed" : "refunded");
		}
		process.stdout.write(`# reversal against refund races: ${outcomes.join(", ")}\n`);
		await assertInvariants();
	});

	it("races seeded partial refunds of the same top-ups from two nodes: none exceeds its top-up, each ends completed or compensated once", async () => {
		const rnd = seededRandom(20261202);
		const customers = [await customer(), await customer(), await customer()];
		const topups: { id: string; amount: number; accountId: string }[] = [];
		for (let i = 0; i < 12; i++) {
			const c = customers[i % customers.length] as { userId: string; accountId: string };
			const amount = 2_000 + Math.floor(rnd() * 8_000);
			const t = await topup(c, amount, i % 2 === 0 ? "card" : "bank");
			topups.push({ id: t.id, amount, accountId: c.accountId });
		}
		const before = new Map<string, number>();
		for (const c of customers) before.set(c.accountId, await posted(c.accountId));
		// Declines for some refunds, lost answers (technical failures) for others: the sweep re-asks.
		for (const provider of ["card", "bank"]) await a.call("providers.simulate", { provider, failurePercent: 20, refundDeclinePercent: 25 });
		const answers = await Promise.all(topups.flatMap(t => Array.from({ length: 6 }, (_, k) => {
			const amount = 1 + Math.floor(rnd() * t.amount * 0.45);
			return refund(k % 2 === 0 ? a : b, t.id, amount).then(r => r.status, (err: { type?: string }) => {
				if (err.type === "REFUND_EXCEEDS_PAYMENT") return "refused";
				throw err;
			});
		})));
		for (const provider of ["card", "bank"]) await a.call("providers.simulate", { provider, failurePercent: 0 });
		assert.ok(answers.includes("refused"), "no refund was refused: the race never tried to exceed a top-up");
		await until("every refund completed or compensated", async () => {
			await a.call("payments.resume", {});
			return (await inFlight()) === 0;
		}, 60_000, 200);

		const rows = (await sql.query<{ payment_id: string; status: string; amount: string; hold: string | null; failure_code: string | null }>(
			"SELECT r.payment_id, r.status, r.amount::text, h.status AS hold, r.failure_code FROM payments.topup_refunds r LEFT JOIN ledger.holds h ON h.id = r.hold_id WHERE r.payment_id = ANY($1::uuid[])",
			[topups.map(t => t.id)],
		)).rows;
		assert.equal(rows.length, topups.length * 6, "one row per refund key, refusals included");
		const counts = { completed: 0, compensated: 0, refused: 0 };
		const refunded = new Map<string, number>();
		for (const r of rows) {
			assert.ok(["completed", "compensated", "refused"].includes(r.status), r.status);
			counts[r.status as keyof typeof counts] += 1;
			if (r.status === "completed") {
				assert.equal(r.hold, "posted");
				refunded.set(r.payment_id, (refunded.get(r.payment_id) ?? 0) + Number(r.amount));
			}
			if (r.status === "compensated") assert.equal(r.hold, "voided");
			if (r.status === "refused") assert.equal(r.hold, null);
		}
		assert.ok(counts.completed > 0 && counts.compensated > 0 && counts.refused > 0, JSON.stringify(counts));
		for (const t of topups) assert.ok((refunded.get(t.id) ?? 0) <= t.amount, `top-up ${t.id} refunded ${refunded.get(t.id)} of ${t.amount}`);
		// Each customer's balance is their top-ups less their completed refunds; no hold left pending.
		for (const c of customers) {
			const out = topups.filter(t => t.accountId === c.accountId).reduce((s, t) => s + (refunded.get(t.id) ?? 0), 0);
			assert.equal(await posted(c.accountId), (before.get(c.accountId) ?? 0) - out);
		}
		assert.equal((await sql.query("SELECT count(*) AS n FROM ledger.holds WHERE status = 'pending'")).rows[0].n, "0");
		const events = await sql.query("SELECT count(*) AS n, count(DISTINCT e->'payload'->>'refundId') AS ids FROM payments.outbox o, json_array_elements(o.events) e WHERE e->>'event' = 'payment.refunded' AND e->'payload'->>'paymentId' = ANY($1::text[])", [topups.map(t => t.id)]);
		assert.deepEqual([Number(events.rows[0].n), Number(events.rows[0].ids)], [counts.completed, counts.completed]);
		await assertInvariants();
		process.stdout.write(`# top-up refunds race: ${rows.length} refunds of ${topups.length} top-ups, ${JSON.stringify(counts)}\n`);
	});

	it("never holds from a customer what refunds gave back, records the dispute at its amount, and refuses refunds beyond what disputes leave, either order and racing", async () => {
		for (const provider of ["card", "bank"]) await a.call("providers.simulate", { provider, failurePercent: 0, refundDeclinePercent: 0 });
		const deadline = new Date(Date.now() + 7 * 86_400_000).toISOString();
		let n = 0;
		const dispute = (node: ServiceBroker, paymentId: string, amount: number) => {
			const id = `tr-dp-${++n}-${uuidv7()}`;
			return node.call<{ outcome: string }, object>("payments.providerCallback", { provider: "card", eventId: `${id}:open`, paymentId, ref: `ref-${paymentId}`, status: "dispute_opened", sequence: 1, disputeId: id, amount, deadline }).then(r => ({ ...r, id }));
		};
		type Row = { amount: string; held_amount: string; shortfall: string; refunded_overlap: string; provider_dispute_id: string };
		const disputesOf = async (paymentId: string) => (await sql.query<Row>("SELECT amount::text, held_amount::text, shortfall::text, refunded_overlap::text, provider_dispute_id FROM payments.disputes WHERE payment_id = $1 ORDER BY created_at", [paymentId])).rows
			.map(r => ({ id: r.provider_dispute_id, amount: Number(r.amount), held: Number(r.held_amount), shortfall: Number(r.shortfall), overlap: Number(r.refunded_overlap) }));
		const c = await customer();
		// Plenty on the account: only the top-up's own figures may limit what a dispute holds.
		await topup(c, 50_000, "card");

		// Top-up 100.00, refund 70.00, then a dispute of 50.00: recorded at 50.00, 30.00 held, 20.00 already refunded.
		const t1 = await topup(c, 10_000, "card");
		assert.equal((await refund(a, t1.id, 7_000)).status, "completed");
		const before = await posted(c.accountId);
		const opened = await dispute(b, t1.id, 5_000);
		assert.equal(opened.outcome, "dispute_opened");
		assert.deepEqual((await disputesOf(t1.id)).map(({ id: _id, ...d }) => d), [{ amount: 5_000, held: 3_000, shortfall: 2_000, overlap: 2_000 }]);
		const view: { alreadyRefunded: number; heldAmount: number } = await a.call("payments.disputes.get", { id: (await sql.query("SELECT id FROM payments.disputes WHERE provider_dispute_id = $1", [opened.id])).rows[0].id });
		assert.deepEqual([view.alreadyRefunded, view.heldAmount], [2_000, 3_000]);
		await refusedWith(refund(b, t1.id, 1), "REFUND_EXCEEDS_PAYMENT");
		// Lost: the customer pays what was held, suspense the part already refunded.
		const suspenseBefore = Number((await sql.query("SELECT coalesce(sum(posted), 0) AS p FROM ledger.accounts WHERE code = 'suspense:disputes:USD'")).rows[0].p);
		assert.equal((await a.call<{ outcome: string }, object>("payments.providerCallback", { provider: "card", eventId: `${opened.id}:lost`, paymentId: t1.id, ref: `ref-${t1.id}`, status: "dispute_lost", sequence: 2, disputeId: opened.id })).outcome, "dispute_lost");
		assert.equal(await posted(c.accountId), before - 3_000);
		assert.equal(Number((await sql.query("SELECT coalesce(sum(posted), 0) AS p FROM ledger.accounts WHERE code = 'suspense:disputes:USD'")).rows[0].p), suspenseBefore - 2_000);

		// The other order: a dispute of 50.00 first (all of it held), then a refund of 70.00 is refused, one of 50.00 goes through.
		const t2 = await topup(c, 10_000, "card");
		assert.equal((await dispute(a, t2.id, 5_000)).outcome, "dispute_opened");
		assert.deepEqual((await disputesOf(t2.id)).map(({ id: _id, ...d }) => d), [{ amount: 5_000, held: 5_000, shortfall: 0, overlap: 0 }]);
		await refusedWith(refund(b, t2.id, 7_000), "REFUND_EXCEEDS_PAYMENT");
		assert.equal((await refund(a, t2.id, 5_000)).status, "completed");

		// Racing from both nodes: refunds of 60.00 and 30.00 and a dispute of 40.00 of each top-up, all at once.
		const raced = await Promise.all(Array.from({ length: 6 }, () => topup(c, 10_000, "card")));
		const outcomes = await Promise.all(raced.flatMap((t, i) => [
			refund(i % 2 === 0 ? a : b, t.id, 6_000).then(r => r.status, (e: { type?: string }) => String(e.type)),
			refund(i % 2 === 0 ? b : a, t.id, 3_000).then(r => r.status, (e: { type?: string }) => String(e.type)),
			dispute(i % 2 === 0 ? b : a, t.id, 4_000).then(r => r.outcome),
		]));
		assert.deepEqual([...new Set(outcomes)].filter(o => !["completed", "REFUND_EXCEEDS_PAYMENT", "dispute_opened"].includes(o)), []);
		for (const t of [t1, t2, ...raced]) {
			const ds = await disputesOf(t.id);
			const refunds = (await sql.query<{ status: string; amount: string }>("SELECT status, amount::text FROM payments.topup_refunds WHERE payment_id = $1 AND status IN ('created', 'processing', 'completed')", [t.id])).rows;
			const refunded = refunds.reduce((sum, r) => sum + Number(r.amount), 0);
			// What the customer can lose of a top-up (its refunds and its disputes' holds) never exceeds it; a dispute's own figures add up.
			assert.ok(refunded + ds.reduce((sum, d) => sum + d.held, 0) <= t.amount, `top-up ${t.id}: refunded ${refunded}, disputes ${JSON.stringify(ds)}`);
			assert.ok(refunded + ds.reduce((sum, d) => sum + d.amount - d.overlap, 0) <= t.amount, `top-up ${t.id}: refunded ${refunded}, disputes ${JSON.stringify(ds)}`);
			for (const d of ds) assert.ok(d.held + d.shortfall === d.amount && d.overlap <= d.shortfall, JSON.stringify(d));
		}
		await assertInvariants();
	});
});
