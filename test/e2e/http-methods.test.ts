/**
 * Saved payment methods over HTTP against one node with every service on a fresh
 * PostgreSQL database: cards and bank accounts saved once (the provider's token, never the
 * number), listed, removed (soft), at most 10; top-ups from a saved card and payouts to a
 * saved bank account; foreign ids 404, bad input 4xx with nothing written, replays. The
 * card number is looked for afterwards in every table of the database and in everything
 * the node logged (at debug level): it is in neither, nor is the token in the clear.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { until } from "../support/wait.ts";
import { seededRandom } from "../../lib/random.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { methods } from "../../contracts/methods.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;
let request: ReturnType<typeof client>;
interface Person { id: string; token: string; usd: string }
const people: Record<string, Person> = {};
/** Everything the node logged (Moleculer's console logger) while the tests ran. */
const logged: string[] = [];
const consoleWas = { log: console.log, warn: console.warn, error: console.error, info: console.info, debug: console.debug };

const PAN = "4242424242424242";
const CVC = "987";
const NEXT_YEAR = new Date().getUTCFullYear() + 1;
const card = (over: Record<string, unknown> = {}) => ({ card: { number: PAN, expMonth: 12, expYear: NEXT_YEAR, cvc: CVC, holderName: "Alice Example", ...over } });
const IBAN = "GB82WEST12345698765432";

type Method = { id: string; kind: string; provider: string; brand: string; last4: string; expMonth: number | null; expYear: number | null; status: string; label: string; removedAt: string | null };
type Payment = { id: string; status: string; failureCode: string | null; destination: string | null; provider: string };
type ErrorBody = { error: { code: string } };

function expectError(r: { status: number; body: unknown }, status: number, code: string): void {
	assert.equal(r.status, status, JSON.stringify(r.body));
	assert.equal((r.body as ErrorBody).error.code, code);
}

/** A card number that passes Luhn, from a seeded body. */
function luhnCard(rnd: () => number): string {
	const body = `4${Array.from({ length: 14 }, () => Math.floor(rnd() * 10)).join("")}`;
	for (let d = 0; d <= 9; d++) {
		const n = `${body}${d}`;
		const sum = [...n].reverse().map(Number).map((v, i) => (i % 2 === 1 ? (v * 2 > 9 ? v * 2 - 9 : v * 2) : v)).reduce((a, b) => a + b, 0);
		if (sum % 10 === 0 && !n.endsWith("0002")) return n;
	}
	return luhnCard(rnd);
}

async function register(name: string): Promise<Person> {
	const email = `${name.toLowerCase()}-${Date.now()}@example.com`;
	const r = await request<{ user: { id: string }; accessToken: string }>("POST", "/api/v1/auth/register", { body: { email, password: "Correct-Horse-9-battery", name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	const token = r.body.accessToken;
	const usd = (await request<{ id: string }>("POST", "/api/v1/accounts", { token, body: { currency: "USD" } })).body.id;
	await node.sql.query("UPDATE users.profiles SET kyc_tier = 2 WHERE user_id = $1", [r.body.user.id]);
	return { id: r.body.user.id, token, usd };
}

async function methodRows(userId: string): Promise<number> {
	return Number((await node.sql.query("SELECT count(*)::int AS n FROM methods.methods WHERE user_id = $1", [userId])).rows[0].n);
}

async function paymentRows(userId: string): Promise<number> {
	return Number((await node.sql.query("SELECT count(*)::int AS n FROM payments.payments WHERE user_id = $1", [userId])).rows[0].n);
}

async function settled(p: Person, id: string): Promise<Payment> {
	let last: Payment | null = null;
	await until(`payment ${id} settled`, async () => {
		last = (await request<Payment>("GET", `/api/v1/payments/${id}`, { token: p.token })).body;
		return last.status !== "processing" && last.status !== "created";
	});
	if (!last) throw new Error("no payment");
	return last;
}

/** Every table of every schema whose rows, as text, contain the needle. */
async function tablesContaining(needle: string): Promise<string[]> {
	const tables = (await node.sql.query<{ s: string; t: string }>("SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')")).rows;
	const found: string[] = [];
	for (const { s, t } of tables) {
		const n = (await node.sql.query(`SELECT count(*)::int AS n FROM "${s}"."${t}" x WHERE strpos(x::text, $1) > 0`, [needle])).rows[0].n;
		if (Number(n) > 0) found.push(`${s}.${t}`);
	}
	return found;
}

before(async () => {
	// The test runner reports through process.stdout; the node's logger prints through console.
	const capture = (...args: unknown[]) => {
		logged.push(args.map(a => (typeof a === "string" ? a : JSON.stringify(a) ?? String(a))).join(" "));
	};
	Object.assign(console, { log: capture, warn: capture, error: capture, info: capture, debug: capture });
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug", EVENT_POLL_INTERVAL_MS: "100" });
	broker = node.broker;
	request = client(`http://127.0.0.1:${gatewayPort(broker)}`);
	people["alice"] = await register("Alice");
	people["bruno"] = await register("Bruno");
	const system = (await call(broker, ledger.accounts.open, { currency: "USD", kind: "system", code: "external:bank:USD" })).id;
	for (const p of Object.values(people)) {
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund-${p.id}`, fromAccountId: system, toAccountId: p.usd, amount: 100_000, currency: "USD", description: "top-up via bank" });
	}
});

after(async () => {
	await node?.stop();
	Object.assign(console, consoleWas);
});

describe("saved payment methods", () => {
	const ids: Record<string, string> = {};

	it("saves a card as the provider's token and a hint; the same card again answers the saved method", async () => {
		const alice = people["alice"] as Person;
		const r = await request<Method>("POST", "/api/v1/payment-methods", { token: alice.token, body: { ...card(), label: "Everyday card" } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		assert.equal(r.headers.get("location"), `/api/v1/payment-methods/${r.body.id}`);
		assert.deepEqual([r.body.kind, r.body.provider, r.body.brand, r.body.last4, r.body.expMonth, r.body.expYear, r.body.status, r.body.label], ["card", "card", "visa", "4242", 12, NEXT_YEAR, "active", "Everyday card"]);
		assert.ok(!JSON.stringify(r.body).includes(PAN) && !("token" in r.body));
		ids["card"] = r.body.id;
		// A replay (also with another label): the same method, 200, nothing added.
		const again = await request<Method>("POST", "/api/v1/payment-methods", { token: alice.token, body: card() });
		assert.equal(again.status, 200, JSON.stringify(again.body));
		assert.equal(again.body.id, r.body.id);
		assert.equal(again.body.label, "Everyday card");
		assert.equal(await methodRows(alice.id), 1);
		const list = await request<{ items: Method[] }>("GET", "/api/v1/payment-methods", { token: alice.token });
		assert.deepEqual(list.body.items.map(m => m.id), [r.body.id]);
		assert.equal((await request<Method>("GET", `/api/v1/payment-methods/${r.body.id}`, { token: alice.token })).body.last4, "4242");
		// Stored sealed: the row holds an sb1 value, which is not the provider's token.
		const stored = (await node.sql.query("SELECT token_sealed FROM methods.methods WHERE id = $1", [r.body.id])).rows[0].token_sealed as string;
		assert.match(stored, /^sb1\./);
		const resolved = await call(broker, methods.resolve, { userId: alice.id, id: r.body.id, use: "topup" });
		assert.match(resolved.token, /^tok:card:c:/);
		assert.deepEqual(await tablesContaining(resolved.token), []);
	});

	it("saves a bank account for payouts", async () => {
		const alice = people["alice"] as Person;
		const r = await request<Method>("POST", "/api/v1/payment-methods", { token: alice.token, body: { bankAccount: { iban: IBAN, holderName: "Alice Example" } } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		assert.deepEqual([r.body.kind, r.body.provider, r.body.last4, r.body.expMonth], ["bank_account", "bank", "5432", null]);
		ids["bank"] = r.body.id;
	});

	it("refuses bad input with 4xx and writes nothing", async () => {
		const alice = people["alice"] as Person;
		const before = await methodRows(alice.id);
		const bad: [unknown, number, string][] = [
			[card({ number: "4242424242424241" }), 400, "VALIDATION_ERROR"],
			[card({ number: "4242 4242 4242 4242" }), 400, "VALIDATION_ERROR"],
			[card({ expMonth: 13 }), 400, "VALIDATION_ERROR"],
			[card({ expMonth: 1, expYear: 2020 }), 422, "CARD_EXPIRED"],
			[card({ number: "4000000000000002" }), 422, "PROVIDER_DECLINED"],
			[card({ cvc: "12" }), 400, "VALIDATION_ERROR"],
			[card({ extra: 1 }), 400, "VALIDATION_ERROR"],
			[{ ...card(), bankAccount: { iban: IBAN, holderName: "A" } }, 400, "VALIDATION_ERROR"],
			[{}, 400, "VALIDATION_ERROR"],
			[{ bankAccount: { iban: "GB83WEST12345698765432", holderName: "A" } }, 400, "VALIDATION_ERROR"],
			[{ bankAccount: { iban: "GB82WEST12345698760000", holderName: "A" } }, 422, "PROVIDER_DECLINED"],
			[{ ...card(), label: "x".repeat(61) }, 400, "VALIDATION_ERROR"],
		];
		for (const [body, status, code] of bad) {
			const r = await request("POST", "/api/v1/payment-methods", { token: alice.token, body });
			expectError(r, status, code);
			// A refusal never echoes the number back.
			assert.ok(!JSON.stringify(r.body).includes("4242424242424241") && !JSON.stringify(r.body).includes("4000000000000002"), JSON.stringify(r.body));
		}
		expectError(await request("GET", "/api/v1/payment-methods/not-a-uuid", { token: alice.token }), 400, "VALIDATION_ERROR");
		expectError(await request("GET", "/api/v1/payment-methods"), 401, "UNAUTHORIZED");
		assert.equal(await methodRows(alice.id), before);
	});

	it("answers another customer's methods with 404, to read, remove or pay with, and writes nothing", async () => {
		const bruno = people["bruno"] as Person;
		const aliceCard = ids["card"] ?? "";
		expectError(await request("GET", `/api/v1/payment-methods/${aliceCard}`, { token: bruno.token }), 404, "PAYMENT_METHOD_NOT_FOUND");
		expectError(await request("DELETE", `/api/v1/payment-methods/${aliceCard}`, { token: bruno.token }), 404, "PAYMENT_METHOD_NOT_FOUND");
		expectError(await request("GET", "/api/v1/payment-methods/01900000-0000-7000-8000-000000000000", { token: bruno.token }), 404, "PAYMENT_METHOD_NOT_FOUND");
		const payments = await paymentRows(bruno.id);
		expectError(await request("POST", "/api/v1/payments/topup", { token: bruno.token, headers: { "idempotency-key": "b-foreign-1" }, body: { accountId: bruno.usd, amount: 1_000, currency: "USD", provider: "card", paymentMethodId: aliceCard } }), 404, "PAYMENT_METHOD_NOT_FOUND");
		expectError(await request("POST", "/api/v1/payments/payout", { token: bruno.token, headers: { "idempotency-key": "b-foreign-2" }, body: { accountId: bruno.usd, amount: 1_000, currency: "USD", provider: "bank", paymentMethodId: ids["bank"] } }), 404, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(await paymentRows(bruno.id), payments);
		assert.equal((await request<Method>("GET", `/api/v1/payment-methods/${aliceCard}`, { token: (people["alice"] as Person).token })).body.status, "active");
	});

	it("tops up from a saved card (the provider gets the token) and replays the same payment", async () => {
		const alice = people["alice"] as Person;
		const body = { accountId: alice.usd, amount: 2_500, currency: "USD", provider: "card", paymentMethodId: ids["card"] };
		const r = await request<Payment>("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": "a-topup-1" }, body });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		const done = await settled(alice, r.body.id);
		assert.equal(done.status, "completed", JSON.stringify(done));
		assert.equal(done.destination, `method:${ids["card"]}`);
		const again = await request<Payment>("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": "a-topup-1" }, body });
		assert.equal(again.body.id, r.body.id);
		expectError(await request("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": "a-topup-1" }, body: { ...body, amount: 2_501 } }), 409, "IDEMPOTENCY_MISMATCH");
		const balance = (await request<{ balance: { posted: number } }>("GET", `/api/v1/accounts/${alice.usd}`, { token: alice.token })).body.balance.posted;
		assert.equal(balance, 102_500);
	});

	it("refuses the wrong kind or provider of method, and a payout with both or neither destination, writing nothing", async () => {
		const alice = people["alice"] as Person;
		const before = await paymentRows(alice.id);
		const topup = (body: Record<string, unknown>, key: string) => request("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": key }, body: { accountId: alice.usd, amount: 1_000, currency: "USD", ...body } });
		const payout = (body: Record<string, unknown>, key: string) => request("POST", "/api/v1/payments/payout", { token: alice.token, headers: { "idempotency-key": key }, body: { accountId: alice.usd, amount: 1_000, currency: "USD", ...body } });
		expectError(await topup({ provider: "bank", paymentMethodId: ids["bank"] }, "a-kind-1"), 422, "PAYMENT_METHOD_UNUSABLE");
		expectError(await topup({ provider: "bank", paymentMethodId: ids["card"] }, "a-kind-2"), 422, "PAYMENT_METHOD_UNUSABLE");
		expectError(await payout({ provider: "card", paymentMethodId: ids["card"] }, "a-kind-3"), 422, "PAYMENT_METHOD_UNUSABLE");
		expectError(await payout({ provider: "bank", paymentMethodId: ids["bank"], destination: "acct-123" }, "a-kind-4"), 400, "VALIDATION_ERROR");
		expectError(await payout({ provider: "bank" }, "a-kind-5"), 400, "VALIDATION_ERROR");
		expectError(await topup({ provider: "card", paymentMethodId: "nope" }, "a-kind-6"), 400, "VALIDATION_ERROR");
		assert.equal(await paymentRows(alice.id), before);
	});

	it("pays out to a saved bank account", async () => {
		const alice = people["alice"] as Person;
		const r = await request<Payment>("POST", "/api/v1/payments/payout", { token: alice.token, headers: { "idempotency-key": "a-payout-1" }, body: { accountId: alice.usd, amount: 500, currency: "USD", provider: "bank", paymentMethodId: ids["bank"] } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		const done = await settled(alice, r.body.id);
		assert.equal(done.status, "completed", JSON.stringify(done));
		const balance = (await request<{ balance: { posted: number } }>("GET", `/api/v1/accounts/${alice.usd}`, { token: alice.token })).body.balance.posted;
		assert.equal(balance, 102_000);
	});

	it("removes a method softly: gone from the list, shown removed, unusable; removing again answers the same; replays of earlier payments still answer", async () => {
		const alice = people["alice"] as Person;
		const id = ids["card"] ?? "";
		const r = await request<Method>("DELETE", `/api/v1/payment-methods/${id}`, { token: alice.token });
		assert.equal(r.status, 200, JSON.stringify(r.body));
		assert.equal(r.body.status, "removed");
		const again = await request<Method>("DELETE", `/api/v1/payment-methods/${id}`, { token: alice.token });
		assert.deepEqual([again.status, again.body.removedAt], [200, r.body.removedAt]);
		assert.deepEqual((await request<{ items: Method[] }>("GET", "/api/v1/payment-methods", { token: alice.token })).body.items.map(m => m.id), [ids["bank"]]);
		assert.equal((await request<Method>("GET", `/api/v1/payment-methods/${id}`, { token: alice.token })).body.status, "removed");
		const before = await paymentRows(alice.id);
		expectError(await request("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": "a-removed-1" }, body: { accountId: alice.usd, amount: 1_000, currency: "USD", provider: "card", paymentMethodId: id } }), 404, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(await paymentRows(alice.id), before);
		// The top-up made with it before answers its replay.
		const replay = await request<Payment>("POST", "/api/v1/payments/topup", { token: alice.token, headers: { "idempotency-key": "a-topup-1" }, body: { accountId: alice.usd, amount: 2_500, currency: "USD", provider: "card", paymentMethodId: id } });
		assert.equal(replay.body.status, "completed", JSON.stringify(replay.body));
		// Saved again, it is a new method (the removed one stays removed).
		const back = await request<Method>("POST", "/api/v1/payment-methods", { token: alice.token, body: card() });
		assert.equal(back.status, 201);
		assert.notEqual(back.body.id, id);
	});

	it("keeps at most 10 methods per customer: the 11th is refused and nothing written", async () => {
		const bruno = people["bruno"] as Person;
		const rnd = seededRandom(1810);
		const numbers = new Set<string>();
		while (numbers.size < 11) numbers.add(luhnCard(rnd));
		const list = [...numbers];
		for (const number of list.slice(0, 10)) {
			const r = await request<Method>("POST", "/api/v1/payment-methods", { token: bruno.token, body: card({ number, holderName: "Bruno" }) });
			assert.equal(r.status, 201, JSON.stringify(r.body));
		}
		expectError(await request("POST", "/api/v1/payment-methods", { token: bruno.token, body: card({ number: list[10], holderName: "Bruno" }) }), 409, "PAYMENT_METHOD_LIMIT_REACHED");
		assert.equal(await methodRows(bruno.id), 10);
		// A card already saved is still answered (a replay is not a new method).
		assert.equal((await request("POST", "/api/v1/payment-methods", { token: bruno.token, body: card({ number: list[0], holderName: "Bruno" }) })).status, 200);
		// Ten at once against a full list: none gets in.
		const burst = await Promise.all(Array.from({ length: 5 }, () => request("POST", "/api/v1/payment-methods", { token: bruno.token, body: card({ number: luhnCard(rnd), holderName: "Bruno" }) })));
		assert.deepEqual(burst.map(r => r.status), [409, 409, 409, 409, 409]);
		assert.equal(await methodRows(bruno.id), 10);
	});

	it("stops a card tester: after 20 instruments sent to the provider in an hour, 429 with Retry-After and nothing written", async () => {
		const mallory = await register("Mallory");
		const rnd = seededRandom(2002);
		/** Luhn-valid numbers ending in 0002: the simulated issuer declines them. */
		const stolen = () => {
			for (;;) {
				const n = `4${Array.from({ length: 11 }, () => Math.floor(rnd() * 10)).join("")}0002`;
				const sum = [...n].reverse().map(Number).map((v, i) => (i % 2 === 1 ? (v * 2 > 9 ? v * 2 - 9 : v * 2) : v)).reduce((a, b) => a + b, 0);
				if (sum % 10 === 0) return n;
			}
		};
		const statuses: number[] = [];
		for (let i = 0; i < 20; i++) statuses.push((await request("POST", "/api/v1/payment-methods", { token: mallory.token, body: card({ number: stolen() }) })).status);
		assert.deepEqual(new Set(statuses), new Set([422]));
		const blocked = await request<ErrorBody>("POST", "/api/v1/payment-methods", { token: mallory.token, body: card({ number: stolen() }) });
		expectError(blocked, 429, "TOO_MANY_ATTEMPTS");
		assert.ok(Number(blocked.headers.get("retry-after")) > 0);
		// A good card too, now: the bound is on what reaches the provider, whatever it answers.
		expectError(await request("POST", "/api/v1/payment-methods", { token: mallory.token, body: card() }), 429, "TOO_MANY_ATTEMPTS");
		assert.equal(await methodRows(mallory.id), 0);
		// Others are not affected.
		assert.equal((await request("GET", "/api/v1/payment-methods", { token: (people["alice"] as Person).token })).status, 200);
	});

	it("never stores or logs the card number or security code", async () => {
		assert.deepEqual(await tablesContaining(PAN), []);
		const all = logged.join("");
		// The node logged at debug level while the tests ran (requests, calls): none of it holds the number.
		assert.ok(all.length > 0, "nothing was logged at debug level");
		for (const secret of [PAN, "4242424242424241", "4000000000000002", `"cvc":"${CVC}"`]) assert.ok(!all.includes(secret), `the log holds ${secret}`);
	});
});
