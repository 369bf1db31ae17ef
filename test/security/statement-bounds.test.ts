/**
 * Issue 16, finding 16 (first half): a JSON statement could make 50 sequential ledger calls
 * and hold 10,000 rows for one request. Now a JSON statement is a page: one ledger call,
 * at most `limit` entries (1..200, default 100), and `nextCursor` for the next page; a
 * larger range is followed page by page, or streamed as CSV.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Context, ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let http: ReturnType<typeof client>;
/** Calls of ledger.accounts.statement since the last reset. */
let ledgerCalls = 0;

type Session = { user: { id: string }; accessToken: string };
type Page = { items: { id: string; amount: number; version: number }[]; totals: { credits: number; debits: number; count: number }; nextCursor?: string | null; truncated?: boolean };

const ENTRIES = 450;

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1" }));
	http = client(`http://127.0.0.1:${gatewayPort(broker)}`);
	// Count the statement calls the ledger serves: wrap its local endpoint's handler (local calls go through it).
	const endpoint = broker.registry.getActionEndpoints("ledger.accounts.statement")?.endpoints[0];
	const action = endpoint?.action as { handler: (ctx: Context) => Promise<unknown> } | undefined;
	assert.ok(action, "the ledger's statement action is local");
	const handler = action.handler;
	action.handler = (ctx: Context) => {
		ledgerCalls++;
		return handler(ctx);
	};
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("finding 16: a JSON statement is one bounded page", () => {
	it("answers a page of at most `limit` entries with one ledger call, and the cursors walk the range once", async () => {
		const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email: `st-${Math.random().toString(16).slice(2)}@example.com`, password: "Correct-Horse-Battery-9", name: "st" } });
		assert.equal(r.status, 201);
		const owner = r.body;
		const account = (await http<{ id: string }>("POST", "/api/v1/accounts", { token: owner.accessToken, body: { currency: "USD" } })).body.id;
		const sys = await call(broker, ledger.accounts.open, { kind: "system", code: "external:stmt:USD", currency: "USD" });
		for (let i = 0; i < ENTRIES; i += 100) {
			const items = Array.from({ length: Math.min(100, ENTRIES - i) }, (_, k) => ({ idempotencyKey: `st-${i + k}`, fromAccountId: sys.id, toAccountId: account, amount: i + k + 1, currency: "USD" as const }));
			const out = await call(broker, ledger.transfers.createMany, { items });
			assert.ok(out.items.every(x => x.ok));
		}
		const get = (query: string) => http<Page>("GET", `/api/v1/reports/statement?accountId=${account}${query}`, { token: owner.accessToken });

		// The default page: one ledger call, 100 entries, a cursor. Before: 3 ledger calls and all 450 entries in one answer.
		ledgerCalls = 0;
		const first = await get("");
		assert.equal(first.status, 200, JSON.stringify(first.body));
		assert.equal(ledgerCalls, 1, "one ledger call per statement request");
		assert.equal(first.body.items.length, 100);
		assert.equal(typeof first.body.nextCursor, "string");

		// Walk the range at the largest page: every entry once, oldest first, with the page's totals.
		const seen: number[] = [];
		let cursor: string | null | undefined = null;
		let pages = 0;
		ledgerCalls = 0;
		do {
			const page: Awaited<ReturnType<typeof get>> = await get(`&limit=200${cursor ? `&cursor=${cursor}` : ""}`);
			assert.equal(page.status, 200, JSON.stringify(page.body));
			assert.ok(page.body.items.length <= 200);
			assert.equal(page.body.totals.count, page.body.items.length);
			assert.equal(page.body.totals.credits, page.body.items.reduce((s, e) => s + e.amount, 0));
			seen.push(...page.body.items.map(e => e.amount));
			cursor = page.body.nextCursor;
			pages++;
		} while (cursor && pages < 10);
		assert.equal(ledgerCalls, pages, "one ledger call per page");
		assert.deepEqual(seen, Array.from({ length: ENTRIES }, (_, k) => k + 1));
		assert.equal(pages, 3);

		// The limits are limits: too large a page, a made-up cursor, and CSV still streams the whole range.
		assert.equal((await get("&limit=201")).status, 400);
		assert.equal((await get("&limit=0")).status, 400);
		assert.equal((await get("&cursor=abc")).status, 400);
		assert.equal((await get("&cursor=9999999999999999")).status, 400);
		assert.equal((await get("&cursor=999999999999999")).body.items.length, 0);
		const csv = await fetch(`http://127.0.0.1:${gatewayPort(broker)}/api/v1/reports/statement?accountId=${account}&format=csv`, { headers: { authorization: `Bearer ${owner.accessToken}` } });
		assert.equal(csv.status, 200);
		assert.equal((await csv.text()).trim().split("\n").length, ENTRIES + 1);
	});
});
