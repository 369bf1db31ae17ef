/**
 * A top-up refund whose hold ran out before the provider's success was posted
 * (services/payments/topup-refunds.ts), on real PostgreSQL: the provider's answer is lost, the
 * hold's time passes (its expiry moved into the past, the ledger's own sweep kept away), and
 * the refund is driven on. The customer's money is taken back, never paid from suspense while
 * they still have it: a hold past its time that still keeps the money is released under the
 * refund's own key and the account debited; one the sweep already expired is debited alike;
 * suspense pays only when the customer spent the money once nothing held it, and then only
 * what the account no longer has (the refund records both parts, each leg moving once under
 * its key, also when a drive is cut short between them). A release cut short before its debit
 * is finished by the next drive. A frozen account's refusal is never paid from suspense: the
 * refund waits, shown to staff, and is paid from the account once it is unfrozen. A frozen
 * account's refusal of the hold's post (stored under the post's key) waits alike, the hold
 * keeping the money, and the hold is posted under the next attempt's key once unfrozen.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let shop = "";
const STAFF = "018f0000-0000-7000-8000-0000000e5af1";

type TopupRefund = { id: string; status: string; holdId: string | null; transferId: string | null; failureCode: string | null; debited: number | null; shortfall: number | null };

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "ledger,payments,providers,fraud,users,audit", LOG_LEVEL: "fatal", PROVIDER_LATENCY_MS: "0", PROVIDER_BREAKER_REQUESTS_MIN: "1000",
		// Only the test moves time on: the ledger's hold sweep and the payments resume sweep stay away (an hour).
		LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000", PAYMENT_RESUME_AFTER_MS: "3600000",
	});
	broker = node.broker;
	shop = ((await broker.call("ledger.accounts.open", { kind: "system", code: "external:expiryshop:USD", currency: "USD" })) as { id: string }).id;
});

after(() => node?.stop());

/** A customer whose only money is one completed card top-up of `amount`. */
async function customer(amount: number): Promise<{ accountId: string; topupId: string }> {
	const userId = uuidv7();
	await broker.call("users.create", { userId, email: `expiry-${userId}@example.com`, name: "Expiry Customer" });
	const accountId = ((await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" })) as { id: string }).id;
	const t: { id: string; status: string } = await broker.call("payments.topup", { idempotencyKey: `expiry-top-${userId}`, userId, accountId, amount, currency: "USD", provider: "card" });
	assert.equal(t.status, "completed");
	return { accountId, topupId: t.id };
}

const refund = (topupId: string, amount: number, key: string) =>
	broker.call<TopupRefund, object>("payments.topupRefunds.create", { idempotencyKey: key, paymentId: topupId, amount, staffId: STAFF, reason: "customer asked" });

/** A refund held and sent to the provider, whose answer was lost (it stays processing); then its hold's time passes. */
async function overdueRefund(topupId: string, amount: number, key: string): Promise<TopupRefund> {
	await broker.call("providers.simulate", { provider: "card", failurePercent: 100 });
	const r = await refund(topupId, amount, key);
	await broker.call("providers.simulate", { provider: "card", failurePercent: 0 });
	assert.equal(r.status, "processing");
	assert.ok(r.holdId);
	await node.sql.query("UPDATE ledger.holds SET expires_at = now() - interval '1 second' WHERE id = $1", [r.holdId]);
	return r;
}

async function balance(accountId: string): Promise<{ posted: number; pending: number }> {
	const { posted, pending } = ((await broker.call("ledger.accounts.get", { id: accountId })) as { balance: { posted: number; pending: number } }).balance;
	return { posted, pending };
}

async function suspense(): Promise<number> {
	return Number((await node.sql.query<{ posted: string }>("SELECT coalesce(sum(posted), 0)::text AS posted FROM ledger.accounts WHERE code = 'suspense:refunds:USD'")).rows[0]?.posted ?? 0);
}

const transfersOf = async (refundId: string) =>
	(await node.sql.query<{ idempotency_key: string; amount: string; to: string }>(
		"SELECT t.idempotency_key, t.amount::text, coalesce(a.code, 'customer') AS to FROM ledger.transfers t JOIN ledger.accounts a ON a.id = t.to_account_id WHERE t.idempotency_key LIKE $1 ORDER BY t.idempotency_key",
		[`topup-refund:${refundId}:%`],
	)).rows.map(k => [k.idempotency_key.slice(`topup-refund:${refundId}:`.length), Number(k.amount), k.to]);

const holdStatus = async (holdId: string | null) => (await node.sql.query<{ status: string }>("SELECT status FROM ledger.holds WHERE id = $1", [holdId])).rows[0]?.status;

describe("a top-up refund whose hold ran out before it was posted", () => {
	it("releases a hold past its time that still keeps the money, then debits the customer: suspense pays nothing", async () => {
		const c = await customer(4_000);
		const suspenseBefore = await suspense();
		const r = await overdueRefund(c.topupId, 4_000, "expiry-overdue");
		assert.deepEqual(await balance(c.accountId), { posted: 4_000, pending: 4_000 }, "the hold keeps the money past its time");
		// The retry drives it on: the provider answers its success, the post is refused (HOLD_EXPIRED).
		const done = await refund(c.topupId, 4_000, "expiry-overdue");
		assert.equal(done.status, "completed", JSON.stringify(done));
		assert.equal(await holdStatus(r.holdId), "voided", "released under the refund's key");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await suspense(), suspenseBefore, "suspense paid while the customer had the money");
		// The ledger's sweep later finds nothing to give back: the customer does not keep the refunded money.
		await broker.call("ledger.expireHolds", {});
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		const keys = (await node.sql.query<{ idempotency_key: string; amount: string }>("SELECT idempotency_key, amount::text FROM ledger.transfers WHERE idempotency_key LIKE $1 ORDER BY idempotency_key", [`topup-refund:${r.id}:%`])).rows;
		assert.deepEqual(keys.map(k => [k.idempotency_key, Number(k.amount)]), [[`topup-refund:${r.id}:debit`, 4_000]]);
		assert.equal(done.transferId, (await node.sql.query<{ id: string }>("SELECT id FROM ledger.transfers WHERE idempotency_key = $1", [`topup-refund:${r.id}:debit`])).rows[0]?.id);
		// Driven again: nothing more moves.
		assert.equal((await refund(c.topupId, 4_000, "expiry-overdue")).status, "completed");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
	});

	it("debits a customer whose hold the ledger's sweep already expired, and finishes a release cut short before its debit", async () => {
		const swept = await customer(2_500);
		const suspenseBefore = await suspense();
		const r1 = await overdueRefund(swept.topupId, 2_500, "expiry-swept");
		await broker.call("ledger.expireHolds", {});
		assert.equal(await holdStatus(r1.holdId), "expired");
		assert.equal((await refund(swept.topupId, 2_500, "expiry-swept")).status, "completed");
		assert.deepEqual(await balance(swept.accountId), { posted: 0, pending: 0 });

		// The release went through, then the driver died before the debit: the next drive sees the
		// hold voided after the provider's success (a post is refused) and debits.
		const cut = await customer(1_800);
		const r2 = await overdueRefund(cut.topupId, 1_800, "expiry-cut");
		await broker.call("ledger.holds.void", { idempotencyKey: `topup-refund:${r2.id}:release`, holdId: r2.holdId });
		assert.deepEqual(await balance(cut.accountId), { posted: 1_800, pending: 0 });
		assert.equal((await refund(cut.topupId, 1_800, "expiry-cut")).status, "completed");
		assert.deepEqual(await balance(cut.accountId), { posted: 0, pending: 0 });
		assert.equal(await suspense(), suspenseBefore);
	});

	it("pays from suspense only when the customer spent the money once nothing held it, never taking their balance below zero", async () => {
		const c = await customer(3_000);
		const suspenseBefore = await suspense();
		await overdueRefund(c.topupId, 3_000, "expiry-spent");
		await broker.call("ledger.expireHolds", {});
		await broker.call("ledger.transfers.create", { idempotencyKey: `expiry-spend-${c.topupId}`, fromAccountId: c.accountId, toAccountId: shop, amount: 3_000, currency: "USD" });
		const done = await refund(c.topupId, 3_000, "expiry-spent");
		assert.deepEqual([done.status, done.debited, done.shortfall], ["completed", 0, 3_000]);
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await suspense(), suspenseBefore - 3_000);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		assert.deepEqual((await node.sql.query("SELECT id FROM ledger.accounts WHERE kind = 'user' AND posted - pending_debits < 0")).rows, []);
	});

	it("takes what the account still has and pays only the rest from suspense, recorded on the refund, each leg once", async () => {
		const c = await customer(3_000);
		const suspenseBefore = await suspense();
		const r = await overdueRefund(c.topupId, 3_000, "expiry-part");
		await broker.call("ledger.expireHolds", {});
		// Once nothing held it, the customer spent 1,200 of the 3,000.
		await broker.call("ledger.transfers.create", { idempotencyKey: `expiry-part-spend-${c.topupId}`, fromAccountId: c.accountId, toAccountId: shop, amount: 1_200, currency: "USD" });
		const done = await refund(c.topupId, 3_000, "expiry-part");
		assert.deepEqual([done.status, done.debited, done.shortfall, done.failureCode], ["completed", 1_800, 1_200, null]);
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await suspense(), suspenseBefore - 1_200);
		// The account's part goes to suspense, which pays the provider the whole refund in one transfer (the refund's).
		assert.deepEqual(await transfersOf(r.id), [["cover", 3_000, "external:card:USD"], ["take", 1_800, "suspense:refunds:USD"]]);
		assert.equal(done.transferId, (await node.sql.query<{ id: string }>("SELECT id FROM ledger.transfers WHERE idempotency_key = $1", [`topup-refund:${r.id}:cover`])).rows[0]?.id);
		assert.deepEqual(await refund(c.topupId, 3_000, "expiry-part"), done);

		// A drive cut short after the account's part: the next one replays it by its key (the
		// customer received money since: the part stays what it was), then pays the rest.
		const cut = await customer(2_000);
		const suspenseMid = await suspense();
		const r2 = await overdueRefund(cut.topupId, 2_000, "expiry-part-cut");
		await broker.call("ledger.expireHolds", {});
		await broker.call("ledger.transfers.create", { idempotencyKey: `expiry-part-cut-spend-${cut.topupId}`, fromAccountId: cut.accountId, toAccountId: shop, amount: 1_500, currency: "USD" });
		await assert.rejects(broker.call("ledger.transfers.create", { idempotencyKey: `topup-refund:${r2.id}:debit`, fromAccountId: cut.accountId, toAccountId: await cardAccount(), amount: 2_000, currency: "USD", description: `refund of top-up ${cut.topupId} via card` }));
		const part: { amount: number } = await broker.call("ledger.transfers.create", {
			idempotencyKey: `topup-refund:${r2.id}:take`, fromAccountId: cut.accountId, toAccountId: await suspenseAccount(), amount: 2_000, currency: "USD", upTo: true,
			description: `refund of top-up ${cut.topupId} via card (what the account had; the rest from suspense)`,
		});
		assert.equal(part.amount, 500);
		await broker.call("ledger.transfers.create", { idempotencyKey: `expiry-part-cut-back-${cut.topupId}`, fromAccountId: shop, toAccountId: cut.accountId, amount: 700, currency: "USD" });
		const finished = await refund(cut.topupId, 2_000, "expiry-part-cut");
		assert.deepEqual([finished.status, finished.debited, finished.shortfall], ["completed", 500, 1_500]);
		assert.deepEqual(await balance(cut.accountId), { posted: 700, pending: 0 });
		assert.equal(await suspense(), suspenseMid - 1_500);
		assert.deepEqual(await transfersOf(r2.id), [["cover", 2_000, "external:card:USD"], ["take", 500, "suspense:refunds:USD"]]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});

	it("leaves a refund whose account is frozen waiting, shown to staff, never paid from suspense, and debits it once unfrozen", async () => {
		const c = await customer(2_200);
		const suspenseBefore = await suspense();
		const r = await overdueRefund(c.topupId, 2_200, "expiry-frozen");
		await broker.call("ledger.expireHolds", {});
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		const waiting = await refund(c.topupId, 2_200, "expiry-frozen");
		assert.deepEqual([waiting.status, waiting.failureCode, waiting.debited, waiting.shortfall], ["processing", "ACCOUNT_FROZEN", null, null]);
		// Staff see why it waits.
		const listed: { items: TopupRefund[] } = await broker.call("payments.topupRefunds.list", { paymentId: c.topupId });
		assert.deepEqual(listed.items.map(i => [i.id, i.status, i.failureCode]), [[r.id, "processing", "ACCOUNT_FROZEN"]]);
		// Driven again while frozen (a retry; the resume sweep alike): the account is looked at first, nothing more is asked or stored.
		assert.equal((await refund(c.topupId, 2_200, "expiry-frozen")).status, "processing");
		const attempts = async () => (await node.sql.query<{ debit_attempt: number }>("SELECT debit_attempt FROM payments.topup_refunds WHERE id = $1", [r.id])).rows[0]?.debit_attempt;
		assert.equal(await attempts(), 1);
		assert.equal(await suspense(), suspenseBefore);
		assert.deepEqual(await balance(c.accountId), { posted: 2_200, pending: 0 });
		assert.deepEqual(await transfersOf(r.id), []);

		// Unfrozen: the next drive debits the account under the next attempt's key; the waiting code is gone.
		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		const done = await refund(c.topupId, 2_200, "expiry-frozen");
		assert.deepEqual([done.status, done.failureCode, done.debited, done.shortfall], ["completed", null, 2_200, 0]);
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await suspense(), suspenseBefore);
		assert.deepEqual(await transfersOf(r.id), [["debit-1", 2_200, "external:card:USD"]]);
	});
});

async function cardAccount(): Promise<string> {
	return ((await broker.call("ledger.accounts.open", { kind: "system", code: "external:card:USD", currency: "USD" })) as { id: string }).id;
}

async function suspenseAccount(): Promise<string> {
	return ((await broker.call("ledger.accounts.open", { kind: "system", code: "suspense:refunds:USD", currency: "USD" })) as { id: string }).id;
}

describe("a top-up refund whose post is refused for a frozen account", () => {
	it("waits with its hold keeping the money, and posts it under the next attempt's key once the account is unfrozen", async () => {
		const c = await customer(1_500);
		// The provider's answer is lost: the refund is processing, the customer's money held.
		await broker.call("providers.simulate", { provider: "card", failurePercent: 100 });
		const r = await refund(c.topupId, 1_500, "post-frozen");
		await broker.call("providers.simulate", { provider: "card", failurePercent: 0 });
		assert.equal(r.status, "processing");
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		// Driven again (a retry of the request; the sweep alike): the provider refunds, the post is refused ACCOUNT_FROZEN.
		const waiting = await refund(c.topupId, 1_500, "post-frozen");
		assert.deepEqual([waiting.status, waiting.failureCode], ["processing", "ACCOUNT_FROZEN"]);
		assert.deepEqual(await balance(c.accountId), { posted: 1_500, pending: 1_500 }, "the hold keeps the money while it waits");
		assert.equal((await refund(c.topupId, 1_500, "post-frozen")).status, "processing");
		assert.equal(await holdStatus(r.holdId), "pending");

		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		const done = await refund(c.topupId, 1_500, "post-frozen");
		assert.deepEqual([done.status, done.failureCode, done.debited, done.shortfall], ["completed", null, null, null]);
		assert.equal(await holdStatus(r.holdId), "posted");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.deepEqual(await transfersOf(r.id), [["post-1", 1_500, "external:card:USD"]]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});
});
