/**
 * Refunds of approved P2P payments in the ledger, on real PostgreSQL: by the payee only (or
 * staff, audited), whole or in parts, never more than the payment, each idempotent, each a transfer
 * linked to the payment. Two ledger nodes on one database refund the same payments at once
 * (the payment's row is locked while its refunds are summed); a seeded run of many refunds
 * ends with every payment's refunds at most its amount and the invariants clean.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker, Context } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { seededRandom, startNode } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";
import { LIVE_BATCH_EVENT, type LiveBatch } from "../../mixins/event-log.ts";

let db: TestDatabase;
let a: ServiceBroker;
let b: ServiceBroker;
let sysId: string;
const refundedEvents: Record<string, unknown>[] = [];

type Refund = { id: string; kind: string; amount: number; paymentId: string; refundedAmount: number; refundableAmount: number; reversesTransferId: string };

async function customer(): Promise<{ ownerId: string; accountId: string }> {
	const ownerId = uuidv7();
	await a.call("ledger.owners.setTier", { ownerId, tier: 3 });
	const acc: { id: string } = await a.call("ledger.accounts.open", { ownerId, currency: "USD" });
	await a.call("ledger.transfers.create", { idempotencyKey: `fund-${acc.id}`, fromAccountId: sysId, toAccountId: acc.id, amount: 1_000_000, currency: "USD" });
	return { ownerId, accountId: acc.id };
}

async function pay(from: { ownerId: string; accountId: string }, to: { accountId: string }, amount: number): Promise<string> {
	const p: { id: string; status: string } = await a.call("ledger.payments.p2p", { idempotencyKey: `pay-${uuidv7()}`, ownerId: from.ownerId, fromAccountId: from.accountId, toAccountId: to.accountId, amount, currency: "USD" });
	assert.equal(p.status, "completed");
	return p.id;
}

const refund = (node: ServiceBroker, paymentId: string, amount: number, by: { ownerId?: string; staffId?: string }, key = `refund-${uuidv7()}`) =>
	node.call<Refund, object>("ledger.payments.refund", { idempotencyKey: key, paymentId, amount, ...by });

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
	await assert.rejects(p, (err: { type?: string }) => {
		assert.equal(err.type, code);
		return true;
	});
}

async function balance(accountId: string): Promise<number> {
	const acc: { balance: { posted: number } } = await a.call("ledger.accounts.get", { id: accountId });
	return acc.balance.posted;
}

async function assertInvariants(): Promise<void> {
	const report: InvariantReport = await a.call("ledger.checkInvariants", {});
	assert.deepEqual(report.violations, []);
}

before(async () => {
	db = await createTestDatabase();
	({ broker: a } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger,audit", NODE_ID: "refunds-a" }));
	({ broker: b } = await startNode({ DATABASE_URL: db.url, SERVICES: "ledger", NODE_ID: "refunds-b" }));
	a.createService({
		name: "spy",
		events: {
			[LIVE_BATCH_EVENT](ctx: Context<LiveBatch>) {
				for (const e of ctx.params.events) if (e.event === "payment.refunded") refundedEvents.push(e.payload);
			},
		},
	});
	const sys: { id: string } = await a.call("ledger.accounts.open", { kind: "system", code: "external:refunds:USD", currency: "USD" });
	sysId = sys.id;
});

after(async () => {
	await a?.stop();
	await b?.stop();
	await db?.drop();
});

describe("refunds", () => {
	it("lets the payee refund in parts up to the payment, idempotently, and nobody else", async () => {
		const payer = await customer();
		const payee = await customer();
		const paymentId = await pay(payer, payee, 1_000);
		const key = `refund-part-${paymentId}`;
		const first = await refund(a, paymentId, 300, { ownerId: payee.ownerId }, key);
		assert.deepEqual([first.kind, first.amount, first.paymentId, first.reversesTransferId, first.refundedAmount, first.refundableAmount], ["refund", 300, paymentId, paymentId, 300, 700]);
		assert.deepEqual(await refund(b, paymentId, 300, { ownerId: payee.ownerId }, key), first);
		await refusedWith(refund(a, paymentId, 301, { ownerId: payee.ownerId }, key), "IDEMPOTENCY_MISMATCH");
		// The payer, a stranger: the payment does not exist for them.
		await refusedWith(refund(a, paymentId, 1, { ownerId: payer.ownerId }), "PAYMENT_NOT_FOUND");
		await refusedWith(refund(a, paymentId, 1, { ownerId: uuidv7() }), "PAYMENT_NOT_FOUND");
		await refusedWith(refund(a, paymentId, 701, { ownerId: payee.ownerId }), "REFUND_EXCEEDS_PAYMENT");
		// A reversal would give back the whole amount again: refused once refunds exist.
		await refusedWith(a.call("ledger.transfers.reverse", { idempotencyKey: `rev-${paymentId}`, transferId: paymentId }), "ALREADY_REFUNDED");
		const rest = await refund(a, paymentId, 700, { staffId: uuidv7() });
		assert.equal(rest.refundableAmount, 0);
		await refusedWith(refund(a, paymentId, 1, { ownerId: payee.ownerId }), "REFUND_EXCEEDS_PAYMENT");
		assert.equal(await balance(payer.accountId), 1_000_000);
		assert.equal(await balance(payee.accountId), 1_000_000);
		const listed: { refundedAmount: number; refundableAmount: number; items: { id: string }[] } = await a.call("ledger.payments.refunds", { paymentId, ownerId: payer.ownerId });
		assert.deepEqual([listed.refundedAmount, listed.refundableAmount, listed.items.map(i => i.id)], [1_000, 0, [first.id, rest.id]]);
		await refusedWith(a.call("ledger.payments.refunds", { paymentId, ownerId: uuidv7() }), "PAYMENT_NOT_FOUND");
		// Only a payment is refundable: the funding transfer is not one.
		await refusedWith(a.call("ledger.payments.refund", { idempotencyKey: `r-${uuidv7()}`, paymentId: uuidv7(), amount: 1, staffId: uuidv7() }), "PAYMENT_NOT_FOUND");
		await assertInvariants();
	});

	it("refunds a payment approved after review, known by its hold's id", async () => {
		const payer = await customer();
		const payee = await customer();
		await pay(payer, payee, 1_000);
		// 6,000.00 is large for the fraud rules: the payment is held for review, then support posts the hold.
		const held: { id: string; status: string } = await a.call("ledger.payments.p2p", { idempotencyKey: `big-${uuidv7()}`, ownerId: payer.ownerId, fromAccountId: payer.accountId, toAccountId: payee.accountId, amount: 600_000, currency: "USD" });
		assert.equal(held.status, "pending_review");
		await a.call("ledger.holds.post", { idempotencyKey: `post-${held.id}`, holdId: held.id });
		const r = await refund(a, held.id, 100_000, { ownerId: payee.ownerId });
		assert.deepEqual([r.paymentId, r.refundedAmount, r.refundableAmount], [held.id, 100_000, 500_000]);
		await refusedWith(refund(a, held.id, 500_001, { ownerId: payee.ownerId }), "REFUND_EXCEEDS_PAYMENT");
		const listed: { paymentId: string; refundedAmount: number } = await a.call("ledger.payments.refunds", { paymentId: held.id, ownerId: payer.ownerId });
		assert.deepEqual([listed.paymentId, listed.refundedAmount], [held.id, 100_000]);
		// A payout's hold post is no payment: nothing to refund there.
		const sysHold: { id: string } = await a.call("ledger.holds.create", { idempotencyKey: `payout-${uuidv7()}`, fromAccountId: payee.accountId, toAccountId: sysId, amount: 10, currency: "USD", timeoutMs: 60_000 });
		const posted: { transfer: { id: string } } = await a.call("ledger.holds.post", { idempotencyKey: `payout-post-${sysHold.id}`, holdId: sysHold.id });
		await refusedWith(refund(a, posted.transfer.id, 1, { staffId: uuidv7() }), "PAYMENT_NOT_FOUND");
		await assertInvariants();
	});

	it("refuses a refund of a reversed payment, and a refund the payee cannot fund", async () => {
		const payer = await customer();
		const payee = await customer();
		const reversed = await pay(payer, payee, 500);
		await a.call("ledger.transfers.reverse", { idempotencyKey: `rev-${reversed}`, transferId: reversed });
		await refusedWith(refund(a, reversed, 1, { ownerId: payee.ownerId }), "ALREADY_REVERSED");
		const paymentId = await pay(payer, payee, 2_000);
		await a.call("ledger.transfers.create", { idempotencyKey: `drain-${payee.accountId}`, fromAccountId: payee.accountId, toAccountId: sysId, amount: await balance(payee.accountId), currency: "USD" });
		await refusedWith(refund(a, paymentId, 2_000, { ownerId: payee.ownerId }), "INSUFFICIENT_FUNDS");
		await assertInvariants();
	});

	it("never refunds more than a payment when two nodes refund it at once", async () => {
		const payer = await customer();
		const payee = await customer();
		const paymentId = await pay(payer, payee, 1_000);
		const answers = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => refund(i % 2 === 0 ? a : b, paymentId, 70, { ownerId: payee.ownerId })));
		const ok = answers.filter(r => r.status === "fulfilled");
		const refused = answers.filter((r): r is PromiseRejectedResult => r.status === "rejected");
		assert.equal(ok.length, Math.floor(1_000 / 70));
		for (const r of refused) assert.equal((r.reason as { type?: string }).type, "REFUND_EXCEEDS_PAYMENT");
		assert.equal(await balance(payer.accountId), 1_000_000 - 1_000 + ok.length * 70);
		await assertInvariants();
	});

	it("keeps every payment's refunds within it over a seeded run of refunds from two nodes", async () => {
		const rnd = seededRandom(20261202);
		const people = await Promise.all(Array.from({ length: 6 }, () => customer()));
		const payments: { id: string; amount: number; payee: { ownerId: string } }[] = [];
		for (let i = 0; i < 12; i++) {
			const from = people[i % people.length] as (typeof people)[number];
			const to = people[(i + 1 + Math.floor(rnd() * 4)) % people.length] as (typeof people)[number];
			const amount = 100 + Math.floor(rnd() * 900);
			payments.push({ id: await pay(from, to, amount), amount, payee: to });
		}
		const outcomes = new Map<string, number>();
		for (let round = 0; round < 10; round++) {
			const wave = Array.from({ length: 30 }, () => {
				const p = payments[Math.floor(rnd() * payments.length)] as (typeof payments)[number];
				const amount = 1 + Math.floor(rnd() * p.amount * 0.4);
				return refund(rnd() < 0.5 ? a : b, p.id, amount, { ownerId: p.payee.ownerId }).then(() => "ok", (e: { type?: string }) => e.type ?? "error");
			});
			for (const o of await Promise.all(wave)) outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
		}
		assert.deepEqual([...outcomes.keys()].filter(k => k !== "ok" && k !== "REFUND_EXCEEDS_PAYMENT"), []);
		assert.ok((outcomes.get("ok") ?? 0) > 0 && (outcomes.get("REFUND_EXCEEDS_PAYMENT") ?? 0) > 0, JSON.stringify([...outcomes]));
		for (const p of payments) {
			const r: { refundedAmount: number; items: { amount: number }[] } = await a.call("ledger.payments.refunds", { paymentId: p.id });
			assert.ok(r.refundedAmount <= p.amount, `payment ${p.id}: refunded ${r.refundedAmount} of ${p.amount}`);
			assert.equal(r.items.reduce((s, i) => s + i.amount, 0), r.refundedAmount);
		}
		await assertInvariants();
		// Every refund announced itself once (payment.refunded), with the running total.
		const ids = refundedEvents.map(e => String(e["refundId"]));
		assert.equal(new Set(ids).size, ids.length);
	});
});
