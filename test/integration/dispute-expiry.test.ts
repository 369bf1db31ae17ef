/**
 * A lost dispute whose hold ran out before the outcome (services/payments/disputes.ts), on real
 * PostgreSQL: the hold's expiry is moved into the past (the ledger's own sweep kept away), then
 * the provider says the dispute is lost. A hold past its time still keeps the customer's money
 * until the sweep, so it is released under the dispute's own key and the customer's account
 * gives back what was held: suspense pays nothing while the customer has the money (before, it
 * paid the whole amount and the sweep then gave the customer the money back). A hold the sweep
 * already expired is recovered alike, as far as the account still has it (suspense pays only
 * the rest); a release cut short is finished; a frozen account's refusal is never paid from
 * suspense: the dispute waits, and is recovered once the account is unfrozen.
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
let seq = 0;

type Dispute = { id: string; status: string; outcome: string | null; heldAmount: number; shortfall: number; recovered: number | null };
type Case = { accountId: string; topupId: string; providerId: string; dispute: Dispute; holdId: string };

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "ledger,payments,providers,fraud,users,audit", LOG_LEVEL: "fatal", PROVIDER_LATENCY_MS: "0",
		// Only the test moves time on: the ledger's hold sweep and the payments resume sweep stay away (an hour).
		LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000", PAYMENT_RESUME_AFTER_MS: "3600000",
	});
	broker = node.broker;
	shop = ((await broker.call("ledger.accounts.open", { kind: "system", code: "external:disputeshop:USD", currency: "USD" })) as { id: string }).id;
});

after(() => node?.stop());

const callback = (c: Pick<Case, "topupId" | "providerId">, status: string, extra: Record<string, unknown> = {}) =>
	broker.call<{ outcome: string }, object>("payments.providerCallback", {
		provider: "card", eventId: `${c.providerId}:${++seq}`, paymentId: c.topupId, ref: `ref-${c.topupId}`, status, sequence: status === "dispute_opened" ? 1 : 2, disputeId: c.providerId, ...extra,
	});

/** A customer whose only money is a card top-up of `amount`, disputed whole, the dispute's hold then past its time. */
async function overdueDispute(amount: number): Promise<Case> {
	const userId = uuidv7();
	await broker.call("users.create", { userId, email: `dexp-${userId}@example.com`, name: "Dispute Customer" });
	const accountId = ((await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" })) as { id: string }).id;
	const t: { id: string; status: string } = await broker.call("payments.topup", { idempotencyKey: `dexp-top-${userId}`, userId, accountId, amount, currency: "USD", provider: "card" });
	assert.equal(t.status, "completed");
	const c = { accountId, topupId: t.id, providerId: `dp-exp-${userId}` };
	assert.equal((await callback(c, "dispute_opened", { amount, deadline: new Date(Date.now() + 7 * 86_400_000).toISOString() })).outcome, "dispute_opened");
	const { rows: [row] } = await node.sql.query<{ id: string; hold_id: string }>("SELECT id, hold_id FROM payments.disputes WHERE provider_dispute_id = $1", [c.providerId]);
	assert.ok(row?.hold_id);
	await node.sql.query("UPDATE ledger.holds SET expires_at = now() - interval '1 second' WHERE id = $1", [row.hold_id]);
	return { ...c, dispute: await dispute(row.id), holdId: row.hold_id };
}

const dispute = (id: string) => broker.call<Dispute, object>("payments.disputes.get", { id });

async function balance(accountId: string): Promise<{ posted: number; pending: number }> {
	const { posted, pending } = ((await broker.call("ledger.accounts.get", { id: accountId })) as { balance: { posted: number; pending: number } }).balance;
	return { posted, pending };
}

const posted = async (code: string) => Number((await node.sql.query<{ posted: string }>("SELECT coalesce(sum(posted), 0)::text AS posted FROM ledger.accounts WHERE code = $1", [code])).rows[0]?.posted ?? 0);
const holdStatus = async (holdId: string) => (await node.sql.query<{ status: string }>("SELECT status FROM ledger.holds WHERE id = $1", [holdId])).rows[0]?.status;
const transfersOf = async (c: Case) =>
	(await node.sql.query<{ idempotency_key: string; amount: string; code: string }>(
		"SELECT t.idempotency_key, t.amount::text, a.code FROM ledger.transfers t JOIN ledger.accounts a ON a.id = t.to_account_id WHERE t.idempotency_key LIKE $1 ORDER BY t.idempotency_key",
		[`dispute:card:${c.providerId}:%`],
	)).rows.map(k => [k.idempotency_key.slice(`dispute:card:${c.providerId}:`.length), Number(k.amount), k.code]);

async function assertBalanced(): Promise<void> {
	const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
	assert.deepEqual(report.violations, []);
	assert.deepEqual((await node.sql.query("SELECT id FROM ledger.accounts WHERE kind = 'user' AND posted - pending_debits < 0")).rows, []);
}

describe("a lost dispute whose hold ran out before the outcome", () => {
	it("releases a hold past its time that still keeps the money and takes it from the customer: suspense pays nothing", async () => {
		const c = await overdueDispute(4_000);
		assert.deepEqual([c.dispute.heldAmount, c.dispute.shortfall], [4_000, 0]);
		assert.deepEqual(await balance(c.accountId), { posted: 4_000, pending: 4_000 }, "the hold keeps the money past its time");
		const suspenseBefore = await posted("suspense:disputes:USD");
		const cardBefore = await posted("external:card:USD");
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		assert.equal(await holdStatus(c.holdId), "voided", "released under the dispute's key");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore, "suspense paid while the customer had the money");
		assert.equal(await posted("external:card:USD"), cardBefore + 4_000);
		const d = await dispute(c.dispute.id);
		assert.deepEqual([d.status, d.recovered], ["lost", 4_000]);
		assert.deepEqual(await transfersOf(c), [["recover", 4_000, "suspense:disputes:USD"], ["shortfall", 4_000, "external:card:USD"]]);
		// The ledger's sweep later finds nothing to give back: the customer does not keep the money the provider took.
		await broker.call("ledger.expireHolds", {});
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		await assertBalanced();
	});

	it("recovers a hold the sweep already expired as far as the account still has it, suspense paying only the rest, and finishes a release cut short", async () => {
		const c = await overdueDispute(3_000);
		await broker.call("ledger.expireHolds", {});
		assert.equal(await holdStatus(c.holdId), "expired");
		// Once nothing held it, the customer spent 1,200.
		await broker.call("ledger.transfers.create", { idempotencyKey: `dexp-spend-${c.topupId}`, fromAccountId: c.accountId, toAccountId: shop, amount: 1_200, currency: "USD" });
		const suspenseBefore = await posted("suspense:disputes:USD");
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore - 1_200);
		assert.equal((await dispute(c.dispute.id)).recovered, 1_800);

		// The release went through, then the driver died: the next outcome delivery drives the recorded outcome on.
		const cut = await overdueDispute(2_500);
		const { rows: [claimed] } = await node.sql.query("UPDATE payments.disputes SET status = 'deciding', outcome = 'lost', decided_by = 'card:cut' WHERE id = $1 RETURNING id", [cut.dispute.id]);
		assert.ok(claimed);
		await broker.call("ledger.holds.void", { idempotencyKey: `dispute:card:${cut.providerId}:release`, holdId: cut.holdId });
		const mid = await posted("suspense:disputes:USD");
		assert.equal((await callback(cut, "dispute_lost")).outcome, "dispute_lost");
		const d = await dispute(cut.dispute.id);
		assert.deepEqual([d.status, d.recovered], ["lost", 2_500]);
		assert.deepEqual(await balance(cut.accountId), { posted: 0, pending: 0 });
		assert.equal(await posted("suspense:disputes:USD"), mid);
		await assertBalanced();
	});

	it("never pays a frozen account's refusal from suspense: the dispute waits, and is recovered once the account is unfrozen", async () => {
		const c = await overdueDispute(2_200);
		await broker.call("ledger.expireHolds", {});
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		const suspenseBefore = await posted("suspense:disputes:USD");
		const cardBefore = await posted("external:card:USD");
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		let d = await dispute(c.dispute.id);
		assert.deepEqual([d.status, d.outcome, d.recovered], ["deciding", "lost", null]);
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore);
		assert.equal(await posted("external:card:USD"), cardBefore);
		// Asked again while frozen: the account is looked at first, nothing more is asked or stored.
		await callback(c, "dispute_lost");
		const attempt = async () => (await node.sql.query<{ recover_attempt: number }>("SELECT recover_attempt FROM payments.disputes WHERE id = $1", [c.dispute.id])).rows[0]?.recover_attempt;
		assert.equal(await attempt(), 1);
		assert.deepEqual(await transfersOf(c), []);

		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		await callback(c, "dispute_lost");
		d = await dispute(c.dispute.id);
		assert.deepEqual([d.status, d.recovered], ["lost", 2_200]);
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore);
		assert.deepEqual(await transfersOf(c), [["recover-1", 2_200, "suspense:disputes:USD"], ["shortfall", 2_200, "external:card:USD"]]);
		await assertBalanced();
	});
});

/** A customer whose only money is a card top-up of `amount`. */
async function toppedUp(amount: number): Promise<Pick<Case, "accountId" | "topupId" | "providerId">> {
	const userId = uuidv7();
	await broker.call("users.create", { userId, email: `dnone-${userId}@example.com`, name: "Dispute Customer" });
	const accountId = ((await broker.call("ledger.accounts.open", { ownerId: userId, currency: "USD" })) as { id: string }).id;
	const t: { id: string; status: string } = await broker.call("payments.topup", { idempotencyKey: `dnone-top-${userId}`, userId, accountId, amount, currency: "USD", provider: "card" });
	assert.equal(t.status, "completed");
	return { accountId, topupId: t.id, providerId: `dp-none-${userId}` };
}

const opened = (c: Pick<Case, "topupId" | "providerId">, amount: number) => callback(c, "dispute_opened", { amount, deadline: new Date(Date.now() + 7 * 86_400_000).toISOString() });
const rowOf = async (c: Pick<Case, "providerId">) =>
	(await node.sql.query<{ id: string; status: string; hold_id: string | null; held_amount: string; recover_attempt: number }>(
		"SELECT id, status, hold_id, held_amount::text, recover_attempt FROM payments.disputes WHERE provider_dispute_id = $1", [c.providerId],
	)).rows[0];
/** The payments resume sweep, as if the dispute had waited past PAYMENT_RESUME_AFTER_MS. */
async function sweep(disputeId: string): Promise<void> {
	await node.sql.query("UPDATE payments.disputes SET updated_at = now() - interval '2 hours' WHERE id = $1", [disputeId]);
	await broker.call("payments.resume", {});
}

describe("a lost dispute whose hold is not on its row", () => {
	it("opened on a frozen account: nothing held, lost waits while frozen with nothing paid from suspense, and the account pays once unfrozen", async () => {
		const c = await toppedUp(5_000);
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		// The ledger refuses the hold (ACCOUNT_FROZEN, stored under the dispute's :hold key): the dispute opens without one.
		assert.equal((await opened(c, 5_000)).outcome, "dispute_opened");
		const row = await rowOf(c);
		assert.ok(row);
		assert.deepEqual([row.status, row.held_amount, row.hold_id], ["open", "5000", null]);
		const suspenseBefore = await posted("suspense:disputes:USD");
		const cardBefore = await posted("external:card:USD");
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		let d = await dispute(row.id);
		assert.deepEqual([d.status, d.outcome, d.recovered], ["deciding", "lost", null]);
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore, "suspense paid for a frozen account");
		assert.equal(await posted("external:card:USD"), cardBefore);
		assert.deepEqual(await balance(c.accountId), { posted: 5_000, pending: 0 });
		// The sweep while still frozen: the account is looked at first, nothing more is asked or stored.
		await sweep(row.id);
		assert.deepEqual([(await dispute(row.id)).status, (await rowOf(c))?.recover_attempt], ["deciding", 1]);
		assert.deepEqual(await transfersOf({ ...c, dispute: d, holdId: "" }), []);

		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		await sweep(row.id);
		d = await dispute(row.id);
		assert.deepEqual([d.status, d.recovered], ["lost", 5_000]);
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 }, "the customer kept the money the provider took back");
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore, "suspense carries nothing: the account paid");
		assert.equal(await posted("external:card:USD"), cardBefore + 5_000);
		assert.deepEqual(await transfersOf({ ...c, dispute: d, holdId: "" }), [["recover-1", 5_000, "suspense:disputes:USD"], ["shortfall", 5_000, "external:card:USD"]]);
		await assertBalanced();
	});

	it("on an account closed since (frozen for good): lost does not wait, the account gives nothing and suspense pays", async () => {
		const c = await toppedUp(5_000);
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		assert.equal((await opened(c, 5_000)).outcome, "dispute_opened");
		const row = await rowOf(c);
		assert.ok(row);
		assert.deepEqual([row.held_amount, row.hold_id], ["5000", null]);
		// Unfrozen, the customer spends the money and closes the account before the outcome.
		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		const { rows: [owner] } = await node.sql.query<{ owner_id: string }>("SELECT owner_id FROM ledger.accounts WHERE id = $1", [c.accountId]);
		await broker.call("ledger.transfers.create", { idempotencyKey: `dclosed-spend-${c.providerId}`, fromAccountId: c.accountId, toAccountId: shop, amount: 5_000, currency: "USD" });
		await broker.call("ledger.accounts.close", { id: c.accountId, ownerId: owner?.owner_id });
		const suspenseBefore = await posted("suspense:disputes:USD");
		const cardBefore = await posted("external:card:USD");
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		const d = await dispute(row.id);
		assert.deepEqual([d.status, d.outcome, d.recovered], ["lost", "lost", 0]);
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore - 5_000, "suspense paid the provider");
		assert.equal(await posted("external:card:USD"), cardBefore + 5_000);
		await assertBalanced();
	});

	it("opening cut short after the ledger made the hold: lost posts that hold (suspense pays nothing), won releases it at once", async () => {
		for (const end of ["dispute_lost", "dispute_won"] as const) {
			const c = await toppedUp(5_000);
			assert.equal((await opened(c, 5_000)).outcome, "dispute_opened");
			const made = await rowOf(c);
			assert.ok(made?.hold_id);
			// What a driver that died between the ledger's hold and attaching it leaves behind.
			await node.sql.query("UPDATE payments.disputes SET hold_id = NULL WHERE id = $1", [made.id]);
			const suspenseBefore = await posted("suspense:disputes:USD");
			const cardBefore = await posted("external:card:USD");
			assert.equal((await callback(c, end)).outcome, end);
			const d = await dispute(made.id);
			assert.equal(d.status, end === "dispute_lost" ? "lost" : "won");
			assert.equal((await rowOf(c))?.hold_id, made.hold_id, "the opening's hold, found by its key and attached");
			assert.equal(await holdStatus(made.hold_id), end === "dispute_lost" ? "posted" : "voided");
			assert.equal(await posted("suspense:disputes:USD"), suspenseBefore);
			assert.equal(await posted("external:card:USD"), cardBefore + (end === "dispute_lost" ? 5_000 : 0));
			assert.deepEqual(await balance(c.accountId), end === "dispute_lost" ? { posted: 0, pending: 0 } : { posted: 5_000, pending: 0 });
		}
		await assertBalanced();
	});

	it("frozen after its hold was made: lost keeps the hold while frozen and posts it under the next attempt's key once unfrozen", async () => {
		const c = await toppedUp(3_000);
		assert.equal((await opened(c, 3_000)).outcome, "dispute_opened");
		const row = await rowOf(c);
		assert.ok(row?.hold_id);
		await broker.call("ledger.accounts.freeze", { id: c.accountId });
		const suspenseBefore = await posted("suspense:disputes:USD");
		// The post is refused ACCOUNT_FROZEN, and the ledger keeps that answer under the :post key.
		assert.equal((await callback(c, "dispute_lost")).outcome, "dispute_lost");
		assert.deepEqual([(await dispute(row.id)).status, (await rowOf(c))?.recover_attempt, await holdStatus(row.hold_id)], ["deciding", 1, "pending"]);
		await broker.call("ledger.accounts.unfreeze", { id: c.accountId });
		await sweep(row.id);
		assert.equal((await dispute(row.id)).status, "lost");
		assert.equal(await holdStatus(row.hold_id), "posted");
		assert.deepEqual(await balance(c.accountId), { posted: 0, pending: 0 });
		assert.equal(await posted("suspense:disputes:USD"), suspenseBefore);
		const { rows: [post] } = await node.sql.query<{ idempotency_key: string }>("SELECT idempotency_key FROM ledger.transfers WHERE hold_id = $1", [row.hold_id]);
		assert.equal(post?.idempotency_key, `dispute:card:${c.providerId}:post-1`);
		await assertBalanced();
	});
});
