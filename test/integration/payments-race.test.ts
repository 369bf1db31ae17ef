/**
 * A P2P payment that something else touches around its one commit, on real PostgreSQL.
 *
 * - The owner's cancel of a payment that is not in review is refused: an approved payment
 *   committed whole in the ledger's batch and has nothing left to cancel.
 * - Two requests with the same key at once: the money moves once and both answer the
 *   one transfer.
 * - Support approves a payment in review after its hold ran out: the payment fails with
 *   HOLD_EXPIRED and nothing moves. Declined or cancelled after it ran out, the payment is
 *   declined or cancelled, without an error.
 * - A payment the resume sweep cannot finish shows in the payments' metrics: the stale
 *   count and the failed resumes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import type { InvariantReport } from "../../services/ledger/invariants.ts";
import { RESUME_FAILURES_METRIC, STALE_METRIC } from "../../services/payments/payments.service.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;

const FROM = "018f0000-0000-7000-8000-0000000000e1";
const TO = "018f0000-0000-7000-8000-0000000000e2";
/** Support deciding the reviews: neither payer nor payee (four eyes). */
const STAFF = "018f0000-0000-7000-8000-0000000000e3";
const FUNDING = 10_000_000;
let a = "";
let b = "";

before(async () => {
	node = await startNodeOnDatabase({
		SERVICES: "users,ledger,payments,audit", LOG_LEVEL: "fatal", METRICS_ENABLED: "true",
		// The node's own sweep runs every 30 min then, so only the test's calls sweep.
		PAYMENT_RESUME_AFTER_MS: "3600000",
	});
	broker = node.broker;
	for (const [id, name] of [[FROM, "race-from"], [TO, "race-to"]] as const) await broker.call("users.create", { userId: id, email: `${name}@example.com`, name });
	// Tier 3: large amounts (reviewed by the fraud rules) fit the tier's limits.
	// A tier above 1 needs a verified address (issue 16).
	await broker.call("users.markEmailVerified", { id: FROM, email: "race-from@example.com" });
	await broker.call("users.setTier", { id: FROM, tier: 3 });
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:race:USD", currency: "USD" });
	a = ((await broker.call("ledger.accounts.open", { ownerId: FROM, currency: "USD" })) as { id: string }).id;
	b = ((await broker.call("ledger.accounts.open", { ownerId: TO, currency: "USD" })) as { id: string }).id;
	await broker.call("ledger.transfers.create", { idempotencyKey: "race-fund", fromAccountId: sys.id, toAccountId: a, amount: FUNDING, currency: "USD" });
});

after(() => node?.stop());

type PaymentAnswer = { id: string; status: string; transferId: string | null };
const pay = (key: string, amount: number) =>
	broker.call("payments.p2p", { idempotencyKey: key, userId: FROM, accountId: a, toAccountId: b, amount, currency: "USD" }, { timeout: 30_000 }) as Promise<PaymentAnswer>;

async function balances(): Promise<number[]> {
	type Account = { balance: { posted: number; pending: number } };
	const [x, y] = await Promise.all([broker.call<Account, { id: string }>("ledger.accounts.get", { id: a }), broker.call<Account, { id: string }>("ledger.accounts.get", { id: b })]);
	return [x?.balance.posted ?? NaN, x?.balance.pending ?? NaN, y?.balance.posted ?? NaN];
}

describe("a payment touched around its commit", () => {
	it("refuses the owner's cancel of an approved payment: it committed whole and moved the money once", async () => {
		const answer = await pay("race-1", 2_500);
		assert.equal(answer.status, "completed");
		await assert.rejects(broker.call("payments.cancel", { id: answer.id, userId: FROM }), (err: { type?: string; code?: number }) => err.type === "ILLEGAL_TRANSITION" && err.code === 409);
		assert.deepEqual(await balances(), [FUNDING - 2_500, 0, 2_500]);
	});

	it("answers two requests with one key at once with its one transfer, moving the money once", async () => {
		const answers = await Promise.all([pay("race-2", 1_000), pay("race-2", 1_000)]);
		assert.deepEqual(answers.map(x => x.status), ["completed", "completed"]);
		assert.ok(answers[0]?.transferId && answers[0].transferId === answers[1]?.transferId, "the same transfer");
		assert.deepEqual(await balances(), [FUNDING - 3_500, 0, 3_500]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
		assert.equal(report.counts.transfers, 3, "the funding and one transfer per payment");
	});

	it("fails a payment support approves after its review hold ran out, and moves nothing", async () => {
		// 6,000.00 is a large amount for the fraud rules: review, with the money held.
		const held = await pay("race-3", 600_000);
		assert.equal(held.status, "pending_review");
		assert.deepEqual(await balances(), [FUNDING - 3_500, 600_000, 3_500]);
		// A day in review, as far as the hold knows.
		await node.sql.query("UPDATE ledger.holds SET expires_at = now() - interval '1 second' WHERE status = 'pending'");
		// Four eyes: neither the payer nor the payee decides it.
		for (const staffId of [FROM, TO]) {
			await assert.rejects(broker.call("payments.review.approve", { id: held.id, staffId }), (err: { type?: string; code?: number }) => err.type === "FORBIDDEN" && err.code === 403);
		}
		const approved: { status: string; failureCode: string | null } = await broker.call("payments.review.approve", { id: held.id, staffId: STAFF });
		assert.deepEqual([approved.status, approved.failureCode], ["failed", "HOLD_EXPIRED"]);
		await until("the hold to be released", async () => (await balances())[1] === 0);
		assert.deepEqual(await balances(), [FUNDING - 3_500, 0, 3_500]);
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {});
		assert.deepEqual(report.violations, []);
	});

	it("declines or cancels a payment in review whose hold ran out, without an error", async () => {
		const [toDecline, toCancel] = [await pay("race-4", 550_000), await pay("race-5", 520_000)];
		assert.deepEqual([toDecline.status, toCancel.status], ["pending_review", "pending_review"]);
		await node.sql.query("UPDATE ledger.holds SET expires_at = now() - interval '1 second' WHERE status = 'pending'");
		// The ledger's sweep expires them (a void before the sweep still finds them pending).
		await until("the holds to expire", async () => Number((await node.sql.query("SELECT count(*) AS n FROM ledger.holds WHERE status = 'pending'")).rows[0].n) === 0);
		assert.deepEqual(await balances(), [FUNDING - 3_500, 0, 3_500]);
		const declined: { status: string; failureCode: string | null } = await broker.call("payments.review.decline", { id: toDecline.id, staffId: STAFF });
		assert.deepEqual([declined.status, declined.failureCode], ["failed", "FRAUD_DECLINED"]);
		const cancelled: { status: string } = await broker.call("payments.cancel", { id: toCancel.id, userId: FROM });
		assert.equal(cancelled.status, "cancelled");
		assert.deepEqual(await balances(), [FUNDING - 3_500, 0, 3_500]);
	});

	it("counts a payment the resume sweep cannot finish in the stale gauge and the failed resumes", async () => {
		// Processing without its hold: the sweep can never finish it (a broken row, for the test).
		await node.sql.query(
			`INSERT INTO payments.payments (id, user_id, type, status, amount, currency, account_id, provider, destination, idempotency_key, request_hash, updated_at)
			 VALUES ('018f0000-0000-7000-8000-0000000000ee', $1, 'p2p', 'processing', 100, 'USD', $2, 'ledger', $3, 'race-stuck', 'h', now() - interval '2 hours')`,
			[FROM, a, b],
		);
		const value = (name: string) => (broker.metrics.getMetric(name)?.get()?.value as number | undefined) ?? 0;
		const failuresBefore = value(RESUME_FAILURES_METRIC);
		await broker.call("payments.resume", {});
		assert.equal(value(STALE_METRIC), 1);
		assert.equal(value(RESUME_FAILURES_METRIC), failuresBefore + 1);
		await node.sql.query("DELETE FROM payments.payments WHERE id = '018f0000-0000-7000-8000-0000000000ee'");
		await broker.call("payments.resume", {});
		assert.equal(value(STALE_METRIC), 0);
	});
});
