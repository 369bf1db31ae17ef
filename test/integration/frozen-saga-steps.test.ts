/**
 * A saga's own ledger step refused because an account is frozen, on real PostgreSQL. The
 * ledger keeps that refusal under the step's idempotency key (a replay answers it forever, as
 * it answers any refusal), so a saga that asked again under the same key stayed stuck after the
 * account was unfrozen. Each saga now waits while the account is frozen (nothing moves, and the
 * sweep asks nothing more while it still is) and asks under the step's next attempt key once it
 * is active (docs/ledger.md, Idempotency): a payout whose hold post is refused, an approved
 * reviewed P2P payment whose payee is frozen, a bill payment whose money goes back to a frozen
 * account. Money is conserved and every hold posts once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";
import type { BillerProvider } from "../../services/bills/provider.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
/** Support deciding reviews: neither payer nor payee (four eyes). */
const STAFF = uuidv7();

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "users,ledger,payments,providers,fraud,audit,bills", LOG_LEVEL: "fatal", PROVIDER_LATENCY_MS: "0",
		// Only the test sweeps: the node's own payments sweep waits an hour.
		PAYMENT_RESUME_AFTER_MS: "3600000",
		// The bank's own callbacks go nowhere; the test sends the one that matters.
		PROVIDER_CALLBACK_URL: "http://127.0.0.1:9/api/v1/providers",
	});
	broker = node.broker;
});

after(() => node?.stop());

type Payment = { id: string; status: string; holdId: string | null; transferId: string | null };

async function customer(topupMinor: number, tier = 1): Promise<{ userId: string; accountId: string }> {
	const userId = uuidv7();
	const email = `frozen-${userId}@example.com`;
	await broker.call("users.create", { userId, email, name: "Frozen Steps" });
	if (tier > 1) {
		await broker.call("users.markEmailVerified", { id: userId, email });
		await broker.call("users.setTier", { id: userId, tier });
	}
	const accountId = ((await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" })) as { id: string }).id;
	if (topupMinor > 0) {
		const t: Payment = await broker.call("payments.topup", { idempotencyKey: `frozen-top-${userId}`, userId, accountId, amount: topupMinor, currency: "USD", provider: "card" });
		assert.equal(t.status, "completed");
	}
	return { userId, accountId };
}

const freeze = (id: string) => broker.call("ledger.accounts.freeze", { id });
const unfreeze = (id: string) => broker.call("ledger.accounts.unfreeze", { id });

async function balance(id: string): Promise<{ posted: number; pending: number }> {
	const { posted, pending } = ((await broker.call("ledger.accounts.get", { id })) as { balance: { posted: number; pending: number } }).balance;
	return { posted, pending };
}

const paymentRow = async (id: string) =>
	(await node.sql.query<{ status: string; post_attempt: number }>("SELECT status, post_attempt FROM payments.payments WHERE id = $1", [id])).rows[0];
/** The payments resume sweep, as if the payment had waited past PAYMENT_RESUME_AFTER_MS. */
async function resume(paymentId: string): Promise<void> {
	await node.sql.query("UPDATE payments.payments SET updated_at = now() - interval '2 hours' WHERE id = $1", [paymentId]);
	await broker.call("payments.resume", {});
}
const postKeys = async (holdId: string) => (await node.sql.query<{ k: string }>("SELECT idempotency_key AS k FROM ledger.transfers WHERE hold_id = $1", [holdId])).rows.map(r => r.k);

async function assertBalanced(): Promise<void> {
	const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
	assert.deepEqual(report.violations, []);
	assert.deepEqual((await node.sql.query("SELECT hold_id FROM ledger.transfers WHERE kind = 'hold_post' GROUP BY hold_id HAVING count(*) > 1")).rows, [], "a hold posted twice");
}

describe("a saga step refused for a frozen account", () => {
	it("a payout whose hold post is refused waits while the account is frozen and completes once it is unfrozen (resume sweep)", async () => {
		const c = await customer(5_000);
		// The bank confirms by callback: the payout is processing with its money held.
		const p: Payment = await broker.call("payments.payout", { idempotencyKey: `frozen-out-${c.userId}`, userId: c.userId, accountId: c.accountId, amount: 1_200, currency: "USD", provider: "bank", destination: "GB00BANK12345" });
		assert.equal(p.status, "processing");
		assert.ok(p.holdId);
		await freeze(c.accountId);
		// The bank paid out; its success arrives while the account is frozen. The post is refused
		// ACCOUNT_FROZEN, and the ledger keeps that answer under payment:<id>:post.
		const out: { outcome: string } = await broker.call("payments.providerCallback", { provider: "bank", eventId: `frozen-${p.id}:2`, paymentId: p.id, ref: `bank-payout:${p.id}`, status: "succeeded", sequence: 2 });
		assert.equal(out.outcome, "processing");
		assert.deepEqual(await paymentRow(p.id), { status: "processing", post_attempt: 1 });
		assert.deepEqual(await balance(c.accountId), { posted: 5_000, pending: 1_200 }, "the hold keeps the money while it waits");
		// The sweep while still frozen: the accounts are read first, nothing is asked or stored.
		await resume(p.id);
		assert.deepEqual(await paymentRow(p.id), { status: "processing", post_attempt: 1 });
		assert.deepEqual(await postKeys(p.holdId), []);
		// It went to the back of the sweep (the 100 least recently changed): waiting ones never hold its head.
		const { rows: [age] } = await node.sql.query<{ s: number }>("SELECT extract(epoch FROM now() - updated_at)::float8 AS s FROM payments.payments WHERE id = $1", [p.id]);
		assert.ok(age && age.s < 60, `updated_at moved to the sweep's time (${age?.s} s ago)`);

		await unfreeze(c.accountId);
		await resume(p.id);
		const done: Payment = await broker.call("payments.get", { id: p.id });
		assert.equal(done.status, "completed");
		assert.deepEqual(await balance(c.accountId), { posted: 3_800, pending: 0 });
		assert.deepEqual(await postKeys(p.holdId), [`payment:${p.id}:post-1`]);
		await assertBalanced();
	});

	it("an approved reviewed P2P payment whose payee is frozen waits, and is paid once the payee is unfrozen", async () => {
		// Tier 3: 6,000.00 fits the tier's limits and is a large amount for the fraud rules (review, the money held).
		const payer = await customer(0, 3);
		const payee = await customer(0);
		const bank = ((await broker.call("ledger.accounts.open", { kind: "system", code: "external:frozen:USD", currency: "USD" })) as { id: string }).id;
		await broker.call("ledger.transfers.create", { idempotencyKey: `frozen-fund-${payer.userId}`, fromAccountId: bank, toAccountId: payer.accountId, amount: 1_000_000, currency: "USD" });
		const pay = (key: string, amount: number) => broker.call<Payment, object>("payments.p2p", { idempotencyKey: `frozen-p2p-${key}-${payer.userId}`, userId: payer.userId, accountId: payer.accountId, toAccountId: payee.accountId, amount, currency: "USD" });
		// A small payment first: a large one to a new payee would be declined outright.
		assert.equal((await pay("known", 1_000)).status, "completed");
		const held = await pay("large", 600_000);
		assert.equal(held.status, "pending_review");
		assert.ok(held.holdId);
		await freeze(payee.accountId);
		// Support approves: the post is refused (the payee is frozen) and the payment waits, approved.
		const approved: Payment = await broker.call("payments.review.approve", { id: held.id, staffId: STAFF, reason: "customer confirmed" });
		assert.equal(approved.status, "processing");
		assert.deepEqual(await paymentRow(held.id), { status: "processing", post_attempt: 1 });
		await resume(held.id);
		assert.deepEqual(await paymentRow(held.id), { status: "processing", post_attempt: 1 });
		assert.deepEqual([await balance(payer.accountId), await balance(payee.accountId)], [{ posted: 999_000, pending: 600_000 }, { posted: 1_000, pending: 0 }]);

		await unfreeze(payee.accountId);
		await resume(held.id);
		assert.equal(((await broker.call("payments.get", { id: held.id })) as Payment).status, "completed");
		assert.deepEqual([await balance(payer.accountId), await balance(payee.accountId)], [{ posted: 399_000, pending: 0 }, { posted: 601_000, pending: 0 }]);
		assert.deepEqual(await postKeys(held.holdId), [`payment:${held.id}:post-1`]);
		await assertBalanced();
	});

	it("a bill payment the biller refuses gives the money back to a frozen account once it is unfrozen", async () => {
		const c = await customer(0);
		const bank = ((await broker.call("ledger.accounts.open", { kind: "system", code: "external:frozen:USD", currency: "USD" })) as { id: string }).id;
		await broker.call("ledger.transfers.create", { idempotencyKey: `frozen-bill-fund-${c.userId}`, fromAccountId: bank, toAccountId: c.accountId, amount: 60_000, currency: "USD" });
		const service = broker.getLocalService("bills");
		const biller = Reflect.get(service, "provider") as BillerProvider;
		// The biller refuses the bill (a reference ending in 9999), and support freezes the customer's account just before it answers.
		const freezing: BillerProvider = {
			lookup: (code, reference, now) => biller.lookup(code, reference, now),
			pay: async req => {
				await freeze(c.accountId);
				return biller.pay(req);
			},
		};
		Reflect.set(service, "provider", freezing);
		let p: { id: string; status: string; total: number };
		try {
			const q: { id: string } = await broker.call("bills.quote", { userId: c.userId, billerCode: "city_power", reference: "55559999" });
			p = await broker.call("bills.pay", { userId: c.userId, idempotencyKey: `frozen-bill-${c.userId}`, quoteId: q.id, fromAccountId: c.accountId });
		} finally {
			Reflect.set(service, "provider", biller);
		}
		// The return to the frozen account is refused (ACCOUNT_FROZEN, kept under bill:<id>:return): the payment waits.
		const billRow = async () => (await node.sql.query<{ status: string; return_attempt: number }>("SELECT status, return_attempt FROM bills.payments WHERE id = $1", [p.id])).rows[0];
		assert.equal(p.status, "returning");
		assert.deepEqual(await billRow(), { status: "returning", return_attempt: 1 });
		assert.equal((await balance(c.accountId)).posted, 60_000 - p.total);
		// The bills sweep (its clock a minute on) while still frozen: the accounts are read first, nothing is sent.
		const sweep = () => broker.call("bills.sweep", { now: new Date(Date.now() + 60_000).toISOString() });
		await sweep();
		assert.deepEqual(await billRow(), { status: "returning", return_attempt: 1 });

		await unfreeze(c.accountId);
		await sweep();
		assert.deepEqual(await billRow(), { status: "returned", return_attempt: 1 });
		assert.equal((await balance(c.accountId)).posted, 60_000);
		const returned = (await node.sql.query<{ k: string }>("SELECT idempotency_key AS k FROM ledger.transfers WHERE idempotency_key LIKE $1", [`bill:${p.id}:return%`])).rows.map(r => r.k);
		assert.deepEqual(returned, [`bill:${p.id}:return-1`]);
		await assertBalanced();
	});
});
