/**
 * Top-ups and payouts through the simulated providers against real PostgreSQL: success,
 * provider decline with the hold voided, business refusal, tier limits on payouts,
 * idempotency, ownership, asynchronous confirmation by signed callbacks to the gateway
 * (duplicates, stale notices and bad signatures), and a saga left in flight (as by a crash)
 * resumed to completion. Money is conserved in every currency after each scenario.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { gatewayPort } from "../support/http.ts";
import { signatureHeader } from "../../lib/signature.ts";
import type { Config } from "../../config/index.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let config: Config;
let seq = 0;
const USER = "018f0000-0000-7000-8000-0000000000a1";

type Payment = { id: string; status: string; type: string; holdId: string | null; transferId: string | null; failureCode: string | null };
type Account = { id: string; balance: { posted: number; pending: number; available: number } };

async function account(ownerId = USER): Promise<Account> {
	return broker.call("ledger.accounts.open", { ownerId, currency: "USD" });
}

async function balance(id: string): Promise<Account["balance"]> {
	return ((await broker.call("ledger.accounts.get", { id })) as Account).balance;
}

const topup = (accountId: string, amount: number, key = `t-${++seq}`) =>
	broker.call<Payment, object>("payments.topup", { idempotencyKey: key, userId: USER, accountId, amount, currency: "USD", provider: "card" });
const payout = (accountId: string, amount: number, destination = "GB00BANK12345", key = `p-${++seq}`) =>
	broker.call<Payment, object>("payments.payout", { idempotencyKey: key, userId: USER, accountId, amount, currency: "USD", provider: "bank", destination });

/** Bank and mobile money confirm by callback: waits until the payment has left processing. */
async function settled(p: Payment): Promise<Payment> {
	for (let i = 0; i < 100; i++) {
		const now: Payment = await broker.call("payments.get", { id: p.id });
		if (now.status !== "processing" && now.status !== "created") return now;
		await new Promise(r => setTimeout(r, 50));
	}
	throw new Error(`payment ${p.id} did not settle`);
}

/** Posts a provider callback to the gateway, signed with the given key (the node's by default). */
async function callback(provider: string, body: Record<string, unknown>, opts: { secret?: string; header?: string } = {}) {
	const text = JSON.stringify(body);
	const res = await fetch(`http://127.0.0.1:${gatewayPort(broker)}/api/v1/providers/${provider}/callbacks`, {
		method: "POST", body: text,
		headers: { "content-type": "application/json", "paymesh-signature": opts.header ?? signatureHeader(opts.secret ?? config.payments.webhookSecret, text) },
	});
	return { status: res.status, body: (await res.json()) as { outcome?: string; error?: { code: string } } };
}

async function assertConserved(): Promise<void> {
	const r: InvariantReport = await broker.call("ledger.checkInvariants", {});
	assert.deepEqual(r.violations, []);
	for (const c of r.currencies) assert.equal(c.sum, "0");
}

before(async () => {
	db = await createTestDatabase();
	({ broker, config } = await startNode({ DATABASE_URL: db.url, SERVICES: "api,ledger,payments,providers,fraud,users", PORT: "0", HOST: "127.0.0.1",
		PROVIDER_LATENCY_MS: "1", PAYMENT_RESUME_AFTER_MS: "100", PROVIDER_BREAKER_REQUESTS_MIN: "3", PROVIDER_BREAKER_HALF_OPEN_MS: "300",
	}));
	// Tier 1 (the default): 1,000 USD per payout, 5,000 USD a day.
	await broker.call("users.create", { userId: USER, email: "payer@example.com", name: "Payer" });
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("payments", () => {
	it("tops up from the provider's system account", async () => {
		const a = await account();
		const p = await topup(a.id, 5_000);
		assert.deepEqual([p.type, p.status, p.failureCode], ["topup", "completed", null]);
		assert.ok(p.transferId);
		assert.deepEqual(await balance(a.id), { posted: 5_000, pending: 0, available: 5_000 });
		await assertConserved();
	});

	it("pays out through a hold that is posted when the provider confirms", async () => {
		const a = await account();
		await topup(a.id, 5_000);
		const accepted = await payout(a.id, 1_200);
		// The bank confirms later, by a signed callback to the gateway.
		assert.deepEqual([accepted.type, accepted.status], ["payout", "processing"]);
		assert.deepEqual(await balance(a.id), { posted: 5_000, pending: 1_200, available: 3_800 });
		const p = await settled(accepted);
		assert.equal(p.status, "completed");
		const hold: { status: string; postedAmount: number } = await broker.call("ledger.holds.get", { id: p.holdId });
		assert.deepEqual([hold.status, hold.postedAmount], ["posted", 1_200]);
		assert.deepEqual(await balance(a.id), { posted: 3_800, pending: 0, available: 3_800 });
		await assertConserved();
	});

	it("voids the hold when the provider declines, leaving the money where it was", async () => {
		const a = await account();
		await topup(a.id, 5_000);
		const p = await settled(await payout(a.id, 1_000, "GB00BANK-reject"));
		assert.deepEqual([p.status, p.failureCode], ["failed", "PROVIDER_DECLINED"]);
		const hold: { status: string } = await broker.call("ledger.holds.get", { id: p.holdId });
		assert.equal(hold.status, "voided");
		assert.deepEqual(await balance(a.id), { posted: 5_000, pending: 0, available: 5_000 });
		await assertConserved();
	});

	it("refuses a payout above the balance with the ledger's code and records it failed", async () => {
		const a = await account();
		await assert.rejects(payout(a.id, 1, "GB00BANK12345", "broke-1"), (e: { type?: string }) => e.type === "INSUFFICIENT_FUNDS");
		// The same key replays the same refusal.
		await assert.rejects(payout(a.id, 1, "GB00BANK12345", "broke-1"), (e: { type?: string }) => e.type === "INSUFFICIENT_FUNDS");
	});

	it("enforces the sender's tier limits on payouts (LIMIT_EXCEEDED), holding nothing", async () => {
		// A payer of its own, so the other scenarios' payments do not weigh in its fraud score.
		const payer = "018f0000-0000-7000-8000-0000000000d4";
		await broker.call("users.create", { userId: payer, email: "limits@example.com", name: "Limits" });
		const a = await account(payer);
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:seed:USD", currency: "USD" });
		await broker.call("ledger.transfers.create", { idempotencyKey: "lim-fund", fromAccountId: sys.id, toAccountId: a.id, amount: 700_000, currency: "USD" });
		const out = (amount: number, key: string) =>
			broker.call<Payment, object>("payments.payout", { idempotencyKey: key, userId: payer, accountId: a.id, amount, currency: "USD", provider: "bank", destination: "GB00BANK777" });
		await assert.rejects(out(100_001, "lim-1"), (e: { type?: string }) => e.type === "LIMIT_EXCEEDED");
		for (let i = 0; i < 5; i++) assert.equal((await settled(await out(99_000, `lim-ok-${i}`))).status, "completed");
		// 4,950 of 5,000 USD used today: 50.01 USD more is over the day's budget.
		await assert.rejects(out(5_001, "lim-2"), (e: { type?: string }) => e.type === "LIMIT_EXCEEDED");
		assert.equal((await settled(await out(5_000, "lim-3"))).status, "completed");
		assert.deepEqual(await balance(a.id), { posted: 200_000, pending: 0, available: 200_000 });
		await assertConserved();
	});

	it("settles on the provider's signed callback once: duplicates, stale notices and bad signatures change nothing", async () => {
		const a = await account();
		await topup(a.id, 5_000);
		// Stop the automatic callbacks' effect from racing the assertions: take a payment the
		// provider already settled, then replay and forge its notices by hand.
		const p = await settled(await payout(a.id, 1_000));
		assert.equal(p.status, "completed");
		const ref = `bank-payout:${p.id}`;
		const final = { eventId: `${ref}:2`, paymentId: p.id, ref, status: "succeeded", sequence: 2 };
		assert.deepEqual(await callback("bank", final), { status: 200, body: { received: true, outcome: "duplicate" } });
		// An interim notice arriving after the final one, and a contradicting late notice, are recorded but change nothing.
		assert.equal((await callback("bank", { ...final, eventId: `${ref}:1`, status: "processing", sequence: 1 })).body.outcome, "duplicate");
		assert.equal((await callback("bank", { ...final, eventId: `${ref}:9`, status: "failed", sequence: 9 })).body.outcome, "already_final");
		assert.equal((await callback("bank", { ...final, eventId: `${ref}:10`, paymentId: "018f0000-0000-7000-8000-0000000000ff" })).body.outcome, "unknown_payment");
		// Bad signatures: another key, none, a stale time, a malformed header.
		assert.equal((await callback("bank", { ...final, eventId: "forged-1", status: "failed" }, { secret: "x".repeat(40) })).status, 401);
		assert.equal((await callback("bank", { ...final, eventId: "forged-2" }, { header: "" })).body.error?.code, "INVALID_SIGNATURE");
		const stale = JSON.stringify({ ...final, eventId: "forged-3" });
		assert.equal((await callback("bank", { ...final, eventId: "forged-3" }, { header: signatureHeader(config.payments.webhookSecret, stale, Math.floor(Date.now() / 1000) - 600) })).status, 401);
		assert.equal((await callback("bank", { ...final, eventId: "forged-4" }, { header: "t=1,v1=zz" })).status, 401);
		// A signed but invalid body is a 400, an unknown provider a 404.
		assert.equal((await callback("bank", { ...final, eventId: "bad-1", extra: true })).status, 400);
		assert.equal((await callback("pigeon", { ...final, eventId: "bad-2" })).status, 404);
		assert.equal(((await broker.call("payments.get", { id: p.id })) as Payment).status, "completed");
		assert.deepEqual(await balance(a.id), { posted: 4_000, pending: 0, available: 4_000 });
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			const rows = (await c.query("SELECT event_id, outcome FROM payments.provider_callbacks WHERE payment_id = $1 ORDER BY event_id", [p.id])).rows;
			assert.deepEqual(rows.map(r => r.outcome).sort(), ["already_final", "completed", "interim"]);
		} finally {
			await c.end();
		}
		await assertConserved();
	});

	it("is idempotent by key, refuses a reused key with another request, and hides foreign accounts", async () => {
		const a = await account();
		const first = await topup(a.id, 700, "same-key");
		const again = await topup(a.id, 700, "same-key");
		assert.equal(again.id, first.id);
		await assert.rejects(topup(a.id, 701, "same-key"), (e: { type?: string }) => e.type === "IDEMPOTENCY_MISMATCH");
		assert.equal((await balance(a.id)).posted, 700);
		const foreign = await account("018f0000-0000-7000-8000-0000000000b2");
		await assert.rejects(topup(foreign.id, 1), (e: { type?: string }) => e.type === "ACCOUNT_NOT_FOUND");
		await assert.rejects(broker.call("payments.get", { id: first.id, userId: "018f0000-0000-7000-8000-0000000000b2" }), (e: { type?: string }) => e.type === "PAYMENT_NOT_FOUND");
	});

	it("opens a provider's circuit after failures (fast 503, others unaffected) and closes it after a success", async () => {
		const a = await account();
		await broker.call("providers.simulate", { provider: "mobile_money", failurePercent: 100 });
		const mm = (key: string) => broker.call<Payment, object>("payments.topup", { idempotencyKey: key, userId: USER, accountId: a.id, amount: 100, currency: "USD", provider: "mobile_money" });
		const inFlight: Payment[] = [];
		for (let i = 0; i < 3; i++) inFlight.push(await mm(`cb-${i}`));
		// A technical failure leaves the payment in flight, with nothing credited.
		assert.deepEqual(inFlight.map(p => p.status), ["processing", "processing", "processing"]);
		await assert.rejects(mm("cb-open"), (e: { type?: string; code?: number }) => e.type === "PROVIDER_UNAVAILABLE" && e.code === 503);
		// Other providers keep their own circuits.
		assert.equal((await topup(a.id, 50)).status, "completed");
		await broker.call("providers.simulate", { provider: "mobile_money", failurePercent: 0 });
		await new Promise(r => setTimeout(r, 400));
		// Half-open: one trial call goes through, succeeds, and closes the circuit. The resume
		// sweep may be making that trial call itself, which holds others off for a moment:
		// PROVIDER_UNAVAILABLE is retryable, so retry it like a client would.
		let reopened: Payment | null = null;
		for (let i = 0; i < 20 && !reopened; i++) {
			reopened = await mm("cb-open").catch(async (e: { type?: string }) => {
				if (e.type !== "PROVIDER_UNAVAILABLE") throw e;
				await new Promise(r => setTimeout(r, 100));
				return null;
			});
		}
		assert.ok(reopened);
		assert.equal((await settled(reopened)).status, "completed");
		assert.equal((await settled(await mm("cb-after"))).status, "completed");
		// The sweep completes the payments the failures left in flight, once each.
		const statuses = async () => Promise.all(inFlight.map(async p => ((await broker.call("payments.get", { id: p.id })) as Payment).status));
		for (let i = 0; i < 20 && (await statuses()).some(s => s !== "completed"); i++) {
			await new Promise(r => setTimeout(r, 150));
			await broker.call("payments.resume", {});
		}
		assert.deepEqual(await statuses(), ["completed", "completed", "completed"]);
		assert.equal((await balance(a.id)).posted, 50 + 100 * 5);
		await assertConserved();
	});

	it("resumes a payout left in flight by a crash and completes it exactly once", async () => {
		const a = await account();
		await topup(a.id, 5_000);
		// What a node that died after the hold and the status change leaves behind.
		const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:card:USD", currency: "USD" });
		const paymentId = "018f0000-0000-7000-8000-0000000000c3";
		const hold: { id: string } = await broker.call("ledger.holds.create", {
			idempotencyKey: `payment:${paymentId}:hold`, fromAccountId: a.id, toAccountId: sys.id, amount: 900, currency: "USD", timeoutMs: 86_400_000,
		});
		const c = new pg.Client({ connectionString: db.url });
		await c.connect();
		try {
			await c.query(
				`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash, hold_id, updated_at)
				 VALUES ($1, $2, 'payout', 'processing', 900, 'USD', $3, 'card', 'GB00BANK12345', 'crashed-1', 'x', $4, now() - interval '1 minute')`,
				[paymentId, USER, a.id, hold.id],
			);
		} finally {
			await c.end();
		}
		// Two sweeps at once, beside the node's own (every second here): whichever gets the payment
		// first completes it, and the money moves once.
		await Promise.all([broker.call<{ resumed: number }, object>("payments.resume", {}), broker.call<{ resumed: number }, object>("payments.resume", {})]);
		await until("the payout to complete", async () => (await broker.call<Payment, object>("payments.get", { id: paymentId })).status === "completed", 10_000);
		assert.deepEqual(await balance(a.id), { posted: 4_100, pending: 0, available: 4_100 });
		await assertConserved();
	});
});
