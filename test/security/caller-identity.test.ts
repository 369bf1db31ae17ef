/**
 * Money and staff actions need the caller's identity signed by the gateway (issue 16, "a
 * closed cluster", second half; lib/caller-identity.ts), over real NATS with the transit key:
 *
 * - a rogue node holds TRANSIT_KEY (its packets are delivered) but not the gateway's private
 *   key: it cannot pay from another user's account through ledger.payments.p2pMany, the
 *   gateway's transfer entry (without an assertion, with one of its own key, with a
 *   captured assertion of someone else's payment, with one whose amount it changed, with an
 *   expired one), and cannot set a tier with a forged staff id or none; an assertion for
 *   freezing an account does not unfreeze it; the money and the tier stay as they were;
 * - the gateway signs only for the users it authenticated from a request: its own actions
 *   called over the bus with a forged ctx.meta.user (a transfer, an admin's tier change, an
 *   API client) answer 401, and auth's session actions refuse an unsigned meta.user;
 * - a batch's one assertion (one signature naming each item's payer) binds each payment to
 *   its own payer: captured and put on changed items, or naming the wrong payer, it is refused;
 * - the real gateway's requests get through: an HTTP transfer (batched to the ledger node,
 *   which says it takes a batch's one assertion) and staff actions with their audited staff
 *   member;
 * - a rotation: with both public keys in GATEWAY_VERIFY_KEYS, old-signed and new-signed
 *   calls are accepted; after the node restarts without the old key, old-signed ones are
 *   refused and new-signed ones accepted;
 * - a gateway without GATEWAY_SIGNING_KEY, and any node without GATEWAY_VERIFY_KEYS, refuse
 *   to start with a transporter (exit code 78).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Errors, type ServiceBroker } from "moleculer";
import { createTestDatabase, NATS_URL, type TestDatabase } from "../support/db.ts";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { exited, startChildNode } from "../support/child.ts";
import { client, gatewayPort } from "../support/http.ts";
import { CallerSigner, generateGatewayKey, takesBatchAssertion, type CallerIdentity } from "../../lib/caller-identity.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";

const ns = `caller-${randomBytes(3).toString("hex")}`;
const oldKey = generateGatewayKey();
const newKey = generateGatewayKey();
const rogueKey = generateGatewayKey();
const gatewayNew = new CallerSigner(newKey.signingKey);
const gatewayOld = new CallerSigner(oldKey.signingKey);
const rogue = new CallerSigner(rogueKey.signingKey);
/** The gateway's key on a clock 40 s behind: what it signs has expired (30 s) beyond the 5 s skew. */
const gatewayLate = new CallerSigner(newKey.signingKey, () => Date.now() - 40_000);

const ANN = uuidv7();
const BEN = uuidv7();
const ADMIN = uuidv7();
const SUPPORT = uuidv7();
const who = (id: string, roles: string[]): CallerIdentity => ({ id, roles, sid: `s-${id}` });
const ann = who(ANN, ["user"]);
const ben = who(BEN, ["user"]);
const admin = who(ADMIN, ["user", "admin"]);
const support = who(SUPPORT, ["user", "support"]);

let db: TestDatabase;
let services: ServiceBroker;
let gateway: ServiceBroker;
let rogueNode: ServiceBroker;
const accounts = { ann: "", ben: "" };

const shared = () => ({ DATABASE_URL: db.url, TRANSPORTER: NATS_URL, NAMESPACE: ns, HEARTBEAT_INTERVAL_S: "1", HEARTBEAT_TIMEOUT_S: "4" });

async function startServices(verifyKeys: string): Promise<ServiceBroker> {
	const { broker } = await startNode({ ...shared(), SERVICES: "ledger,users,audit,auth", NODE_ID: `${ns}-services`, LOG_LEVEL: "error", GATEWAY_SIGNING_KEY: "", GATEWAY_VERIFY_KEYS: verifyKeys });
	return broker;
}

before(async () => {
	db = await createTestDatabase();
	services = await startServices(`${newKey.verifyKey},${oldKey.verifyKey}`);
	({ broker: gateway } = await startNode({
		...shared(), SERVICES: "api", PORT: "0", HOST: "127.0.0.1", NODE_ID: `${ns}-gateway`, LOG_LEVEL: "error",
		GATEWAY_SIGNING_KEY: newKey.signingKey, GATEWAY_VERIFY_KEYS: `${newKey.verifyKey},${oldKey.verifyKey}`,
	}));
	// Has the transit key, so its packets reach every node, but no gateway key: it runs no gateway.
	({ broker: rogueNode } = await startNode({ ...shared(), SERVICES: "none", NODE_ID: `${ns}-rogue`, LOG_LEVEL: "error", GATEWAY_SIGNING_KEY: "", GATEWAY_VERIFY_KEYS: newKey.verifyKey }));
	await gateway.waitForServices(["ledger"], 20_000);
	await rogueNode.waitForServices(["ledger", "users"], 20_000);
	for (const [id, name] of [[ANN, "Ann"], [BEN, "Ben"]] as const) {
		await services.call("users.create", { userId: id, email: `${name.toLowerCase()}-${ns}@example.com`, name });
		await services.call("users.markEmailVerified", { id, email: `${name.toLowerCase()}-${ns}@example.com` });
	}
	const sys: { id: string } = await services.call("ledger.accounts.open", { kind: "system", code: `external:${ns.replace("-", "_")}:USD`, currency: "USD" });
	accounts.ann = (await services.call<{ id: string }, object>("ledger.accounts.open", { ownerId: ANN, currency: "USD" })).id;
	accounts.ben = (await services.call<{ id: string }, object>("ledger.accounts.open", { ownerId: BEN, currency: "USD" })).id;
	await services.call("ledger.transfers.create", { idempotencyKey: `fund-${ns}`, fromAccountId: sys.id, toAccountId: accounts.ann, amount: 100_000, currency: "USD" });
});

after(async () => {
	for (const b of [rogueNode, gateway, services]) await b?.stop();
	await db?.drop();
});

function refused(status: number, type: string, message?: RegExp) {
	return (err: unknown) => {
		assert.ok(err instanceof Errors.MoleculerError, `expected a MoleculerError, got ${String(err)}`);
		assert.equal(err.code, status, err.message);
		assert.equal(err.type, type, err.message);
		if (message) assert.match(err.message, message);
		return true;
	};
}

async function posted(accountId: string): Promise<number> {
	const a: { balance: { posted: number } } = await services.call("ledger.accounts.get", { id: accountId });
	return Number(a.balance.posted);
}

async function tierOf(id: string): Promise<number> {
	return (await services.call<{ kycTier: number }, object>("users.get", { id })).kycTier;
}

const P2P_MANY = "ledger.payments.p2pMany";
const payment = (key: string, amount: number, from = { owner: ANN, account: () => accounts.ann }) =>
	({ idempotencyKey: `u:${from.owner}:${key}`, ownerId: from.owner, fromAccountId: from.account(), toAccountId: accounts.ben, amount, currency: "USD" });

describe("the gateway-signed caller", () => {
	it("a node with the transit key but not the gateway's key cannot pay from another user's account", async () => {
		const item = payment("steal-1", 50_000);
		// No assertion at all: the call of an honest node that is not the gateway.
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [item] }), refused(401, "CALLER_UNVERIFIED", /signed by the gateway/));
		// Signed with a key of its own: its key id is not in GATEWAY_VERIFY_KEYS.
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [item] }, { meta: { callerAssertions: [rogue.sign(ann, P2P_MANY, item)] } }), refused(401, "CALLER_UNVERIFIED", /key this node does not know/));
		// A genuine assertion of Ben's own payment (read off the bus: the rogue node can open packets), put on Ann's.
		const bens = payment("own-1", 10, { owner: BEN, account: () => accounts.ben });
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [item] }, { meta: { callerAssertions: [gatewayNew.sign(ben, P2P_MANY, bens)] } }), refused(401, "CALLER_UNVERIFIED", /params are not the ones/));
		// Even a gateway-signed assertion binds to its signer: Ben's identity does not pay from Ann's account.
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [item] }, { meta: { callerAssertions: [gatewayNew.sign(ben, P2P_MANY, item)] } }), refused(403, "FORBIDDEN", /not for the verified caller/));
		assert.equal(await posted(accounts.ann), 100_000);
		assert.equal(await posted(accounts.ben), 0);
	});

	it("a batch's one assertion binds each payment to its own payer: changed items or the wrong payer are refused, a genuine one pays", async () => {
		const annPays = payment("batch-ann", 100);
		// Ben pays Ann back 10 of the 100 in the same batch (its items run in order).
		const benPays = { ...payment("batch-ben", 10, { owner: BEN, account: () => accounts.ben }), toAccountId: accounts.ann };
		const items = [annPays, benPays];
		const token = gatewayNew.signBatch([ann, ben], P2P_MANY, { items });
		// Read off the bus and put on a bigger amount, or on Ben's payment alone.
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [{ ...annPays, amount: 90_000 }, benPays] }, { meta: { callerBatchAssertion: token } }), refused(401, "CALLER_UNVERIFIED", /params are not the ones/));
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [benPays] }, { meta: { callerBatchAssertion: token } }), refused(401, "CALLER_UNVERIFIED", /params are not the ones/));
		// Ben named as the payer of Ann's payment.
		await assert.rejects(rogueNode.call(P2P_MANY, { items }, { meta: { callerBatchAssertion: gatewayNew.signBatch([ben, ben], P2P_MANY, { items }) } }), refused(403, "FORBIDDEN", /not for the verified caller/));
		// Signed with the rogue node's own key.
		await assert.rejects(rogueNode.call(P2P_MANY, { items }, { meta: { callerBatchAssertion: rogue.signBatch([ann, ben], P2P_MANY, { items }) } }), refused(401, "CALLER_UNVERIFIED", /key this node does not know/));
		assert.equal(await posted(accounts.ann), 100_000);
		const out: { items: { ok: boolean }[] } = await rogueNode.call(P2P_MANY, { items }, { meta: { callerBatchAssertion: token } });
		assert.deepEqual(out.items.map(i => i.ok), [true, true]);
		assert.equal(await posted(accounts.ann), 100_000 - 100 + 10);
		// Money back as it was for the tests after (Ben pays Ann 90, signed for Ben).
		const back = payment("batch-back", 90, { owner: BEN, account: () => accounts.ben });
		const backTo = { ...back, toAccountId: accounts.ann };
		const undo: { items: { ok: boolean }[] } = await rogueNode.call(P2P_MANY, { items: [backTo] }, { meta: { callerBatchAssertion: gatewayNew.signBatch([ben], P2P_MANY, { items: [backTo] }) } });
		assert.deepEqual(undo.items.map(i => i.ok), [true]);
		assert.deepEqual([await posted(accounts.ann), await posted(accounts.ben)], [100_000, 0]);
	});

	it("a tampered amount, an expired assertion and one for another action are refused", async () => {
		const signed = payment("small-1", 100);
		const tampered = { ...signed, amount: 90_000 };
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [tampered] }, { meta: { callerAssertions: [gatewayNew.sign(ann, P2P_MANY, signed)] } }), refused(401, "CALLER_UNVERIFIED", /params are not the ones/));
		await assert.rejects(rogueNode.call(P2P_MANY, { items: [signed] }, { meta: { callerAssertions: [gatewayLate.sign(ann, P2P_MANY, signed)] } }), refused(401, "CALLER_UNVERIFIED", /expired/));
		assert.equal(await posted(accounts.ann), 100_000);
		// An admin's freeze, captured and sent to unfreeze (the same params): refused.
		const freeze = { id: accounts.ben, staffId: ADMIN, reason: "fraud check" };
		const freezeAssertion = gatewayNew.sign(admin, "ledger.accounts.freeze", freeze);
		const frozen: { status: string } = await rogueNode.call("ledger.accounts.freeze", freeze, { meta: { callerAssertion: freezeAssertion } });
		assert.equal(frozen.status, "frozen");
		await assert.rejects(rogueNode.call("ledger.accounts.unfreeze", freeze, { meta: { callerAssertion: gatewayNew.sign(admin, "ledger.accounts.freeze", freeze) } }), refused(401, "CALLER_UNVERIFIED", /another action/));
		const still: { status: string } = await services.call("ledger.accounts.get", { id: accounts.ben });
		assert.equal(still.status, "frozen");
		await rogueNode.call("ledger.accounts.unfreeze", freeze, { meta: { callerAssertion: gatewayNew.sign(admin, "ledger.accounts.unfreeze", freeze) } });
		// The freeze's assertion, captured and replayed after the unfreeze (within its 30 s): refused, the account stays active.
		await assert.rejects(rogueNode.call("ledger.accounts.freeze", freeze, { meta: { callerAssertion: freezeAssertion } }), refused(409, "CALLER_REPLAYED"));
		const active: { status: string } = await services.call("ledger.accounts.get", { id: accounts.ben });
		assert.equal(active.status, "active");
	});

	it("no staff action with a forged staff id, or none: the tier stays; the signed staff member's goes through, audited", async () => {
		const forged = { id: BEN, tier: 2, staffId: ADMIN, reason: "looks fine" };
		await assert.rejects(rogueNode.call("users.setTier", forged), refused(401, "CALLER_UNVERIFIED"));
		// Without a staff id it would be "the system's own" call: not in a cluster.
		await assert.rejects(rogueNode.call("users.setTier", { id: BEN, tier: 2 }), refused(401, "CALLER_UNVERIFIED"));
		// A support member's genuine identity naming the admin as the one who acts.
		await assert.rejects(rogueNode.call("users.setTier", forged, { meta: { callerAssertion: gatewayNew.sign(support, "users.setTier", forged) } }), refused(403, "FORBIDDEN", /not the verified caller/));
		// A user naming themselves: no staff role.
		const self = { id: BEN, tier: 2, staffId: BEN };
		await assert.rejects(rogueNode.call("users.setTier", self, { meta: { callerAssertion: gatewayNew.sign(ben, "users.setTier", self) } }), refused(403, "FORBIDDEN", /roles/));
		assert.equal(await tierOf(BEN), 1);
		const byAdmin = { id: BEN, tier: 2, staffId: ADMIN, reason: "documents checked" };
		await gateway.call("users.setTier", byAdmin, { meta: { callerAssertion: gatewayNew.sign(admin, "users.setTier", byAdmin) } });
		assert.equal(await tierOf(BEN), 2);
		// Only the admin's change reached the audit log (requested, done): the refused calls never got that far.
		const log: { items: { event: string; payload: { actor: string; target: string; details: { outcome: string } } }[] } = await services.call("audit.list", { limit: 500 });
		assert.deepEqual(log.items.filter(e => e.event === "admin.user.tier.set").map(e => [e.payload.actor, e.payload.target, e.payload.details.outcome]), [[ADMIN, BEN, "requested"], [ADMIN, BEN, "done"]]);
	});

	it("the gateway signs only for users it authenticated from a request: a gateway action called over the bus with a forged ctx.meta.user is refused (401) and signs nothing", async () => {
		const before = await posted(accounts.ann);
		const forgedAnn = { user: { id: ANN, roles: ["user"], sid: "forged" }, idempotencyKey: `forged-${ns}` };
		// The gateway's transfer action, reached over the bus (its actions are published for moleculer-web).
		await assert.rejects(
			rogueNode.call("api.createTransfer", { fromAccountId: accounts.ann, toAccountId: accounts.ben, amount: 7_000, currency: "USD" }, { meta: forgedAnn }),
			refused(401, "UNAUTHORIZED"),
		);
		assert.equal(await posted(accounts.ann), before, "no money moved");
		// A staff action as a made-up admin: refused, the tier unchanged, nothing audited for that admin.
		const NOBODY = uuidv7();
		const tier = await tierOf(BEN);
		await assert.rejects(rogueNode.call("api.adminSetTier", { id: BEN, tier: 1 }, { meta: { user: { id: NOBODY, roles: ["user", "admin"], sid: "forged" } } }), refused(401, "UNAUTHORIZED"));
		assert.equal(await tierOf(BEN), tier);
		const log: { items: { payload: { actor: string } }[] } = await services.call("audit.list", { limit: 500 });
		assert.ok(!log.items.some(e => e.payload.actor === NOBODY), "no audit record for the forged admin");
		// An API client for Ann, minted through the gateway or straight from auth: both refused.
		// (the gateway hands it to auth unsigned, and auth refuses it)
		await assert.rejects(rogueNode.call("api.clientCreate", { name: "stolen", scopes: ["payments:write"] }, { meta: { user: ann } }), refused(401, "CALLER_UNVERIFIED"));
		await assert.rejects(rogueNode.call("auth.clients.create", { name: "stolen", scopes: ["payments:write"] }, { meta: { user: ann } }), refused(401, "CALLER_UNVERIFIED"));
		await assert.rejects(rogueNode.call("auth.sessions.list", {}, { meta: { user: ann } }), refused(401, "CALLER_UNVERIFIED"));
	});

	it("the gateway's own requests get through: an HTTP transfer batched to the ledger node under one assertion", async () => {
		// The ledger node says it takes a batch's one assertion: the gateway's batcher signs once per call to it.
		assert.ok(takesBatchAssertion(gateway, "ledger", services.nodeID));
		const token = signAccessToken({ sub: ANN, roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 600);
		const http = client(`http://127.0.0.1:${gatewayPort(gateway)}`);
		const r = await http("POST", "/api/v1/transfers", { token, headers: { "idempotency-key": `t-${ns}` }, body: { fromAccountId: accounts.ann, toAccountId: accounts.ben, amount: 1_234, currency: "USD" } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		assert.equal(await posted(accounts.ann), 100_000 - 1_234);
		assert.equal(await posted(accounts.ben), 1_234);
		// A staff refund reads the payment and its payee on the ledger node first: after those remote calls (whose
		// answers merge their meta back into the request's) the gateway still signs the refund for the admin.
		const paymentId = String((r.body as { id?: unknown }).id);
		const adminToken = signAccessToken({ sub: ADMIN, roles: ["user", "admin"], sid: uuidv7() }, TEST_JWT_SECRET, 600);
		const refund = await http("POST", `/api/v1/admin/payments/${paymentId}/refunds`, { token: adminToken, headers: { "idempotency-key": `r-${ns}` }, body: { amount: 234, reason: "customer asked, checked by phone" } });
		assert.equal(refund.status, 201, JSON.stringify(refund.body));
		assert.equal(await posted(accounts.ben), 1_000);
	});

	it("a rotation: both keys accepted while both are listed; after a restart without the old key, only the new one", async () => {
		const call = (signer: CallerSigner, id: string) => {
			const p = { id: accounts.ann, staffId: ADMIN, reason: `rotation ${id}` };
			return rogueNode.call<{ status: string }, object>("ledger.accounts.freeze", p, { meta: { callerAssertion: signer.sign(admin, "ledger.accounts.freeze", p) } });
		};
		assert.equal((await call(gatewayOld, "old-1")).status, "frozen");
		assert.equal((await call(gatewayNew, "new-1")).status, "frozen");
		await services.stop();
		services = await startServices(newKey.verifyKey);
		await rogueNode.waitForServices(["ledger"], 20_000);
		await assert.rejects(call(gatewayOld, "old-2"), refused(401, "CALLER_UNVERIFIED", /key this node does not know/));
		assert.equal((await call(gatewayNew, "new-2")).status, "frozen");
	});

	it("refuses to start, with a transporter, a gateway without GATEWAY_SIGNING_KEY and any node without GATEWAY_VERIFY_KEYS (exit code 78)", async () => {
		const base = { TRANSPORTER: NATS_URL, NAMESPACE: `${ns}-start`, JWT_SECRET: TEST_JWT_SECRET, LOG_LEVEL: "fatal" };
		const gatewayWithout = startChildNode({ ...base, SERVICES: "api", GATEWAY_SIGNING_KEY: "" });
		const nodeWithout = startChildNode({ ...base, SERVICES: "none", GATEWAY_VERIFY_KEYS: "" });
		await Promise.all([exited(gatewayWithout), exited(nodeWithout)]);
		assert.equal(gatewayWithout.exitCode, 78);
		assert.equal(nodeWithout.exitCode, 78);
	});
});
