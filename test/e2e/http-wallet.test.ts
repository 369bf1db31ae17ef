/**
 * The everyday wallet's routes over HTTP against one node with every service on a fresh
 * PostgreSQL database: finding transactions across accounts (filters, pages, foreign ids,
 * bad input), categories and insights.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let request: ReturnType<typeof client>;
interface Person { id: string; token: string; usd: string; eur: string }
const people: Record<string, Person> = {};
let system = "";

type Page = { items: { id: string; direction: string; amount: number; category: string; counterparty: { name: string }; accountId: string; description: string }[]; nextCursor: string | null };

async function register(name: string): Promise<Person> {
	const email = `${name.toLowerCase()}-${Date.now()}@example.com`;
	const r = await request<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email, password: "Correct-Horse-9-battery", name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	const token = r.body.accessToken;
	const open = async (currency: string) => (await request<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency } })).body.id;
	const p = { id: r.body.user.id, token, usd: await open("USD"), eur: await open("EUR") };
	await call(broker, ledger.owners.setTier, { ownerId: p.id, tier: 2 }).catch(() => undefined);
	return p;
}

async function pay(from: Person, toAccount: string, amount: number, description: string, key: string) {
	const r = await request("POST", "/api/v1/transfers", { token: from.token, headers: { "idempotency-key": key }, body: { fromAccountId: from.usd, toAccountId: toAccount, amount, currency: "USD", description } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
}

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "fatal", EVENT_POLL_INTERVAL_MS: "100" });
	broker = node.broker;
	request = client(`http://127.0.0.1:${gatewayPort(broker)}`);
	people["alice"] = await register("Alice");
	people["bruno"] = await register("Bruno");
	for (const name of ["alice", "bruno"]) await node.sql.query("UPDATE users.profiles SET kyc_tier = 2 WHERE user_id = $1", [people[name]?.id]).catch(() => undefined);
	system = (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	for (const p of Object.values(people)) {
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund-${p.id}`, fromAccountId: system, toAccountId: p.usd, amount: 500_000, currency: "USD", description: "top-up via bank" });
	}
});

after(() => node?.stop());

describe("GET /transactions", () => {
	it("lists the caller's transactions across accounts with filters and pages, and nobody else's", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		await pay(alice, bruno.usd, 1_250, "Coffee with Bruno", "c1");
		await pay(alice, bruno.usd, 120_000, "May rent", "r1");
		await pay(bruno, alice.usd, 3_000, "Taxi share", "t1");
		await until("Alice's transactions in the read model", async () => (await request<Page>("GET", "/api/v1/transactions", { token: alice.token })).body.items.length === 4);
		const all = (await request<Page>("GET", "/api/v1/transactions", { token: alice.token })).body;
		assert.deepEqual(all.items.map(i => [i.direction, i.amount, i.counterparty.name]), [["in", 3_000, "Bruno"], ["out", 120_000, "Bruno"], ["out", 1_250, "Bruno"], ["in", 500_000, "Bank transfer"]]);
		const rent = await request<Page>("GET", "/api/v1/transactions?category=rent", { token: alice.token });
		assert.deepEqual(rent.body.items.map(i => i.description), ["May rent"]);
		const search = await request<Page>("GET", "/api/v1/transactions?q=coff&direction=out&minAmountMinor=1000&maxAmountMinor=2000", { token: alice.token });
		assert.deepEqual(search.body.items.map(i => i.description), ["Coffee with Bruno"]);
		const byPerson = await request<Page>(`GET`, `/api/v1/transactions?counterpartyId=${bruno.id}&type=payment`, { token: alice.token });
		assert.equal(byPerson.body.items.length, 3);
		// Pages of two, then the rest.
		const first = await request<Page>("GET", "/api/v1/transactions?limit=2", { token: alice.token });
		assert.equal(first.body.items.length, 2);
		const second = await request<Page>("GET", `/api/v1/transactions?limit=2&cursor=${encodeURIComponent(first.body.nextCursor ?? "")}`, { token: alice.token });
		assert.deepEqual([...first.body.items, ...second.body.items].map(i => i.id), all.items.map(i => i.id));
		assert.equal(second.body.nextCursor, null);
		// Another account filter: nothing in EUR.
		assert.equal((await request<Page>("GET", `/api/v1/transactions?accountId=${alice.eur}`, { token: alice.token })).body.items.length, 0);
		// Bruno's own list never shows Alice's top-up.
		const brunos = (await request<Page>("GET", "/api/v1/transactions", { token: bruno.token })).body.items;
		assert.ok(brunos.every(i => i.accountId === bruno.usd));
	});

	it("answers 400 on bad filters, 401 without a token, 404 on a foreign or missing id, and changes nothing", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		for (const q of ["limit=101", "limit=0", "direction=sideways", "minAmountMinor=-1", "minAmountMinor=1.5", "category=crypto", "from=yesterday", "accountId=nope", `q=${"x".repeat(101)}`, "unknown=1", "from=2026-02-01&to=2026-01-01", "minAmountMinor=5&maxAmountMinor=4"]) {
			const r = await request<{ error: { code: string } }>("GET", `/api/v1/transactions?${q}`, { token: alice.token });
			assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
		}
		assert.equal((await request("GET", "/api/v1/transactions")).status, 401);
		const mine = (await request<Page>("GET", "/api/v1/transactions", { token: alice.token })).body.items[0];
		const foreign = await request<{ error: { code: string } }>("GET", `/api/v1/transactions/${mine?.id}`, { token: bruno.token });
		assert.deepEqual([foreign.status, foreign.body.error.code], [404, "TRANSACTION_NOT_FOUND"]);
		const foreignSet = await request<{ error: { code: string } }>("POST", `/api/v1/transactions/${mine?.id}/category`, { token: bruno.token, body: { category: "rent" } });
		assert.equal(foreignSet.status, 404);
		assert.equal((await request<{ category: string }>("GET", `/api/v1/transactions/${mine?.id}`, { token: alice.token })).body.category, mine?.category);
		const bad = await request("POST", `/api/v1/transactions/${mine?.id}/category`, { token: alice.token, body: { category: "crypto" } });
		assert.equal(bad.status, 400);
	});

	it("files a transaction under the customer's category, and the insights of the month add up", async () => {
		const alice = people["alice"] as Person;
		const coffee = (await request<Page>("GET", "/api/v1/transactions?q=coffee", { token: alice.token })).body.items[0];
		const set = await request<{ category: string; categorySetBy: string }>("POST", `/api/v1/transactions/${coffee?.id}/category`, { token: alice.token, body: { category: "dining", learn: false } });
		assert.deepEqual([set.status, set.body.category, set.body.categorySetBy], [200, "dining", "customer"]);
		const month = new Date().toISOString().slice(0, 7);
		const r = await request<{ month: string; totals: { currency: string; outMinor: number; inMinor: number }[]; byCategory: { category: string; totalMinor: number }[] }>("GET", `/api/v1/insights?month=${month}`, { token: alice.token });
		assert.equal(r.status, 200);
		assert.deepEqual(r.body.totals, [{ currency: "USD", inMinor: 503_000, outMinor: 121_250, inCount: 2, outCount: 2 }]);
		assert.deepEqual(r.body.byCategory.map(c => [c.category, c.totalMinor]), [["rent", 120_000], ["dining", 1_250]]);
		assert.equal((await request("GET", "/api/v1/insights?month=2026-13", { token: alice.token })).status, 400);
	});
});
