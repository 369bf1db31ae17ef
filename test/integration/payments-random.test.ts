/**
 * Randomized saga test: 1,000 top-ups and payouts from 16 concurrent callers, with
 * technical provider failures and timeouts after the provider acted (seeded), provider declines, fraud reviews and declines,
 * insufficient funds and duplicate requests, all drawn from one seed. Bank and mobile money
 * confirm by signed callbacks through the gateway, a share of them sent twice and a share
 * with the interim notice after the final one (also from the seed). Afterwards every
 * payment is final or provably in flight, no hold is pending without a payment in flight,
 * each account holds exactly its completed top-ups less its completed payouts, and the
 * ledger's invariants hold in every currency. Set PAYMENTS_RANDOM_SEED to replay another.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

const SEED = Number(process.env["PAYMENTS_RANDOM_SEED"] ?? 2026);
const PAYMENTS = 1_000;
const CALLERS = 16;
const USERS = 40;
const ALLOWED = new Set(["INSUFFICIENT_FUNDS", "FRAUD_DECLINED"]);
/** The support agent who decides the reviews: nobody among the payers (four eyes). */
const STAFF = "018f0000-0000-7000-8000-00000000057a";

let db: TestDatabase;
let broker: ServiceBroker;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({
		DATABASE_URL: db.url, SERVICES: "api,ledger,payments,providers,fraud,users,audit", PORT: "0", HOST: "127.0.0.1", PROVIDER_LATENCY_MS: "1", PROVIDER_FAILURE_PERCENT: "15",
		PROVIDER_SEED: String(SEED), PAYMENT_RESUME_AFTER_MS: "100", PROVIDER_BREAKER_REQUESTS_MIN: "10000",
		PROVIDER_CALLBACK_DUPLICATE_PERCENT: "20", PROVIDER_CALLBACK_REORDER_PERCENT: "20", RATE_LIMIT_PER_IP: "10000000",
		PROVIDER_TIMEOUT_PERCENT: "5", PROVIDER_TIMEOUT_MS: "150",
	}));
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

type Payment = { id: string; status: string; type: string };

describe("randomized payment sagas", () => {
	it(`drives ${PAYMENTS} payments with injected failures to consistent ends (seed ${SEED})`, async () => {
		const users = Array.from({ length: USERS }, (_, i) => `018f0000-0000-7000-8000-${(0xa00000000000 + i).toString(16)}`);
		const accounts = new Map<string, string>();
		for (const [i, u] of users.entries()) {
			// Tier 3, so the tier limits (tested on their own) do not crowd out the saga outcomes.
			await broker.call("users.create", { userId: u, email: `random-${i}@example.com`, name: `Random ${i}` });
			// A tier above 1 needs a verified address (issue 16).
			await broker.call("users.markEmailVerified", { id: u, email: `random-${i}@example.com` });
			await broker.call("users.setTier", { id: u, tier: 3 });
			accounts.set(u, ((await broker.call("ledger.accounts.open", { ownerId: u, currency: "USD" })) as { id: string }).id);
		}
		const outcomes = new Map<string, number>();
		const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
		let issued = 0;

		async function caller(index: number): Promise<void> {
			const rnd = seededRandom(SEED * 97 + index);
			const done: { action: string; params: Record<string, unknown>; answer: string }[] = [];
			let n = 0;
			while (issued < PAYMENTS) {
				issued += 1;
				let action: string;
				let params: Record<string, unknown>;
				const prior = done[Math.floor(rnd() * done.length)];
				if (prior && rnd() < 0.05) {
					({ action, params } = prior);
				} else {
					const user = users[Math.floor(rnd() * USERS)] as string;
					const large = rnd() < 0.03;
					const amount = large ? 600_000 : 100 + Math.floor(rnd() * 50_000);
					const provider = ["card", "bank", "mobile_money"][Math.floor(rnd() * 3)];
					action = rnd() < 0.6 ? "payments.topup" : "payments.payout";
					params = { idempotencyKey: `r-${index}-${n++}`, userId: user, accountId: accounts.get(user), amount, currency: "USD", provider };
					if (action === "payments.payout") params["destination"] = rnd() < 0.1 ? "GB00DEST-reject" : `GB00DEST${Math.floor(rnd() * 5)}`;
				}
				let answer: string;
				try {
					const p = await broker.call<Payment, object>(action, params);
					answer = `${p.id}`;
					count(`${action}:${p.status}`);
				} catch (err) {
					const code = (err as { type?: string }).type ?? "?";
					assert.ok(ALLOWED.has(code), `unexpected ${code}: ${(err as Error).message}`);
					answer = code;
					count(`${action}:${code}`);
				}
				if (prior && prior.action === action && prior.params === params) {
					// A duplicate request gets the same payment (or the same refusal) back.
					assert.equal(answer, prior.answer);
					count("duplicate");
				} else {
					done.push({ action, params, answer });
				}
			}
		}
		await Promise.all(Array.from({ length: CALLERS }, (_, i) => caller(i)));

		// Let the resume sweep finish what the failures left in flight, then support decides the reviews.
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const inFlight = async () => Number((await c.query("SELECT count(*) AS n FROM payments.payments WHERE status IN ('created', 'processing')")).rows[0].n);
			await broker.call("providers.simulate", { provider: "card", failurePercent: 0 });
			await broker.call("providers.simulate", { provider: "bank", failurePercent: 0 });
			await broker.call("providers.simulate", { provider: "mobile_money", failurePercent: 0 });
			for (let round = 0; round < 50 && (await inFlight()) > 0; round++) {
				await new Promise(r => setTimeout(r, 120));
				await broker.call("payments.resume", {});
			}
			assert.equal(await inFlight(), 0, "payments are stuck in flight");
			const reviews: { items: { id: string }[] } = await broker.call("payments.review.list", {});
			const decide = seededRandom(SEED + 1);
			for (const r of reviews.items) await broker.call(decide() < 0.5 ? "payments.review.approve" : "payments.review.decline", { id: r.id, staffId: STAFF });
			// Approved bank and mobile money payments wait for their callbacks again.
			for (let round = 0; round < 50 && (await inFlight()) > 0; round++) await new Promise(r => setTimeout(r, 100));
			assert.equal(await inFlight(), 0, "approved payments are stuck in flight");
			// Late duplicates and reordered notices may still be on their way when the last payment
			// ends, and one that has just arrived is "received" for the moment it is applied. None
			// may stay so: every callback seen half-done must finish (bounded). A later arrival
			// being applied at the moment of a single check is not a callback left half-done.
			const halfDone = async () => new Set((await c.query<{ k: string }>("SELECT provider || ':' || event_id AS k FROM payments.provider_callbacks WHERE outcome = 'received'")).rows.map(r => r.k));
			const seen = await halfDone();
			let left = [...seen];
			for (let round = 0; round < 50 && left.length > 0; round++) {
				await new Promise(r => setTimeout(r, 100));
				const now = await halfDone();
				left = left.filter(k => now.has(k));
			}
			assert.deepEqual(left, [], "a callback was left half-processed");
			const callbacks = (await c.query<{ outcome: string; n: string; dup: string }>(
				"SELECT outcome, count(*) AS n, sum(duplicates) AS dup FROM payments.provider_callbacks GROUP BY outcome",
			)).rows;
			const byOutcome = new Map(callbacks.map(r => [r.outcome, Number(r.n)]));
			// Duplicates were counted and ignored, and reordered interim notices found a final payment.
			assert.ok(callbacks.reduce((n, r) => n + Number(r.dup), 0) > 0, `no duplicate callback: ${JSON.stringify(callbacks)}`);
			assert.ok((byOutcome.get("already_final") ?? 0) > 0, `no out-of-order callback: ${JSON.stringify(callbacks)}`);
			assert.ok((byOutcome.get("completed") ?? 0) > 0 && (byOutcome.get("failed") ?? 0) > 0, JSON.stringify(callbacks));

			const statuses = (await c.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM payments.payments GROUP BY status")).rows;
			for (const s of statuses) assert.ok(["completed", "failed"].includes(s.status), `payments left ${s.status}`);
			// A pending hold must belong to a payment still in flight; none are now.
			const orphanHolds = await c.query(
				`SELECT h.id FROM ledger.holds h WHERE h.status = 'pending'
				 AND NOT EXISTS (SELECT 1 FROM payments.payments p WHERE p.hold_id = h.id AND p.status IN ('created', 'processing', 'pending_review'))`,
			);
			assert.equal(orphanHolds.rowCount, 0);
			const holdStates = await c.query<{ status: string; hold: string | null }>(
				"SELECT p.status, h.status AS hold FROM payments.payments p LEFT JOIN ledger.holds h ON h.id = p.hold_id WHERE p.type = 'payout' AND p.hold_id IS NOT NULL",
			);
			for (const r of holdStates.rows) assert.equal(r.hold, r.status === "completed" ? "posted" : "voided");
			const expected = await c.query<{ account_id: string; net: string }>(
				"SELECT account_id, sum(CASE WHEN type = 'topup' THEN amount ELSE -amount END)::text AS net FROM payments.payments WHERE status = 'completed' GROUP BY account_id",
			);
			const nets = new Map(expected.rows.map(r => [r.account_id, BigInt(r.net)]));
			for (const id of accounts.values()) {
				const a: { balance: { posted: number; pending: number } } = await broker.call("ledger.accounts.get", { id });
				assert.equal(BigInt(a.balance.posted), nets.get(id) ?? 0n, `account ${id}`);
				assert.equal(a.balance.pending, 0);
			}
		} finally {
			await c.end();
		}
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		for (const cur of report.currencies) assert.equal(cur.sum, "0");
		const seen = Object.fromEntries(outcomes);
		for (const k of ["payments.topup:completed", "payments.payout:completed", "payments.payout:failed", "payments.topup:pending_review", "payments.payout:INSUFFICIENT_FUNDS", "duplicate"]) {
			assert.ok((outcomes.get(k) ?? 0) > 0, `no ${k} in the run: ${JSON.stringify(seen)}`);
		}
		assert.ok((outcomes.get("payments.topup:processing") ?? 0) + (outcomes.get("payments.payout:processing") ?? 0) > 0, `no provider failure left a payment in flight: ${JSON.stringify(seen)}`);
	});
});
