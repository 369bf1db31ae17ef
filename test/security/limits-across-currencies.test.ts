/**
 * Issue 16, finding 7: limits multiplied across currencies. Tier limits were per currency
 * in major units with no conversion, so a tier-1 customer (5,000 a day) could move 5,000
 * KWD and 5,000 BHD and 5,000 GBP in one day (about 35,000 USD), and FX conversions carried
 * no limits at all. Now every customer has one budget a day in the base currency (USD):
 * each outgoing amount is converted at the day's reference rate, rounded up, and a
 * conversion through fx spends the same budget.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { startNode } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { defaultRates, RATE_UNIT, toBaseMinor } from "../../services/ledger/reference-rates.ts";
import type { CurrencyCode } from "../../config/currencies.ts";

let db: TestDatabase;
let broker: ServiceBroker;
let http: ReturnType<typeof client>;
/** The day's reference rates as the ledger stored them (ours, or the fx service's if it wrote first). */
let rates: Map<string, bigint>;

type Session = { user: { id: string }; accessToken: string };
type Refusal = { error: { code: string; details?: { limit?: string; limitMinor?: string; usedMinor?: string; limitCurrency?: string; amountMinor?: string } } };

async function register(name: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email: `${name}-${Math.random().toString(16).slice(2)}@example.com`, password: "Correct-Horse-Battery-9", name } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

async function openFunded(s: Session, currency: CurrencyCode, amount: number): Promise<string> {
	const r = await http<{ id: string }>("POST", "/api/v1/accounts", { token: s.accessToken, body: { currency } });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	if (amount > 0) {
		const sys = await call(broker, ledger.accounts.open, { kind: "system", code: `external:test:${currency}`, currency });
		await call(broker, ledger.transfers.create, { idempotencyKey: `fund:${r.body.id}`, fromAccountId: sys.id, toAccountId: r.body.id, amount, currency });
	}
	return r.body.id;
}

let seq = 0;
function pay(s: Session, fromAccountId: string, toAccountId: string, amount: number, currency: CurrencyCode) {
	return http<Refusal & { status: string }>("POST", "/api/v1/transfers", { token: s.accessToken, body: { fromAccountId, toAccountId, amount, currency }, headers: { "idempotency-key": `p-${++seq}` } });
}

before(async () => {
	db = await createTestDatabase();
	({ broker } = await startNode({ DATABASE_URL: db.url, PORT: "0", HOST: "127.0.0.1" }));
	http = client(`http://127.0.0.1:${gatewayPort(broker)}`);
	// Fix today's rates (the first write of a day stays): the answer is what every batch of today converts with.
	const day = new Date().toISOString().slice(0, 10);
	const seeded = defaultRates("USD");
	const set = await call(broker, ledger.referenceRates.set, { base: "USD", day, rates: ["KWD", "BHD", "GBP", "EUR", "USD"].map(c => ({ currency: c as CurrencyCode, rate: Number(seeded.get(c)) })) });
	rates = new Map(Object.entries(set.rates).map(([c, r]) => [c, BigInt(r)]));
	assert.equal(rates.get("USD"), RATE_UNIT);
});

after(async () => {
	await broker?.stop();
	await db?.drop();
});

describe("finding 7: one spending budget per customer, in USD", () => {
	it("refuses a tier-1 customer moving 5,000 KWD + 5,000 BHD + 5,000 GBP in a day once 5,000 USD are spent", async () => {
		const alice = await register("alice");
		const bob = await register("bob");
		// Each payment fits the 1,000 per-transfer limit both ways: 250 KWD = 813 USD, 250 BHD = 665 USD, 500 GBP = 633 USD.
		const plan: { currency: CurrencyCode; chunk: number; count: number }[] = [
			{ currency: "KWD", chunk: 250_000, count: 20 },
			{ currency: "BHD", chunk: 250_000, count: 20 },
			{ currency: "GBP", chunk: 50_000, count: 10 },
		];
		let chargedUsd = 0n;
		let approved = 0;
		const refusals: Refusal["error"][] = [];
		for (const { currency, chunk, count } of plan) {
			const from = await openFunded(alice, currency, chunk * count);
			const to = await openFunded(bob, currency, 0);
			for (let i = 0; i < count; i++) {
				const r = await pay(alice, from, to, chunk, currency);
				if (r.status === 201) {
					assert.equal(r.body.status, "completed", JSON.stringify(r.body));
					approved++;
					chargedUsd += toBaseMinor(BigInt(chunk), rates.get(currency) ?? 0n);
				} else {
					assert.equal(r.status, 422, JSON.stringify(r.body));
					refusals.push(r.body.error);
				}
			}
		}
		// Before: all 50 went through (5,000 of each currency, about 35,000 USD in one day).
		assert.ok(refusals.length > 0, `all ${approved} payments went through: ${chargedUsd} US cents in one day on a 5,000 USD budget`);
		assert.ok(chargedUsd <= 500_000n, `spent ${chargedUsd} US cents`);
		for (const e of refusals) {
			assert.equal(e.code, "LIMIT_EXCEEDED");
			assert.deepEqual([e.details?.limit, e.details?.limitCurrency, e.details?.limitMinor], ["per_day", "USD", "500000"]);
			// The refusal says why in USD: what was used today and what this one would have cost.
			assert.ok(BigInt(e.details?.usedMinor ?? "0") + BigInt(e.details?.amountMinor ?? "0") > 500_000n, JSON.stringify(e));
		}
		// The last ones were refused after every approval: the day's usage is what the approved payments cost in USD.
		assert.equal(BigInt(refusals.at(-1)?.details?.usedMinor ?? "0"), chargedUsd);
		// The budget was spent nearly to the end: the last 500 GBP (633 USD) no longer fit.
		assert.ok(chargedUsd > 500_000n - 63_292n, `spent only ${chargedUsd}`);
	});

	it("counts a conversion through fx against the same budget, and refuses one past it", async () => {
		const carol = await register("carol");
		const dave = await register("dave");
		const usd = await openFunded(carol, "USD", 1_000_000);
		const eur = await openFunded(carol, "EUR", 0);
		const daveUsd = await openFunded(dave, "USD", 0);
		const convert = async (amount: number) => {
			const q = await http<{ id: string }>("POST", "/api/v1/fx/quote", { token: carol.accessToken, body: { from: "USD", to: "EUR", amount } });
			assert.equal(q.status, 201, JSON.stringify(q.body));
			return http<Refusal>("POST", "/api/v1/fx/convert", { token: carol.accessToken, body: { quoteId: q.body.id, fromAccountId: usd, toAccountId: eur }, headers: { "idempotency-key": `fx-${++seq}` } });
		};
		// A conversion is held to the per-transfer limit like a payment.
		const tooBig = await convert(100_001);
		assert.equal(tooBig.status, 422, JSON.stringify(tooBig.body));
		assert.deepEqual([tooBig.body.error.code, tooBig.body.error.details?.limit, tooBig.body.error.details?.limitCurrency], ["LIMIT_EXCEEDED", "per_transfer", "USD"]);
		for (let i = 0; i < 5; i++) assert.equal((await convert(90_000)).status, 201);
		// 4,500 USD converted: 500 USD of the budget are left for payments, and 600 do not fit.
		const over = await pay(carol, usd, daveUsd, 60_000, "USD");
		assert.equal(over.status, 422, JSON.stringify(over.body));
		assert.deepEqual([over.body.error.code, over.body.error.details?.usedMinor, over.body.error.details?.limitCurrency], ["LIMIT_EXCEEDED", "450000", "USD"]);
		assert.equal((await pay(carol, usd, daveUsd, 50_000, "USD")).status, 201);
		// Spent: a further conversion is refused, and nothing moved for it.
		const after = await convert(100);
		assert.equal(after.status, 422, JSON.stringify(after.body));
		assert.deepEqual([after.body.error.code, after.body.error.details?.usedMinor], ["LIMIT_EXCEEDED", "500000"]);
		const balance = await call(broker, ledger.accounts.get, { id: usd });
		assert.equal(balance.balance.posted, 1_000_000 - 5 * 90_000 - 50_000);
	});
});
