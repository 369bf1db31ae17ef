/**
 * Payment requests with a real broker and PostgreSQL (users, ledger, requests,
 * notifications): a request by verified e-mail and one by user id, accepted once however
 * often and however concurrently it is accepted, declined, cancelled, expired by the
 * sweep; a payment refused for want of money leaves the request pending for a later
 * acceptance; a node that died between the claim and the payment's answer is resumed by
 * the sweep with the same key, so the money moves once; and both sides are notified.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type pg from "pg";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";
import { requests } from "../../contracts/requests.ts";
import { notifications } from "../../contracts/notifications.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let sql: pg.Client;
const ANN = "018f0000-0000-7000-8000-0000000028a1";
const BEN = "018f0000-0000-7000-8000-0000000028b1";
const CAT = "018f0000-0000-7000-8000-0000000028c1";
const acc: Record<string, string> = {};

const balance = async (id: string) => (await call(broker, ledger.accounts.get, { id })).balance.posted;
const rejectsWith = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: { type?: string }) => e.type === code || assert.fail(`expected ${code}, got ${e.type}`));

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "users,ledger,requests,notifications", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100" });
	({ broker, sql } = node);
	for (const [id, name] of [[ANN, "Ann Lee"], [BEN, "Ben Okafor"], [CAT, "Cat Silva"]] as const) {
		await call(broker, users.create, { userId: id, email: `${name.split(" ")[0]?.toLowerCase()}28@example.com`, name });
		await call(broker, users.markEmailVerified, { id, email: `${name.split(" ")[0]?.toLowerCase()}28@example.com` });
		await call(broker, ledger.owners.setTier, { ownerId: id, tier: 2 });
		acc[id] = (await call(broker, ledger.accounts.open, { ownerId: id, currency: "USD" })).id;
	}
	acc["eur"] = (await call(broker, ledger.accounts.open, { ownerId: ANN, currency: "EUR" })).id;
	const system = (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	await call(broker, ledger.transfers.create, { idempotencyKey: "fund-ben", fromAccountId: system, toAccountId: acc[BEN] as string, amount: 100_000, currency: "USD" });
});

after(() => node?.stop());

const ask = (key: string, over: Record<string, unknown> = {}) => call(broker, requests.create, {
	requesterId: ANN, idempotencyKey: key, toAccountId: acc[ANN] as string, amount: 2_500, currency: "USD", payerEmail: "ben28@example.com", note: "pizza", ...over,
});

describe("payment requests", () => {
	it("asks by verified e-mail, replays the same key, refuses a changed body, and is paid once however many accepts arrive together", async () => {
		const r = await ask("r1");
		assert.deepEqual([r.status, r.payer.id, r.payer.name, r.requester.name, r.amount], ["pending", BEN, "Ben Okafor", "Ann Lee", 2_500]);
		assert.equal((await ask("r1")).id, r.id);
		await rejectsWith(ask("r1", { amount: 2_600 }), "IDEMPOTENCY_MISMATCH");
		const [annBefore, benBefore] = [await balance(acc[ANN] as string), await balance(acc[BEN] as string)];
		const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => call(broker, requests.accept, { id: r.id, userId: BEN, fromAccountId: acc[BEN] as string })));
		const done = outcomes.filter(o => o.status === "fulfilled").map(o => (o as PromiseFulfilledResult<{ status: string; transferId: string | null }>).value);
		assert.ok(done.length >= 1, JSON.stringify(outcomes.filter(o => o.status === "rejected").map(o => (o as PromiseRejectedResult).reason?.type)));
		for (const o of outcomes) if (o.status === "rejected") assert.equal((o.reason as { type?: string }).type, "REQUEST_BEING_PAID");
		const final = await call(broker, requests.get, { id: r.id, userId: ANN });
		assert.equal(final.status, "paid");
		assert.ok(done.every(d => d.status === "paid" && d.transferId === final.transferId));
		assert.equal(await balance(acc[ANN] as string), annBefore + 2_500);
		assert.equal(await balance(acc[BEN] as string), benBefore - 2_500);
		// Accepting a paid request again answers it as it is and moves nothing.
		assert.equal((await call(broker, requests.accept, { id: r.id, userId: BEN, fromAccountId: acc[BEN] as string })).status, "paid");
		assert.equal(await balance(acc[BEN] as string), benBefore - 2_500);
	});

	it("shows a request only to its two people, and lets each do only their part", async () => {
		const r = await ask("r2", { payerEmail: null, payerId: CAT });
		await rejectsWith(call(broker, requests.get, { id: r.id, userId: BEN }), "REQUEST_NOT_FOUND");
		await rejectsWith(call(broker, requests.accept, { id: r.id, userId: BEN, fromAccountId: acc[BEN] as string }), "REQUEST_NOT_FOUND");
		await rejectsWith(call(broker, requests.accept, { id: r.id, userId: ANN, fromAccountId: acc[ANN] as string }), "FORBIDDEN");
		await rejectsWith(call(broker, requests.cancel, { id: r.id, userId: CAT }), "FORBIDDEN");
		assert.equal((await call(broker, requests.decline, { id: r.id, userId: CAT })).status, "declined");
		assert.equal((await call(broker, requests.decline, { id: r.id, userId: CAT })).status, "declined");
		await rejectsWith(call(broker, requests.cancel, { id: r.id, userId: ANN }), "ILLEGAL_TRANSITION");
		const c = await ask("r3", { payerEmail: null, payerId: CAT });
		assert.equal((await call(broker, requests.cancel, { id: c.id, userId: ANN })).status, "cancelled");
		await rejectsWith(call(broker, requests.accept, { id: c.id, userId: CAT, fromAccountId: acc[CAT] as string }), "ILLEGAL_TRANSITION");
		// Asking yourself, an account that is not yours, a currency it does not hold, an unknown or unverified address.
		await rejectsWith(ask("r4", { payerEmail: "ann28@example.com" }), "SAME_ACCOUNT");
		await rejectsWith(ask("r5", { toAccountId: acc[BEN] }), "ACCOUNT_NOT_FOUND");
		await rejectsWith(ask("r6", { toAccountId: acc["eur"] }), "CURRENCY_MISMATCH");
		await rejectsWith(ask("r7", { payerEmail: "nobody28@example.com" }), "RECIPIENT_NOT_FOUND");
		await rejectsWith(ask("r8", { payerEmail: "ben28@example.com", payerId: BEN }), "VALIDATION_ERROR");
		const listed = await call(broker, requests.list, { userId: ANN, role: "outgoing" });
		assert.deepEqual(listed.items.map(i => i.status), ["cancelled", "declined", "paid"]);
		assert.deepEqual((await call(broker, requests.list, { userId: CAT, role: "incoming", status: "declined" })).items.map(i => i.id), [r.id]);
	});

	it("leaves a request pending when the payment is refused, and pays it on a later acceptance with a new key", async () => {
		const r = await ask("r9", { payerEmail: null, payerId: CAT, amount: 1_000 });
		await rejectsWith(call(broker, requests.accept, { id: r.id, userId: CAT, fromAccountId: acc[CAT] as string }), "INSUFFICIENT_FUNDS");
		const after = await call(broker, requests.get, { id: r.id, userId: CAT });
		assert.deepEqual([after.status, after.failureCode], ["pending", "INSUFFICIENT_FUNDS"]);
		await call(broker, ledger.transfers.create, { idempotencyKey: "ben-to-cat", fromAccountId: acc[BEN] as string, toAccountId: acc[CAT] as string, amount: 5_000, currency: "USD" });
		const paid = await call(broker, requests.accept, { id: r.id, userId: CAT, fromAccountId: acc[CAT] as string });
		assert.deepEqual([paid.status, paid.failureCode], ["paid", null]);
		assert.equal(await balance(acc[CAT] as string), 4_000);
	});

	it("expires a pending request past its deadline, and resumes the payment of a node that died half-way exactly once", async () => {
		const e = await ask("r10");
		await sql.query("UPDATE requests.requests SET expires_at = now() - interval '1 second' WHERE id = $1", [e.id]);
		// A node claimed this one (accepting, attempt 1) and died before the ledger answered; the other it claimed after the payment went through.
		const lost = await ask("r11", { amount: 300 });
		const half = await ask("r12", { amount: 400 });
		await sql.query("UPDATE requests.requests SET status = 'accepting', attempt = 1, from_account_id = $2, updated_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])", [[lost.id, half.id], acc[BEN]]);
		await call(broker, ledger.payments.p2p, { idempotencyKey: `request:${half.id}:1`, ownerId: BEN, fromAccountId: acc[BEN] as string, toAccountId: acc[ANN] as string, amount: 400, currency: "USD", description: "pizza" });
		const benBefore = await balance(acc[BEN] as string);
		const out = await call(broker, requests.sweep, {});
		assert.deepEqual(out, { expired: 1, resumed: 2 });
		assert.equal((await call(broker, requests.get, { id: e.id, userId: ANN })).status, "expired");
		assert.equal((await call(broker, requests.get, { id: lost.id, userId: ANN })).status, "paid");
		assert.equal((await call(broker, requests.get, { id: half.id, userId: ANN })).status, "paid");
		// Only the lost one's 300 left Ben now: the half-way one had paid before and was replayed.
		assert.equal(await balance(acc[BEN] as string), benBefore - 300);
		assert.deepEqual(await call(broker, requests.sweep, {}), { expired: 0, resumed: 0 });
	});

	it("keeps one person from flooding another: at most 5 pending requests to one person; a replay still answers", async () => {
		const made = [];
		for (let i = 0; i < 5; i++) made.push(await ask(`flood-${i}`, { payerEmail: null, payerId: CAT, amount: 100 + i }));
		await rejectsWith(ask("flood-5", { payerEmail: null, payerId: CAT, amount: 200 }), "REQUEST_LIMIT_REACHED");
		assert.equal((await ask("flood-0", { payerEmail: null, payerId: CAT, amount: 100 })).id, made[0]?.id);
		// Answered requests free their place.
		await call(broker, requests.cancel, { id: made[0]?.id ?? "", userId: ANN });
		assert.equal((await ask("flood-6", { payerEmail: null, payerId: CAT, amount: 300 })).status, "pending");
		for (const r of (await call(broker, requests.list, { userId: ANN, role: "outgoing", status: "pending" })).items) await call(broker, requests.cancel, { id: r.id, userId: ANN });
	});

	it("tells the person asked and the person asking, in words, once each", async () => {
		await until("notifications of the requests", async () => {
			const ben = await call(broker, notifications.list, { userId: BEN, limit: 100 });
			const ann = await call(broker, notifications.list, { userId: ANN, limit: 100 });
			// Ben was asked r1, r10, r11 and r12; Ann was paid r1, r9, r11 and r12.
			return ben.items.filter(n => n.kind === "request.received").length === 4 && ann.items.filter(n => n.kind === "request.paid").length === 4 && ann.items.some(n => n.kind === "request.expired");
		});
		const ben = (await call(broker, notifications.list, { userId: BEN, limit: 100 })).items;
		assert.ok(ben.some(n => n.body === "Ann Lee asks you for 25.00 USD for \u201cpizza\u201d."), JSON.stringify(ben.map(n => n.body)));
		const ann = (await call(broker, notifications.list, { userId: ANN, limit: 100 })).items;
		assert.ok(ann.some(n => n.body === "Ben Okafor paid your request for 25.00 USD for \u201cpizza\u201d."), JSON.stringify(ann.map(n => n.body)));
		const cat = (await call(broker, notifications.list, { userId: CAT, limit: 100 })).items;
		assert.ok(cat.some(n => n.kind === "request.cancelled" && n.body === "Ann Lee cancelled their request for 25.00 USD. You do not need to pay it."));
		assert.ok(ann.some(n => n.kind === "request.declined" && n.body.startsWith("Cat Silva declined your request")));
	});
});
