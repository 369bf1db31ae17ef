/**
 * An approved P2P transfer is one database transaction on the request's path, and so is
 * a payment sent to review (its hold): POST /api/v1/transfers against a node on
 * PostgreSQL, with every transaction the node's pg connections run counted at the driver
 * (BEGIN..COMMIT, or a statement outside one). The only other transactions are the
 * outbox relay's, which positions the committed events for the consumers after the commit
 * (nothing waits for it); they are counted apart.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { startNodeOnDatabase, TEST_JWT_SECRET, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";
import { uuidv7 } from "../../lib/ids.ts";

interface Tx {
	statements: string[];
	startedMs: number;
	endedMs: number;
}

/** Counts transactions per connection as the driver sends them. */
function countTransactions(): { done: Tx[]; restore(): void } {
	const done: Tx[] = [];
	const open = new WeakMap<object, Tx>();
	const original = pg.Client.prototype.query;
	const patched = function (this: pg.Client, ...args: unknown[]): unknown {
		const first = args[0];
		const text = typeof first === "string" ? first : typeof first === "object" && first !== null && "text" in first ? String((first as { text: unknown }).text) : "";
		const now = performance.now();
		const cur = open.get(this);
		if (/^\s*BEGIN/i.test(text)) open.set(this, { statements: [], startedMs: now, endedMs: 0 });
		else if (/^\s*(COMMIT|ROLLBACK)/i.test(text)) {
			if (cur) {
				cur.endedMs = now;
				done.push(cur);
				open.delete(this);
			}
		} else if (cur) cur.statements.push(text);
		else done.push({ statements: [text], startedMs: now, endedMs: now });
		return Reflect.apply(original, this, args);
	};
	pg.Client.prototype.query = patched as typeof original;
	return { done, restore: () => void (pg.Client.prototype.query = original) };
}

const isRelay = (t: Tx) => t.statements.some(s => s.includes("outbox_seq"));

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;
let token: string;
let from: string;
let to: string;
let sysId: string;

before(async () => {
	// The ledger and the gateway only: nothing else is on a transfer's path. Sweeps are slowed so they stay out of the count.
	node = await startNodeOnDatabase({ SERVICES: "api,ledger", PORT: "0", HOST: "127.0.0.1", LEDGER_HOLD_SWEEP_INTERVAL_MS: "3600000", OUTBOX_PRUNE_INTERVAL_MS: "86400000", OUTBOX_POLL_INTERVAL_MS: "60000" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
	const userId = uuidv7();
	const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:onecommit:USD", currency: "USD" });
	sysId = sys.id;
	from = (await node.broker.call<{ id: string }, object>("ledger.accounts.open", { ownerId: userId, currency: "USD" })).id;
	to = (await node.broker.call<{ id: string }, object>("ledger.accounts.open", { ownerId: uuidv7(), currency: "USD" })).id;
	await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund", fromAccountId: sys.id, toAccountId: from, amount: 100_000_000, currency: "USD" });
	await node.broker.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
	token = signAccessToken({ sub: userId, roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 600);
});

after(async () => {
	await node?.stop();
});

/** Sends one transfer and returns what the node's connections ran while it was in flight. */
async function oneTransfer(amount: number, key: string, as = { token, from }): Promise<{ status: number; onPath: Tx[]; relay: Tx[]; body: Record<string, unknown> }> {
	const counter = countTransactions();
	try {
		const sent = performance.now();
		const r = await http("POST", "/api/v1/transfers", { token: as.token, body: { fromAccountId: as.from, toAccountId: to, amount, currency: "USD" }, headers: { "idempotency-key": key } });
		const answered = performance.now();
		const inFlight = counter.done.filter(t => t.startedMs >= sent && t.endedMs <= answered);
		return { status: r.status, body: r.body, onPath: inFlight.filter(t => !isRelay(t)), relay: inFlight.filter(isRelay) };
	} finally {
		counter.restore();
	}
}

describe("one commit per payment", () => {
	it("makes exactly one transaction for an approved transfer", async () => {
		// The first request prepares the statements on its connection; count the ones after it.
		assert.equal((await oneTransfer(100, "warm")).status, 201);
		for (let i = 0; i < 10; i++) {
			const r = await oneTransfer(100 + i, `approved-${i}`);
			assert.equal(r.status, 201, JSON.stringify(r.body));
			assert.equal(r.onPath.length, 1, `transactions on the path: ${JSON.stringify(r.onPath.map(t => t.statements.map(s => s.slice(0, 60))))}`);
			const [tx] = r.onPath;
			const sql = tx?.statements.join("\n") ?? "";
			// That one transaction decided and wrote everything: the locks and history read, then transfer, entries, owner state and events.
			for (const part of ["FOR UPDATE", "INSERT INTO ledger.transfers", "request_hash", "INSERT INTO ledger.entries", "UPDATE ledger.owners", "INSERT INTO ledger.outbox"]) {
				assert.ok(sql.includes(part), `the transaction has no ${part}`);
			}
			// The approved payment's key rides on its transfer row (migration ledger 008): no key row.
			assert.ok(!sql.includes("INSERT INTO ledger.idempotency"), "an approved payment wrote a key row besides its transfer");
		}
	});

	it("makes exactly one transaction for a payment sent to review, which holds the money", async () => {
		// A payer with a short history: one small payment to the recipient, who is then known.
		const userId = uuidv7();
		const payer = (await node.broker.call<{ id: string }, object>("ledger.accounts.open", { ownerId: userId, currency: "USD" })).id;
		await node.broker.call("ledger.transfers.create", { idempotencyKey: "fund-review", fromAccountId: sysId, toAccountId: payer, amount: 10_000_000, currency: "USD" });
		await node.broker.call("ledger.owners.setTier", { ownerId: userId, tier: 3 });
		const as = { token: signAccessToken({ sub: userId, roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 600), from: payer };
		assert.equal((await oneTransfer(1_000, "review-known", as)).status, 201);
		// 6,000.00 is a large amount for the fraud rules: review.
		const r = await oneTransfer(600_000, "review-1", as);
		assert.equal(r.status, 202, JSON.stringify(r.body));
		assert.equal(r.body["status"], "pending_review");
		assert.equal(r.onPath.length, 1, `transactions on the path: ${JSON.stringify(r.onPath.map(t => t.statements.map(s => s.slice(0, 60))))}`);
		const sql = r.onPath[0]?.statements.join("\n") ?? "";
		assert.ok(sql.includes("INSERT INTO ledger.holds") && !sql.includes("INSERT INTO ledger.transfers"), "the review is a hold, and nothing moved");
		const held = await node.sql.query("SELECT kind, status, amount FROM ledger.holds WHERE id = $1", [r.body["paymentId"]]);
		assert.deepEqual(held.rows[0], { kind: "review", status: "pending", amount: "600000" });
	});
});
