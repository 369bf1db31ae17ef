/**
 * The gateway's signed caller (lib/caller-identity.ts) on an injected clock: what a token
 * holds, each refusal of verify, the guards' bond between the verified caller and the
 * params, the batch form, and that a refusal's message never carries the token.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Errors, ServiceBroker, type Context } from "moleculer";
import {
	ASSERTION_TTL_MS, batchAssertionMeta, callerIdentityMiddleware, intentMeta, markAuthenticated, CallerSigner, CallerVerifier, CLOCK_SKEW_MS, checkCall, derivedSigningKey, generateGatewayKey, installSigner, keyId,
	paramsDigest, publicKeyOf, registerGuard, signingKeyProblem, TAKES_BATCH_ASSERTION, takesBatchAssertion, verifyKeyProblem, VERIFIED, type CallerGuard,
} from "../../../lib/caller-identity.ts";
import { action, call, returns } from "../../../lib/contract.ts";
import { until } from "../../support/wait.ts";

const T0 = Date.UTC(2025, 0, 1);
const ANN = "018f0000-0000-7000-8000-00000000a001";
const BEN = "018f0000-0000-7000-8000-00000000b002";
const STAFF = "018f0000-0000-7000-8000-00000000c003";

function pair(at: { t: number }) {
	const k = generateGatewayKey();
	return { ...k, signer: new CallerSigner(k.signingKey, () => at.t) };
}

function refusal(status: number, code: string, message?: RegExp) {
	return (err: unknown) => err instanceof Errors.MoleculerClientError && err.code === status && err.type === code && (!message || message.test(err.message));
}

const unverified = (message?: RegExp) => refusal(401, "CALLER_UNVERIFIED", message);
const forbidden = (message?: RegExp) => refusal(403, "FORBIDDEN", message);

describe("caller assertions", () => {
	it("carry who, for which action and params, signed by a key named by its id", () => {
		const at = { t: T0 };
		const k = pair(at);
		const token = k.signer.sign({ id: ANN, roles: ["user"], sid: "s1" }, "payments.topup", { amount: 100, userId: ANN });
		const [body, sig] = token.split(".");
		assert.equal(Buffer.from(sig ?? "", "base64url").length, 64);
		const { jti, ...claims } = JSON.parse(Buffer.from(body ?? "", "base64url").toString()) as { jti: unknown };
		assert.deepEqual(claims, {
			v: 1, kid: keyId(Buffer.from(k.verifyKey, "base64url")), sub: ANN, roles: ["user"], sid: "s1", act: "payments.topup",
			dig: paramsDigest({ userId: ANN, amount: 100 }), iat: T0, exp: T0 + ASSERTION_TTL_MS,
		});
		// A random id of 12 bytes, another for each assertion.
		assert.match(String(jti), /^[A-Za-z0-9_-]{16}$/);
		assert.notEqual(JSON.parse(Buffer.from(k.signer.sign({ id: ANN, roles: ["user"], sid: "s1" }, "payments.topup", { amount: 100, userId: ANN }).split(".")[0] ?? "", "base64url").toString()).jti, jti);
		assert.equal(k.kid.length, 16);
		const v = new CallerVerifier([k.verifyKey], { now: () => at.t });
		assert.equal(v.verify(token, "payments.topup", { userId: ANN, amount: 100 }).sub, ANN, "key order of the params does not matter");
	});

	it("refuse a wrong signature, an unknown key, a changed param, another action, an expired or future token, and malformed ones", () => {
		const at = { t: T0 };
		const k = pair(at);
		const other = pair(at);
		const v = new CallerVerifier([k.verifyKey], { now: () => at.t });
		const who = { id: ANN, roles: ["user"], sid: "s1" };
		const params = { userId: ANN, amount: 100 };
		const token = k.signer.sign(who, "payments.topup", params);
		assert.throws(() => v.verify(token, "payments.topup", { ...params, amount: 101 }), unverified(/params are not the ones/));
		assert.throws(() => v.verify(token, "payments.payout", params), unverified(/another action/));
		assert.throws(() => v.verify(other.signer.sign(who, "payments.topup", params), "payments.topup", params), unverified(/does not know/));
		// The payload of one token with the signature of another: the key id is known, the signature wrong.
		const forged = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()), sub: BEN })).toString("base64url")}.${token.split(".")[1]}`;
		assert.throws(() => v.verify(forged, "payments.topup", params), unverified(/wrong signature/));
		at.t = T0 + ASSERTION_TTL_MS + CLOCK_SKEW_MS;
		assert.equal(v.verify(token, "payments.topup", params).sub, ANN, "within the skew past its expiry");
		at.t += 1;
		assert.throws(() => v.verify(token, "payments.topup", params), unverified(/expired/));
		at.t = T0 - CLOCK_SKEW_MS - 1;
		assert.throws(() => v.verify(token, "payments.topup", params), unverified(/future/));
		at.t = T0;
		for (const bad of [undefined, 42, "", "x", "a.b.c", `${"A".repeat(5_000)}.x`, `${Buffer.from("{}").toString("base64url")}.x`, `${Buffer.from("not json").toString("base64url")}.x`]) {
			assert.throws(() => v.verify(bad, "payments.topup", params), unverified());
		}
	});

	it("an action without an idempotency key takes each assertion once within its life; one with a key takes it again (a retry)", () => {
		const at = { t: T0 };
		const k = pair(at);
		const v = new CallerVerifier([k.verifyKey], { now: () => at.t });
		const staff = { id: STAFF, roles: ["user", "admin"], sid: "s3" };
		const guard: CallerGuard = { staff: "staffId" };
		const freeze = { accountId: ANN, staffId: STAFF, reason: "fraud" };
		const meta = () => ({ callerAssertion: token });
		const token = k.signer.sign(staff, "ledger.accounts.freeze", freeze);
		assert.equal(checkCall(v, guard, "ledger.accounts.freeze", freeze, meta(), true)[0]?.sub, STAFF);
		// The same signed freeze again (say, replayed after an unfreeze): refused.
		assert.throws(() => checkCall(v, guard, "ledger.accounts.freeze", freeze, meta(), true), refusal(409, "CALLER_REPLAYED"));
		// A new assertion for the same freeze goes through: the staff member asking again.
		assert.equal(checkCall(v, guard, "ledger.accounts.freeze", freeze, { callerAssertion: k.signer.sign(staff, "ledger.accounts.freeze", freeze) }, true).length, 1);
		// With an idempotency key the same assertion is taken again: its key answers a retry.
		const topup = { idempotencyKey: "k1", userId: ANN, amount: 100 };
		const ann = { id: ANN, roles: ["user"], sid: "s1" };
		const keyed = k.signer.sign(ann, "payments.topup", topup);
		for (let i = 0; i < 3; i++) assert.equal(checkCall(v, { user: "userId" }, "payments.topup", topup, { callerAssertion: keyed }, true).length, 1);
		// Once expired, the spent id is forgotten, and the assertion is refused as expired anyway.
		at.t += ASSERTION_TTL_MS + CLOCK_SKEW_MS + 1;
		assert.throws(() => checkCall(v, guard, "ledger.accounts.freeze", freeze, meta(), true), unverified(/expired/));
	});

	it("accept every key of GATEWAY_VERIFY_KEYS, and no other once one is removed", () => {
		const at = { t: T0 };
		const oldKey = pair(at);
		const newKey = pair(at);
		const who = { id: ANN, roles: ["user"], sid: "s1" };
		const both = new CallerVerifier([newKey.verifyKey, oldKey.verifyKey], { now: () => at.t });
		for (const k of [oldKey, newKey]) assert.equal(both.verify(k.signer.sign(who, "x.y", {}), "x.y", {}).kid, k.kid);
		const newOnly = new CallerVerifier([newKey.verifyKey], { now: () => at.t });
		assert.throws(() => newOnly.verify(oldKey.signer.sign(who, "x.y", {}), "x.y", {}), unverified(/does not know/));
	});

	it("never put the token into a refusal's message", () => {
		const at = { t: T0 };
		const k = pair(at);
		const v = new CallerVerifier([k.verifyKey], { now: () => at.t });
		const token = k.signer.sign({ id: ANN, roles: ["user"], sid: "s1" }, "payments.topup", { a: 1 });
		for (const act of ["payments.payout", "payments.topup"]) {
			try {
				v.verify(token, act, { a: 2 });
				assert.fail("refused");
			} catch (err) {
				const e = err as Errors.MoleculerClientError;
				for (const part of token.split(".")) assert.ok(!JSON.stringify({ m: e.message, d: e.data }).includes(part));
			}
		}
	});

	it("keys: generated pairs, the derived pair of a single node, and the checks of their format", () => {
		const k = generateGatewayKey();
		assert.equal(publicKeyOf(k.signingKey), k.verifyKey);
		assert.equal(signingKeyProblem(k.signingKey), null);
		assert.equal(verifyKeyProblem(k.verifyKey), null);
		assert.match(signingKeyProblem("short") ?? "", /32 random bytes/);
		assert.match(verifyKeyProblem(`${k.verifyKey}=`) ?? "", /32 raw bytes/);
		const secret = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
		assert.equal(derivedSigningKey(secret), derivedSigningKey(secret));
		assert.notEqual(derivedSigningKey(secret), derivedSigningKey(`${secret}x`));
		assert.equal(signingKeyProblem(derivedSigningKey(secret)), null);
	});
});

describe("guards", () => {
	const at = { t: T0 };
	const k = pair(at);
	const v = new CallerVerifier([k.verifyKey], { now: () => at.t });
	const ann = { id: ANN, roles: ["user"], sid: "s1" };
	const staff = { id: STAFF, roles: ["user", "support"], sid: "s2" };
	const ben = { id: BEN, roles: ["user"], sid: "s3" };
	const userGuard: CallerGuard = { user: "userId" };
	const staffGuard: CallerGuard = { staff: "staffId" };
	const adminGuard: CallerGuard = { staff: "staffId", roles: ["admin"] };
	const refundGuard: CallerGuard = { user: "ownerId", staff: "staffId" };
	const meta = (token: string) => ({ callerAssertion: token });

	it("bind a user's action to the user the params name", () => {
		const p = { userId: ANN, amount: 5 };
		assert.equal(checkCall(v, userGuard, "payments.topup", p, meta(k.signer.sign(ann, "payments.topup", p)), true)[0]?.sub, ANN);
		const forBen = { userId: BEN, amount: 5 };
		assert.throws(() => checkCall(v, userGuard, "payments.topup", forBen, meta(k.signer.sign(ann, "payments.topup", forBen)), true), forbidden(/not for the verified caller/));
	});

	it("bind a staff action to the staff member named, who must hold a staff role (the guard's, or admin and support)", () => {
		const p = { id: BEN, tier: 2, staffId: STAFF };
		assert.equal(checkCall(v, staffGuard, "users.setTier", p, meta(k.signer.sign(staff, "users.setTier", p)), true)[0]?.sub, STAFF);
		assert.throws(() => checkCall(v, adminGuard, "users.setTier", p, meta(k.signer.sign(staff, "users.setTier", p)), true), forbidden(/roles/));
		const byAnn = { ...p, staffId: ANN };
		assert.throws(() => checkCall(v, staffGuard, "users.setTier", byAnn, meta(k.signer.sign(ann, "users.setTier", byAnn)), true), forbidden(/roles/));
		const forged = { ...p, staffId: BEN };
		assert.throws(() => checkCall(v, staffGuard, "users.setTier", forged, meta(k.signer.sign(staff, "users.setTier", forged)), true), forbidden(/not the verified caller/));
		const unnamed = { id: BEN, tier: 2 };
		assert.throws(() => checkCall(v, staffGuard, "users.setTier", unnamed, meta(k.signer.sign(staff, "users.setTier", unnamed)), true), forbidden(/needs the verified staff member/));
	});

	it("with a user and a staff field: a named staff member makes a staff action, otherwise the user's", () => {
		const byPayee = { paymentId: "p", ownerId: ANN, amount: 1 };
		assert.equal(checkCall(v, refundGuard, "ledger.payments.refund", byPayee, meta(k.signer.sign(ann, "ledger.payments.refund", byPayee)), true)[0]?.sub, ANN);
		const byStaff = { paymentId: "p", staffId: STAFF, amount: 1 };
		assert.equal(checkCall(v, refundGuard, "ledger.payments.refund", byStaff, meta(k.signer.sign(staff, "ledger.payments.refund", byStaff)), true)[0]?.sub, STAFF);
		const annAsStaff = { paymentId: "p", staffId: ANN, amount: 1 };
		assert.throws(() => checkCall(v, refundGuard, "ledger.payments.refund", annAsStaff, meta(k.signer.sign(ann, "ledger.payments.refund", annAsStaff)), true), forbidden());
	});

	it("take the user of an action that reads ctx.meta.user from there", () => {
		const t = k.signer.sign(ann, "auth.erase", {});
		assert.equal(checkCall(v, { user: "meta.user" }, "auth.erase", {}, { ...meta(t), user: { id: ANN } }, true)[0]?.sub, ANN);
		assert.throws(() => checkCall(v, { user: "meta.user" }, "auth.erase", {}, { ...meta(t), user: { id: BEN } }, true), forbidden());
	});

	it("a batch: one assertion per item, each bound to its own item", () => {
		const guard: CallerGuard = { user: "ownerId", each: "items" };
		const items = [{ ownerId: ANN, amount: 1 }, { ownerId: BEN, amount: 2 }];
		const tokens = [k.signer.sign(ann, "ledger.payments.p2pMany", items[0] ?? {}), k.signer.sign(ben, "ledger.payments.p2pMany", items[1] ?? {})];
		assert.deepEqual(checkCall(v, guard, "ledger.payments.p2pMany", { items }, { callerAssertions: tokens }, true).map(c => c.sub), [ANN, BEN]);
		assert.throws(() => checkCall(v, guard, "ledger.payments.p2pMany", { items }, { callerAssertions: [tokens[0]] }, true), unverified(/each item/));
		assert.throws(() => checkCall(v, guard, "ledger.payments.p2pMany", { items }, { callerAssertions: [tokens[1], tokens[0]] }, true), unverified(/params/));
		assert.throws(() => checkCall(v, guard, "ledger.payments.p2pMany", { items }, {}, true), unverified());
	});

	it("a batch in one assertion: one signature over the whole call, each item bound to the caller named for it", () => {
		const guard: CallerGuard = { user: "ownerId", each: "items" };
		const act = "ledger.payments.p2pMany";
		const items = [{ ownerId: ANN, amount: 1 }, { ownerId: BEN, amount: 2 }, { ownerId: ANN, amount: 3 }];
		const token = k.signer.signBatch([ann, ben, ann], act, { items });
		const claims = checkCall(v, guard, act, { items }, { callerBatchAssertion: token }, true);
		assert.deepEqual(claims.map(c => [c.sub, c.sid, c.act]), [[ANN, "s1", act], [BEN, "s3", act], [ANN, "s1", act]]);
		// Another order, another amount, an item left out: not the params signed.
		assert.throws(() => checkCall(v, guard, act, { items: [items[1], items[0], items[2]] }, { callerBatchAssertion: token }, true), unverified(/params/));
		assert.throws(() => checkCall(v, guard, act, { items: [items[0], { ...items[1], amount: 200 }, items[2]] }, { callerBatchAssertion: token }, true), unverified(/params/));
		assert.throws(() => checkCall(v, guard, act, { items: items.slice(0, 2) }, { callerBatchAssertion: token }, true), unverified(/params/));
		// Ben named for Ann's item: refused, though the signature is good.
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: k.signer.signBatch([ann, ben, ben], act, { items }) }, true), forbidden(/not for the verified caller/));
		// Fewer callers than items, signed as such.
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: k.signer.signBatch([ann, ben], act, { items }) }, true), unverified(/each item/));
		// Another action's batch, an unknown key's, one expired.
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: k.signer.signBatch([ann, ben, ann], "ledger.payments.other", { items }) }, true), unverified(/another action/));
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: pair(at).signer.signBatch([ann, ben, ann], act, { items }) }, true), unverified(/key this node does not know/));
		const late = { t: T0 - ASSERTION_TTL_MS - CLOCK_SKEW_MS - 1 };
		const old = new CallerSigner(k.signingKey, () => late.t);
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: old.signBatch([ann, ben, ann], act, { items }) }, true), unverified(/expired/));
		// The two forms do not stand in for each other, nor come together.
		const single = k.signer.sign(ann, act, { items });
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: single }, true), unverified(/malformed/));
		assert.throws(() => v.verify(token, act, { items }), unverified(/malformed/));
		const perItem = items.map((item, i) => k.signer.sign([ann, ben, ann][i] ?? ann, act, item));
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: token, callerAssertions: perItem }, true), unverified(/two forms/));
		// A tampered payload under the original signature.
		const [body, sig] = token.split(".");
		const forged = JSON.parse(Buffer.from(body ?? "", "base64url").toString()) as { callers: { sub: string }[] };
		forged.callers[1] = { ...forged.callers[0], sub: ANN } as { sub: string };
		assert.throws(() => checkCall(v, guard, act, { items: [items[0], { ...items[1], ownerId: ANN }, items[2]] }, { callerBatchAssertion: `${Buffer.from(JSON.stringify(forged)).toString("base64url")}.${sig}` }, true), unverified(/wrong signature/));
		// A batch names 1 to 100 callers (the largest batch), and its token is bounded before it is parsed.
		assert.throws(() => k.signer.signBatch([], act, { items: [] }), /1 to 100 callers/);
		assert.throws(() => k.signer.signBatch(Array.from({ length: 101 }, () => ann), act, { items }), /1 to 100 callers/);
		const full = Array.from({ length: 100 }, (_, i) => ({ ownerId: ANN, amount: i + 1 }));
		assert.equal(checkCall(v, guard, act, { items: full }, { callerBatchAssertion: k.signer.signBatch(full.map(() => ann), act, { items: full }) }, true).length, 100);
		assert.throws(() => checkCall(v, guard, act, { items }, { callerBatchAssertion: `${"A".repeat(40_000)}.${sig}` }, true), unverified(/needs the caller's identity/));
	});

	it("a gateway's own batch: one assertion when the node takes the form, one per item otherwise, none without every payer", () => {
		const act = "ledger.payments.p2pMany";
		registerGuard(act, { user: "ownerId", each: "items" });
		const broker = {};
		installSigner(broker, k.signer);
		const guard: CallerGuard = { user: "ownerId", each: "items" };
		const items = [{ ownerId: ANN, amount: 1 }, { ownerId: BEN, amount: 2 }];
		const one = batchAssertionMeta(broker, act, [ann, ben], { items }, true);
		assert.ok(one?.callerBatchAssertion && one.callerAssertions === undefined);
		assert.deepEqual(checkCall(v, guard, act, { items }, { ...one }, true).map(c => c.sub), [ANN, BEN]);
		const each = batchAssertionMeta(broker, act, [ann, ben], { items }, false);
		assert.equal(each?.callerAssertions?.length, 2);
		assert.deepEqual(checkCall(v, guard, act, { items }, { ...each }, true).map(c => c.sub), [ANN, BEN]);
		assert.equal(batchAssertionMeta(broker, act, [ann, null], { items }, true), null, "a payment whose request authenticated nobody is not signed for");
		assert.equal(batchAssertionMeta({}, act, [ann, ben], { items }, true), null, "a node without a signer signs nothing");
		assert.equal(batchAssertionMeta(broker, "payments.topup", [ann], { userId: ANN }, true), null, "not a batch action");
		// Which form a node takes: its ledger service's metadata says so; a node of an earlier release says nothing.
		const nodes = new Map<string, { services: unknown[] }>([
			["new", { services: [{ name: "ledger", metadata: { [TAKES_BATCH_ASSERTION]: true } }] }],
			["old", { services: [{ name: "ledger", metadata: {} }, { name: "payments", metadata: { [TAKES_BATCH_ASSERTION]: true } }] }],
		]);
		const registry = { registry: { nodes } };
		assert.deepEqual(["new", "old", "gone"].map(n => takesBatchAssertion(registry, "ledger", n)), [true, false, false]);
	});

	it("not required (one process): a call without an assertion runs unchecked, one with an assertion is checked all the same", () => {
		const p = { userId: BEN, amount: 5 };
		assert.deepEqual(checkCall(v, userGuard, "payments.topup", p, {}, false), []);
		assert.throws(() => checkCall(v, userGuard, "payments.topup", p, {}, true), unverified(/needs the caller's identity/));
		assert.throws(() => checkCall(v, userGuard, "payments.topup", p, meta(k.signer.sign(ann, "payments.topup", p)), false), forbidden());
		assert.throws(() => checkCall(v, userGuard, "payments.topup", p, meta(k.signer.sign(ben, "payments.payout", p)), false), unverified(/another action/));
	});
});

describe("the middleware", () => {
	it("checks a guarded action before its handler, keeps the assertion from going further, and lets Moleculer retry the same call", async () => {
		const k = generateGatewayKey();
		const signer = new CallerSigner(k.signingKey);
		registerGuard("unitpay.pay", { user: "userId" });
		const seen: { meta: Record<string, unknown>; verified: unknown }[] = [];
		let failFirst = true;
		const broker = new ServiceBroker({
			logger: false, middlewares: [callerIdentityMiddleware({ verifyKeys: [k.verifyKey], signingKey: null, required: true }) as never],
			retryPolicy: { enabled: true, retries: 2, delay: 1, check: (err: Error) => Boolean((err as Errors.MoleculerError).retryable) },
		});
		broker.createService({
			name: "unitpay",
			actions: {
				pay(ctx: Context<{ userId: string }>) {
					seen.push({ meta: { ...(ctx.meta as Record<string, unknown>) }, verified: ctx.locals[VERIFIED] });
					if (failFirst) {
						failFirst = false;
						throw new Errors.MoleculerRetryableError("busy", 503, "BUSY");
					}
					return { paid: ctx.params.userId };
				},
				open(ctx: Context<{ userId: string }>) {
					return { open: ctx.params.userId };
				},
			},
		});
		await broker.start();
		try {
			const p = { userId: ANN };
			await assert.rejects(broker.call("unitpay.pay", p), unverified());
			assert.equal(seen.length, 0, "the handler never ran");
			assert.deepEqual(await broker.call("unitpay.pay", p, { meta: { callerAssertion: signer.sign({ id: ANN, roles: ["user"], sid: "s" }, "unitpay.pay", p), other: 1 } }), { paid: ANN });
			assert.equal(seen.length, 2, "the first try failed as busy and was retried");
			for (const s of seen) {
				assert.deepEqual(s.meta, { other: 1 }, "the handler sees no assertion");
				assert.equal((s.verified as { claims: { sub: string }[] }).claims[0]?.sub, ANN);
			}
			assert.deepEqual(await broker.call("unitpay.open", p), { open: ANN }, "an action without a guard is not checked");
		} finally {
			await broker.stop();
		}
	});

	it("lets Moleculer retry a batch checked by its one assertion, and keeps the assertion from the handler", async () => {
		const k = generateGatewayKey();
		const signer = new CallerSigner(k.signingKey);
		registerGuard("unitmany.pay", { user: "ownerId", each: "items" });
		const seen: { meta: Record<string, unknown>; subs: string[] }[] = [];
		let failFirst = true;
		const broker = new ServiceBroker({
			logger: false, middlewares: [callerIdentityMiddleware({ verifyKeys: [k.verifyKey], signingKey: null, required: true }) as never],
			retryPolicy: { enabled: true, retries: 2, delay: 1, check: (err: Error) => Boolean((err as Errors.MoleculerError).retryable) },
		});
		broker.createService({
			name: "unitmany",
			actions: {
				pay(ctx: Context<{ items: { ownerId: string }[] }>) {
					seen.push({ meta: { ...(ctx.meta as Record<string, unknown>) }, subs: (ctx.locals[VERIFIED] as { claims: { sub: string }[] }).claims.map(c => c.sub) });
					if (failFirst) {
						failFirst = false;
						throw new Errors.MoleculerRetryableError("busy", 503, "BUSY");
					}
					return { paid: ctx.params.items.length };
				},
			},
		});
		await broker.start();
		try {
			const p = { items: [{ ownerId: ANN }, { ownerId: BEN }] };
			const token = signer.signBatch([{ id: ANN, roles: ["user"], sid: "a" }, { id: BEN, roles: ["user"], sid: "b" }], "unitmany.pay", p);
			assert.deepEqual(await broker.call("unitmany.pay", p, { meta: { callerBatchAssertion: token } }), { paid: 2 });
			assert.deepEqual(seen, [{ meta: {}, subs: [ANN, BEN] }, { meta: {}, subs: [ANN, BEN] }], "tried twice, the second time on the first check's claims");
			await assert.rejects(broker.call("unitmany.pay", { items: [{ ownerId: BEN }, { ownerId: ANN }] }, { meta: { callerBatchAssertion: token } }), unverified(/params/));
		} finally {
			await broker.stop();
		}
	});
});

describe("a gateway's intent", () => {
	it("stands for the signature of a call in its own process, bound to the action and the params object; a call to another node is signed on its way out", async () => {
		const k = generateGatewayKey();
		const ns = `intent-${process.pid}-${Date.now()}`;
		const localPay = action("unitintent.pay", { $$strict: true, userId: "string" }, returns<{ paid: string; assertion: unknown }>(), { user: "userId" });
		const remotePay = action("unitremote.pay", { $$strict: true, userId: "string" }, returns<{ paid: string; assertion: unknown }>(), { user: "userId" });
		const handler = (ctx: Context<{ userId: string }>) => ({
			paid: (ctx.locals[VERIFIED] as { claims: { sub: string }[] }).claims[0]?.sub ?? "unchecked",
			assertion: (ctx.meta as Record<string, unknown>)["callerAssertion"] ?? null,
		});
		const gateway = new ServiceBroker({
			nodeID: "gw", namespace: ns, transporter: "Fake", logger: false,
			retryPolicy: { enabled: true, retries: 2, delay: 1, check: (err: Error) => Boolean((err as Errors.MoleculerError).retryable) },
			middlewares: [callerIdentityMiddleware({ verifyKeys: [k.verifyKey], signingKey: k.signingKey, required: true }) as never],
		});
		const other = new ServiceBroker({
			nodeID: "other", namespace: ns, transporter: "Fake", logger: false,
			middlewares: [callerIdentityMiddleware({ verifyKeys: [k.verifyKey], signingKey: null, required: true }) as never],
		});
		const flakyPay = action("unitintent.flaky", { $$strict: true, userId: "string" }, returns<{ paid: string; assertion: unknown }>(), { user: "userId" });
		const swapPay = action("unitintent.swap", { $$strict: true, userId: "string" }, returns<{ paid: string; assertion: unknown }>(), { user: "userId" });
		const movedPay = action("unitmoved.pay", { $$strict: true, userId: "string" }, returns<{ paid: string; assertion: unknown; node: string }>(), { user: "userId" });
		let tries = 0;
		let movedTries = 0;
		gateway.createService({
			name: "unitintent",
			actions: {
				pay: handler,
				flaky(ctx: Context<{ userId: string }>) {
					tries += 1;
					if (tries === 1) throw new Errors.MoleculerRetryableError("busy", 503, "BUSY");
					return handler(ctx);
				},
				// A handler that changes its params before a retry: the retry is bound again, to them.
				swap(ctx: Context<{ userId: string }>) {
					ctx.params.userId = BEN;
					throw new Errors.MoleculerRetryableError("busy", 503, "BUSY");
				},
			},
		});
		other.createService({ name: "unitremote", actions: { pay: handler } });
		// On both nodes: the first attempt runs here, fails as retryable and takes this node's
		// endpoint out (as an opened circuit breaker does), so Moleculer's retry goes to the other.
		gateway.createService({
			name: "unitmoved",
			actions: {
				pay(ctx: Context<{ userId: string }>) {
					movedTries += 1;
					for (const ep of gateway.registry.getActionEndpoints("unitmoved.pay").localEndpoints) ep.state = false;
					throw new Errors.MoleculerRetryableError("busy", 503, "BUSY");
				},
			},
		});
		other.createService({ name: "unitmoved", actions: { pay: (ctx: Context<{ userId: string }>) => ({ ...handler(ctx), node: "other" }) } });
		const ann = { id: ANN, roles: ["user"], sid: "s" };
		gateway.createService({
			name: "gw",
			actions: {
				async run(ctx: Context<{ what: string }>) {
					markAuthenticated(ctx.meta as object, ann);
					const p = { userId: ANN };
					switch (ctx.params.what) {
						case "local": return call(ctx, localPay, p);
						case "remote": return call(ctx, remotePay, p);
						case "retried": return call(ctx, flakyPay, p);
						case "params changed before a retry": return call(ctx, swapPay, p);
						case "retried on another node": return call(ctx, movedPay, p);
						// What a call leaves on the request's meta (the answer's meta is merged back) covers no later call.
						case "after a remote call": {
							await call(ctx, remotePay, p);
							return ctx.call("unitintent.pay", p);
						}
						case "after a refused call": {
							const ben = { userId: BEN };
							await call(ctx, localPay, ben).catch(() => undefined);
							return ctx.call("unitintent.pay", ben);
						}
						case "someone else": return call(ctx, localPay, { userId: BEN });
						// An intent made for one params object does not cover another with the same fields.
						case "copied params": return ctx.call("unitintent.pay", { ...p }, { meta: { ...intentMeta(gateway, localPay.name, ctx.meta, p) } });
						// Nor a call of another action with them.
						case "other action": return ctx.call("unitintent.pay", p, { meta: { ...intentMeta(gateway, remotePay.name, ctx.meta, p) } });
						default: throw new Error("unknown case");
					}
				},
			},
		});
		await Promise.all([gateway.start(), other.start()]);
		try {
			await gateway.waitForServices(["unitremote"], 5_000);
			await until("both nodes' unitmoved.pay endpoints", () => gateway.registry.getActionEndpoints("unitmoved.pay").count() === 2);
			assert.deepEqual(await gateway.call("gw.run", { what: "local" }), { paid: ANN, assertion: null }, "checked in this process without a token");
			assert.deepEqual(await gateway.call("gw.run", { what: "remote" }), { paid: ANN, assertion: null }, "the node on the bus verified a signature (it requires one) and dropped it");
			assert.deepEqual(await gateway.call("gw.run", { what: "retried" }), { paid: ANN, assertion: null }, "Moleculer's retry of a local call keeps its check");
			assert.equal(tries, 2);
			await assert.rejects(gateway.call("gw.run", { what: "params changed before a retry" }), forbidden(/not for the verified caller/));
			assert.deepEqual(
				await gateway.call("gw.run", { what: "retried on another node" }), { paid: ANN, assertion: null, node: "other" },
				"a local call's retry that goes to another node is signed for the user the first attempt checked",
			);
			assert.equal(movedTries, 1);
			await assert.rejects(gateway.call("gw.run", { what: "after a remote call" }), unverified(/needs the caller's identity/));
			await assert.rejects(gateway.call("gw.run", { what: "after a refused call" }), unverified(/needs the caller's identity/));
			await assert.rejects(gateway.call("gw.run", { what: "someone else" }), forbidden(/not for the verified caller/));
			await assert.rejects(gateway.call("gw.run", { what: "copied params" }), unverified(/needs the caller's identity/));
			await assert.rejects(gateway.call("gw.run", { what: "other action" }), unverified(/needs the caller's identity/));
			// Nothing on the bus carries an intent: a node calling the gateway's action directly has none.
			await assert.rejects(other.call("unitintent.pay", { userId: ANN }), unverified(/needs the caller's identity/));
			await assert.rejects(gateway.call("unitintent.pay", { userId: ANN }), unverified(/needs the caller's identity/));
		} finally {
			await Promise.all([gateway.stop(), other.stop()]);
		}
	});
});
