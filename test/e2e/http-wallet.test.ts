/**
 * The everyday wallet's routes over HTTP against one node with every service on a fresh
 * PostgreSQL database: finding transactions across accounts (filters, pages, foreign ids,
 * bad input), categories and insights; payment requests (foreign ids 404, bad input 4xx
 * with nothing written, replays, accept, decline, cancel); saved payees, standing orders and
 * account rename and close (foreign ids 404, bad input 4xx with nothing written, replays).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { users } from "../../contracts/users.ts";

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
	people["carla"] = await register("Carla");
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
		// The filtered set as CSV: words, names and major units, no ids or codes.
		const csv = await fetch(`http://127.0.0.1:${gatewayPort(broker)}/api/v1/transactions/export?direction=out`, { headers: { authorization: `Bearer ${alice.token}` } });
		assert.equal(csv.status, 200);
		assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
		const lines = (await csv.text()).trim().split("\r\n");
		assert.equal(lines[0], "Date,Type,Counterparty,Description,Category,Money in,Money out,Currency,Account");
		assert.deepEqual(lines.slice(1).map(l => l.split(",").slice(1)), [
			["Payment", "Bruno", "May rent", "Rent", "", "1200.00", "USD", "USD account"],
			["Payment", "Bruno", "Coffee with Bruno", "Eating out", "", "12.50", "USD", "USD account"],
		]);
		assert.equal((await request("GET", "/api/v1/transactions/export?limit=5", { token: alice.token })).status, 400);
		assert.equal((await request("GET", "/api/v1/transactions/export")).status, 401);
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

type Req = { id: string; status: string; amount: number; payer: { id: string; name: string }; requester: { id: string; name: string }; failureCode: string | null };
type ErrorBody = { error: { code: string } };

describe("payment requests over HTTP", () => {
	const count = async () => (await node.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM requests.requests")).rows[0]?.n ?? -1;

	it("refuses bad input with 4xx and writes nothing", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		const before = await count();
		const ok = { toAccountId: alice.usd, amount: 700, currency: "USD", payerId: bruno.id, note: "tickets" };
		const cases: [Record<string, unknown>, Record<string, string>, number, string][] = [
			[ok, {}, 400, "IDEMPOTENCY_KEY_REQUIRED"],
			[{ ...ok, amount: 0 }, { "idempotency-key": "b1" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, amount: 1.5 }, { "idempotency-key": "b2" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, currency: "XXX" }, { "idempotency-key": "b3" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, note: "x".repeat(281) }, { "idempotency-key": "b4" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, payerEmail: "bruno@example.com" }, { "idempotency-key": "b5" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, payerId: undefined }, { "idempotency-key": "b6" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, admin: true }, { "idempotency-key": "b7" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, expiresInS: 10 }, { "idempotency-key": "b8" }, 400, "VALIDATION_ERROR"],
			[{ ...ok, toAccountId: bruno.usd }, { "idempotency-key": "b9" }, 404, "ACCOUNT_NOT_FOUND"],
			[{ ...ok, toAccountId: alice.eur }, { "idempotency-key": "b10" }, 422, "CURRENCY_MISMATCH"],
			[{ ...ok, payerId: alice.id }, { "idempotency-key": "b11" }, 422, "SAME_ACCOUNT"],
			[{ ...ok, payerId: "018f0000-0000-7000-8000-00000000dead" }, { "idempotency-key": "b12" }, 404, "RECIPIENT_NOT_FOUND"],
			[{ ...ok, payerId: undefined, payerEmail: "nobody@example.com" }, { "idempotency-key": "b13" }, 404, "RECIPIENT_NOT_FOUND"],
		];
		for (const [body, headers, status, code] of cases) {
			const r = await request<ErrorBody>("POST", "/api/v1/requests", { token: alice.token, headers, body });
			assert.deepEqual([r.status, r.body.error?.code], [status, code], JSON.stringify(body).slice(0, 120));
		}
		assert.equal((await request("POST", "/api/v1/requests", { body: ok, headers: { "idempotency-key": "b14" } })).status, 401);
		assert.equal(await count(), before);
	});

	it("replays a retried request, refuses the key with another body, and hides it from everyone but its two people", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		const carla = people["carla"] as Person;
		const body = { toAccountId: alice.usd, amount: 700, currency: "USD", payerId: bruno.id, note: "tickets" };
		const first = await request<Req>("POST", "/api/v1/requests", { token: alice.token, headers: { "idempotency-key": "q1" }, body });
		assert.equal(first.status, 201);
		assert.equal(first.headers.get("location"), `/api/v1/requests/${first.body.id}`);
		assert.deepEqual([first.body.status, first.body.payer.name, first.body.requester.name], ["pending", "Bruno", "Alice"]);
		const again = await request<Req>("POST", "/api/v1/requests", { token: alice.token, headers: { "idempotency-key": "q1" }, body: { note: "tickets", payerId: bruno.id, currency: "USD", amount: 700, toAccountId: alice.usd } });
		assert.deepEqual([again.status, again.body.id], [201, first.body.id]);
		const changed = await request<ErrorBody>("POST", "/api/v1/requests", { token: alice.token, headers: { "idempotency-key": "q1" }, body: { ...body, amount: 701 } });
		assert.deepEqual([changed.status, changed.body.error.code], [409, "IDEMPOTENCY_MISMATCH"]);
		for (const [method, path, extra] of [["GET", "", undefined], ["POST", "/accept", { fromAccountId: carla.usd }], ["POST", "/decline", {}], ["POST", "/cancel", {}]] as const) {
			const r = await request<ErrorBody>(method, `/api/v1/requests/${first.body.id}${path}`, { token: carla.token, ...(extra ? { body: extra } : {}) });
			assert.deepEqual([r.status, r.body.error.code], [404, "REQUEST_NOT_FOUND"], `${method} ${path}`);
		}
		assert.equal((await request("GET", "/api/v1/requests/not-a-uuid", { token: alice.token })).status, 400);
		assert.equal((await request("GET", "/api/v1/requests?role=everyone", { token: alice.token })).status, 400);
		assert.equal((await request("GET", "/api/v1/requests?role=incoming&limit=101", { token: alice.token })).status, 400);
		const incoming = await request<{ items: Req[] }>("GET", "/api/v1/requests?role=incoming&status=pending", { token: bruno.token });
		assert.deepEqual(incoming.body.items.map(i => i.id), [first.body.id]);
		assert.equal((await request<{ items: Req[] }>("GET", "/api/v1/requests?role=incoming", { token: carla.token })).body.items.length, 0);
		// The payer accepts from their account: paid once, a second accept answers the same.
		const brunoBefore = (await call(broker, ledger.accounts.get, { id: bruno.usd })).balance.posted;
		const accepted = await request<Req>("POST", `/api/v1/requests/${first.body.id}/accept`, { token: bruno.token, body: { fromAccountId: bruno.usd } });
		assert.deepEqual([accepted.status, accepted.body.status], [200, "paid"]);
		const twice = await request<Req>("POST", `/api/v1/requests/${first.body.id}/accept`, { token: bruno.token, body: { fromAccountId: bruno.usd } });
		assert.deepEqual([twice.status, twice.body.status], [200, "paid"]);
		assert.equal((await call(broker, ledger.accounts.get, { id: bruno.usd })).balance.posted, brunoBefore - 700);
		const late = await request<ErrorBody>("POST", `/api/v1/requests/${first.body.id}/cancel`, { token: alice.token });
		assert.deepEqual([late.status, late.body.error.code], [409, "ILLEGAL_TRANSITION"]);
	});

	it("asks by verified e-mail; the payer declines one, the requester cancels another; a payer short of money keeps the request pending", async () => {
		const alice = people["alice"] as Person;
		const carla = people["carla"] as Person;
		const email = (await call(broker, users.get, { id: carla.id })).email;
		await call(broker, users.markEmailVerified, { id: carla.id, email });
		const ask = async (key: string, amount: number) => (await request<Req>("POST", "/api/v1/requests", { token: alice.token, headers: { "idempotency-key": key }, body: { toAccountId: alice.usd, amount, currency: "USD", payerEmail: email } })).body;
		const a = await ask("e1", 100);
		assert.equal(a.payer.id, carla.id);
		assert.equal((await request<Req>("POST", `/api/v1/requests/${a.id}/decline`, { token: carla.token })).body.status, "declined");
		const b = await ask("e2", 100);
		assert.equal((await request<Req>("POST", `/api/v1/requests/${b.id}/cancel`, { token: alice.token })).body.status, "cancelled");
		const c = await ask("e3", 10_000_000);
		const short = await request<ErrorBody>("POST", `/api/v1/requests/${c.id}/accept`, { token: carla.token, body: { fromAccountId: carla.usd } });
		assert.equal(short.status, 422);
		assert.ok(["INSUFFICIENT_FUNDS", "LIMIT_EXCEEDED"].includes(short.body.error.code), short.body.error.code);
		const still = await request<Req>("GET", `/api/v1/requests/${c.id}`, { token: carla.token });
		assert.deepEqual([still.body.status, still.body.failureCode], ["pending", short.body.error.code]);
		const foreignAccount = await request<ErrorBody>("POST", `/api/v1/requests/${c.id}/accept`, { token: carla.token, body: { fromAccountId: alice.usd } });
		assert.equal(foreignAccount.status, 404);
	});
});

describe("payees, standing orders and accounts over HTTP", () => {
	const rows = async (table: string) => (await node.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? -1;
	const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);

	it("saves payees once each, refuses bad ones writing nothing, and shows them only to their owner", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		const carla = people["carla"] as Person;
		const before = await rows("schedules.payees");
		for (const body of [{ name: "Bruno" }, { name: "", accountId: bruno.usd }, { name: "x".repeat(101), accountId: bruno.usd }, { name: "B", accountId: bruno.usd, email: "b@example.com" }, { name: "B\u0007", accountId: bruno.usd }, { name: "B", accountId: "nope" }, { name: "B", accountId: bruno.usd, extra: 1 }]) {
			const r = await request<ErrorBody>("POST", "/api/v1/payees", { token: alice.token, body });
			assert.equal(r.status, 400, JSON.stringify(body));
		}
		assert.equal((await request<ErrorBody>("POST", "/api/v1/payees", { token: alice.token, body: { name: "Me", accountId: alice.eur } })).body.error.code, "SAME_ACCOUNT");
		assert.equal((await request("POST", "/api/v1/payees", { token: alice.token, body: { name: "Ghost", accountId: "018f0000-0000-7000-8000-00000000dead" } })).status, 404);
		assert.equal(await rows("schedules.payees"), before);
		const saved = await request<{ id: string; name: string }>("POST", "/api/v1/payees", { token: alice.token, body: { name: "Bruno (flatmate)", accountId: bruno.usd } });
		assert.equal(saved.status, 201);
		const again = await request<{ id: string }>("POST", "/api/v1/payees", { token: alice.token, body: { name: "Bruno again", accountId: bruno.usd } });
		assert.equal(again.body.id, saved.body.id);
		const byEmail = await request<{ id: string; email: string }>("POST", "/api/v1/payees", { token: alice.token, body: { name: "Dan", email: "Dan@Example.com" } });
		assert.deepEqual([byEmail.status, byEmail.body.email], [201, "dan@example.com"]);
		assert.equal((await request<{ items: unknown[] }>("GET", "/api/v1/payees", { token: alice.token })).body.items.length, 2);
		assert.equal((await request<{ items: unknown[] }>("GET", "/api/v1/payees", { token: carla.token })).body.items.length, 0);
		assert.equal((await request<ErrorBody>("DELETE", `/api/v1/payees/${byEmail.body.id}`, { token: carla.token })).status, 404);
		assert.equal((await request("DELETE", `/api/v1/payees/${byEmail.body.id}`, { token: alice.token })).status, 200);
		assert.equal((await request("DELETE", `/api/v1/payees/${byEmail.body.id}`, { token: alice.token })).status, 404);
		// At most 200 saved payees; the same one again still answers.
		await node.sql.query("INSERT INTO schedules.payees (id, owner_id, name, email) SELECT gen_random_uuid(), $1, 'Filler', 'filler' || g || '@example.com' FROM generate_series(1, 199) g", [alice.id]);
		const full = await request<ErrorBody>("POST", "/api/v1/payees", { token: alice.token, body: { name: "One more", email: "more@example.com" } });
		assert.deepEqual([full.status, full.body.error.code], [409, "PAYEE_LIMIT_REACHED"]);
		assert.equal((await request<{ id: string }>("POST", "/api/v1/payees", { token: alice.token, body: { name: "Bruno", accountId: bruno.usd } })).body.id, saved.body.id);
		await node.sql.query("DELETE FROM schedules.payees WHERE name = 'Filler'");
	});

	it("creates a standing order to a payee, replays its key, refuses bad orders writing nothing, and lets only its owner change it", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		const carla = people["carla"] as Person;
		const payee = (await request<{ items: { id: string }[] }>("GET", "/api/v1/payees", { token: alice.token })).body.items[0];
		const base = { fromAccountId: alice.usd, payeeId: payee?.id, amount: 90_000, currency: "USD", frequency: "monthly", dayOfMonth: 1, startDate: tomorrow(), description: "Rent" };
		const before = await rows("schedules.schedules");
		const bad: [Record<string, unknown>, Record<string, string>, number][] = [
			[base, {}, 400],
			[{ ...base, frequency: "yearly" }, { "idempotency-key": "s1" }, 400],
			[{ ...base, dayOfMonth: undefined }, { "idempotency-key": "s2" }, 400],
			[{ ...base, dayOfMonth: 32 }, { "idempotency-key": "s3" }, 400],
			[{ ...base, startDate: "2020-01-01" }, { "idempotency-key": "s4" }, 400],
			[{ ...base, startDate: "2030-02-30" }, { "idempotency-key": "s5" }, 400],
			[{ ...base, endDate: "2000-01-01" }, { "idempotency-key": "s6" }, 400],
			[{ ...base, toAccountId: bruno.usd }, { "idempotency-key": "s7" }, 400],
			[{ ...base, payeeId: undefined }, { "idempotency-key": "s8" }, 400],
			[{ ...base, amount: -5 }, { "idempotency-key": "s9" }, 400],
			[{ ...base, fromAccountId: bruno.usd }, { "idempotency-key": "s10" }, 404],
			[{ ...base, fromAccountId: alice.eur }, { "idempotency-key": "s11" }, 422],
			[{ ...base, payeeId: "018f0000-0000-7000-8000-00000000dead" }, { "idempotency-key": "s12" }, 404],
			[{ ...base, payeeId: undefined, toAccountId: alice.usd }, { "idempotency-key": "s13" }, 422],
		];
		for (const [body, headers, status] of bad) {
			const r = await request<ErrorBody>("POST", "/api/v1/schedules", { token: alice.token, headers, body });
			assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 150)}: ${JSON.stringify(r.body)}`);
		}
		assert.equal(await rows("schedules.schedules"), before);
		const made = await request<{ id: string; payeeName: string; nextDue: string; status: string }>("POST", "/api/v1/schedules", { token: alice.token, headers: { "idempotency-key": "rent" }, body: base });
		assert.equal(made.status, 201, JSON.stringify(made.body));
		assert.deepEqual([made.body.payeeName, made.body.status], ["Bruno (flatmate)", "active"]);
		const replay = await request<{ id: string }>("POST", "/api/v1/schedules", { token: alice.token, headers: { "idempotency-key": "rent" }, body: base });
		assert.deepEqual([replay.status, replay.body.id], [201, made.body.id]);
		assert.equal((await request("POST", "/api/v1/schedules", { token: alice.token, headers: { "idempotency-key": "rent" }, body: { ...base, amount: 1 } })).status, 409);
		for (const [method, path, body] of [["GET", "", undefined], ["PATCH", "", { amount: 5 }], ["POST", "/pause", {}], ["POST", "/resume", {}], ["POST", "/cancel", {}]] as const) {
			const r = await request<ErrorBody>(method, `/api/v1/schedules/${made.body.id}${path}`, { token: carla.token, ...(body ? { body } : {}) });
			assert.deepEqual([r.status, r.body.error.code], [404, "SCHEDULE_NOT_FOUND"], `${method} ${path}`);
		}
		const edited = await request<{ amount: number }>("PATCH", `/api/v1/schedules/${made.body.id}`, { token: alice.token, body: { amount: 95_000 } });
		assert.deepEqual([edited.status, edited.body.amount], [200, 95_000]);
		assert.equal((await request("PATCH", `/api/v1/schedules/${made.body.id}`, { token: alice.token, body: { amount: 0 } })).status, 400);
		assert.equal((await request<{ status: string }>("POST", `/api/v1/schedules/${made.body.id}/pause`, { token: alice.token })).body.status, "paused");
		assert.equal((await request<{ status: string }>("POST", `/api/v1/schedules/${made.body.id}/cancel`, { token: alice.token })).body.status, "cancelled");
		assert.equal((await request("POST", `/api/v1/schedules/${made.body.id}/resume`, { token: alice.token })).status, 409);
		assert.equal((await request<{ items: unknown[] }>("GET", "/api/v1/schedules", { token: alice.token })).body.items.length, 1);
	});

	it("renames an account, and closes it only when empty; a closed account takes no money and stays in the list as closed", async () => {
		const alice = people["alice"] as Person;
		const bruno = people["bruno"] as Person;
		const renamed = await request<{ label: string }>("PATCH", `/api/v1/accounts/${alice.eur}`, { token: alice.token, body: { label: "Holiday euros" } });
		assert.deepEqual([renamed.status, renamed.body.label], [200, "Holiday euros"]);
		assert.equal((await request("PATCH", `/api/v1/accounts/${alice.eur}`, { token: bruno.token, body: { label: "Mine now" } })).status, 404);
		assert.equal((await request("PATCH", `/api/v1/accounts/${alice.eur}`, { token: alice.token, body: { label: "x".repeat(201) } })).status, 400);
		const notEmpty = await request<ErrorBody>("POST", `/api/v1/accounts/${alice.usd}/close`, { token: alice.token });
		assert.deepEqual([notEmpty.status, notEmpty.body.error.code], [422, "ACCOUNT_NOT_EMPTY"]);
		assert.equal((await request("POST", `/api/v1/accounts/${alice.eur}/close`, { token: bruno.token })).status, 404);
		const closed = await request<{ status: string }>("POST", `/api/v1/accounts/${alice.eur}/close`, { token: alice.token });
		assert.deepEqual([closed.status, closed.body.status], [200, "closed"]);
		assert.equal((await request<{ status: string }>("POST", `/api/v1/accounts/${alice.eur}/close`, { token: alice.token })).body.status, "closed");
		const listed = (await request<{ items: { id: string; status: string }[] }>("GET", "/api/v1/accounts", { token: alice.token })).body.items;
		assert.equal(listed.find(a => a.id === alice.eur)?.status, "closed");
		assert.equal((await request<{ status: string }>("GET", `/api/v1/accounts/${alice.eur}`, { token: alice.token })).body.status, "closed");
		const eurSystem = (await call(broker, ledger.accounts.open, { currency: "EUR", kind: "system", code: "external:bank:EUR" })).id;
		await assert.rejects(call(broker, ledger.transfers.create, { idempotencyKey: "into-closed", fromAccountId: eurSystem, toAccountId: alice.eur, amount: 100, currency: "EUR" }), (e: { type?: string }) => e.type === "ACCOUNT_FROZEN");
		// An administrator cannot unfreeze a closed account back into use.
		await assert.rejects(call(broker, ledger.accounts.unfreeze, { id: alice.eur }), (e: { type?: string }) => e.type === "ACCOUNT_NOT_FOUND");
	});
});
