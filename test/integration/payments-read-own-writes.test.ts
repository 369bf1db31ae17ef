/**
 * Read your own writes: a P2P payment is decided and written by the ledger in one commit. GET
 * /api/v1/payments/:id right after the 201 finds it (payments reads approved P2P
 * payments from the ledger, which alone keeps them), for each of 1,000 transfers sent at
 * once; a stranger gets 404 for each; the payer's list pages through all of theirs.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startNodeOnDatabase, TEST_JWT_SECRET, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { signAccessToken } from "../../services/auth/tokens.ts";
import { uuidv7 } from "../../lib/ids.ts";

const USERS = 50;
const TRANSFERS = 1_000;

let node: NodeOnDatabase;

before(async () => {
	node = await startNodeOnDatabase({ SERVICES: "api,ledger,payments,users", PORT: "0", HOST: "127.0.0.1", RATE_LIMIT_PER_USER: "1000000", RATE_LIMIT_PER_IP: "10000000" });
});

after(async () => {
	await node?.stop();
});

describe("payments read their own writes", () => {
	it("finds each of 1,000 concurrent transfers by GET /payments/:id right after its 201", async () => {
		const http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
		const sys: { id: string } = await node.broker.call("ledger.accounts.open", { kind: "system", code: "external:ryow:USD", currency: "USD" });
		const users = await Promise.all(Array.from({ length: USERS }, async () => {
			const id = uuidv7();
			const account: { id: string } = await node.broker.call("ledger.accounts.open", { ownerId: id, currency: "USD" });
			await node.broker.call("ledger.transfers.create", { idempotencyKey: `fund-${id}`, fromAccountId: sys.id, toAccountId: account.id, amount: 10_000_000, currency: "USD" });
			await node.broker.call("ledger.owners.setTier", { ownerId: id, tier: 3 });
			return { id, account: account.id, token: signAccessToken({ sub: id, roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 600) };
		}));
		const stranger = signAccessToken({ sub: uuidv7(), roles: ["user"], sid: uuidv7() }, TEST_JWT_SECRET, 600);
		const results = await Promise.all(Array.from({ length: TRANSFERS }, async (_, i) => {
			const from = users[i % USERS] as (typeof users)[number];
			const to = users[(i + 1) % USERS] as (typeof users)[number];
			const created = await http<{ paymentId: string; status: string }>("POST", "/api/v1/transfers", {
				token: from.token, body: { fromAccountId: from.account, toAccountId: to.account, amount: 100 + i, currency: "USD" }, headers: { "idempotency-key": `ryow-${i}` },
			});
			assert.equal(created.status, 201, JSON.stringify(created.body));
			const read = await http<{ id: string; status: string; amount: number; type: string }>("GET", `/api/v1/payments/${created.body.paymentId}`, { token: from.token });
			const foreign = await http("GET", `/api/v1/payments/${created.body.paymentId}`, { token: stranger });
			return { id: created.body.paymentId, read, foreign: foreign.status, amount: 100 + i };
		}));
		for (const r of results) {
			assert.equal(r.read.status, 200, `payment ${r.id} not found right after its 201`);
			assert.deepEqual([r.read.body.id, r.read.body.status, r.read.body.amount, r.read.body.type], [r.id, "completed", r.amount, "p2p"]);
			assert.equal(r.foreign, 404);
		}
		// Approved payments stay the ledger's: payments' view holds none of them, and each
		// payer's list shows all of theirs (read from the ledger), newest first.
		const { rows } = await node.sql.query<{ n: string }>("SELECT count(*) AS n FROM payments.payments WHERE id = ANY($1::uuid[])", [results.map(r => r.id)]);
		assert.equal(Number(rows[0]?.n), 0);
		const payer = users[0] as (typeof users)[number];
		const listed: string[] = [];
		let cursor: string | null = null;
		do {
			const page: { status: number; body: { items: { id: string }[]; nextCursor: string | null } } = await http("GET", `/api/v1/payments?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { token: payer.token });
			assert.equal(page.status, 200);
			listed.push(...page.body.items.map(i => i.id));
			cursor = page.body.nextCursor;
		} while (cursor);
		const mine = results.filter((_, i) => i % USERS === 0).map(r => r.id);
		assert.deepEqual([...listed].sort(), [...mine].sort());
		assert.equal(new Set(listed).size, listed.length);
	});
});
