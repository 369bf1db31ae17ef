/**
 * The spending budget's reference rates in the ledger (docs/ledger.md, "One spending
 * budget"): the first write of a day stays, a day without its own rates uses the most
 * recent earlier day's, then the seeded table; writes for another day than the ledger's
 * today, implausible rates (outside the band around the seeded ones, however many days they
 * walk) and malformed writes are refused whole; a node keeps asking for the day's rates
 * until every currency has them; a batch converts an owner's spending with the day's rates,
 * rounding up, and carries into the day's new budget row what the owner spent that day in
 * rows kept per currency before the one budget (the deploy day).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import pg from "pg";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { until } from "../support/wait.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { defaultRates, toBaseMinor } from "../../services/ledger/reference-rates.ts";
import { BudgetRates, RATES_RETRY_MS } from "../../services/ledger/budget.ts";
import { REFERENCE_RATE_BAND } from "../../config/reference-rates.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const code = (c: string) => (e: { type?: string }) => e.type === c;

/** Sets the ledger's clock (its `now` method) to `ms`; without it, back to the real one. */
function clockAt(ms?: number): void {
	Reflect.set(broker.getLocalService("ledger"), "now", () => new Date(ms ?? Date.now()));
}

before(async () => {
	// The ledger alone: no fx service writes rates behind the test's back.
	node = await startNodeOnDatabase({ SERVICES: "ledger" });
	broker = node.broker;
});

after(() => node?.stop());

describe("reference rates", () => {
	it("falls back to the latest day, keeps a day's first write, refuses what is not believable, and the batch converts with them", async () => {
		const now = Date.now();
		const today = dayOf(now);
		const yesterday = dayOf(now - DAY_MS);
		const seeded = defaultRates("USD");
		const set = (day: string, rates: { currency: "KWD" | "JPY" | "EUR" | "USD"; rate: number }[], base: "USD" | "EUR" = "USD") => call(broker, ledger.referenceRates.set, { base, day, rates });

		// Nothing stored: the seeded table.
		const none = await call(broker, ledger.referenceRates.get, {});
		assert.deepEqual([none.base, none.day, none.rates["KWD"], none.rates["USD"]], ["USD", today, Number(seeded.get("KWD")), 1e12]);

		// Yesterday's rates (written yesterday, by the ledger's clock) stand in for today until today's are written.
		clockAt(now - DAY_MS);
		assert.equal((await set(yesterday, [{ currency: "KWD", rate: 330e9 }])).written, 1);
		clockAt();
		assert.equal((await call(broker, ledger.referenceRates.get, {})).rates["KWD"], 330e9);
		assert.equal((await call(broker, ledger.referenceRates.get, {})).rates["JPY"], Number(seeded.get("JPY")));

		// The first write of a day stays; a second answers what is stored.
		assert.deepEqual(await set(today, [{ currency: "KWD", rate: 340e9 }, { currency: "JPY", rate: 700e9 }]), { base: "USD", day: today, written: 2, rates: { KWD: 340e9, JPY: 700e9 } });
		assert.deepEqual(await set(today, [{ currency: "KWD", rate: 350e9 }]), { base: "USD", day: today, written: 0, rates: { KWD: 340e9 } });
		const got = await call(broker, ledger.referenceRates.get, {});
		assert.deepEqual([got.rates["KWD"], got.rates["JPY"]], [340e9, 700e9]);
		assert.equal((await call(broker, ledger.referenceRates.get, { day: yesterday })).rates["KWD"], 330e9);

		// Refused whole, nothing written: another base, any day but today (tomorrow, yesterday,
		// further out), a currency twice, a rate more than twice or less than half the seeded
		// one (KWD's is 325.2e9: 160e9 is under half of it, though not of today's 340e9).
		const tomorrow = dayOf(now + DAY_MS);
		await assert.rejects(set(today, [{ currency: "KWD", rate: 340e9 }], "EUR"), code("VALIDATION_ERROR"));
		await assert.rejects(set(tomorrow, [{ currency: "KWD", rate: 340e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(yesterday, [{ currency: "EUR", rate: 1e12 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(dayOf(now + 2 * DAY_MS), [{ currency: "KWD", rate: 340e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(dayOf(now - 2 * DAY_MS), [{ currency: "KWD", rate: 340e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(today, [{ currency: "EUR", rate: 1e12 }, { currency: "EUR", rate: 1.01e12 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(today, [{ currency: "EUR", rate: 1e12 }, { currency: "KWD", rate: 160e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(today, [{ currency: "EUR", rate: 1e10 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(today, [{ currency: "EUR", rate: 3e12 }]), code("VALIDATION_ERROR"));
		await assert.rejects(call(broker, ledger.referenceRates.set, { base: "USD", day: "2026-02-30", rates: [{ currency: "KWD", rate: 340e9 }] }), code("VALIDATION_ERROR"));
		await assert.rejects(call(broker, ledger.referenceRates.set, { base: "USD", day: today, rates: [{ currency: "KWD", rate: 1.5 }] }), code("VALIDATION_ERROR"));
		const { rows } = await node.sql.query("SELECT day::text AS day, currency FROM ledger.reference_rates ORDER BY day, currency");
		assert.deepEqual(rows.map(r => [r.day, r.currency]), [[yesterday, "KWD"], [today, "JPY"], [today, "KWD"]]);

		// The batch charges the owner's one USD row at today's rate, rounded up: 1,001 fils at 0.34 cents = 340.34 -> 341 cents.
		const owner = "rates-owner";
		const kwd = await call(broker, ledger.accounts.open, { currency: "KWD", ownerId: owner });
		const other = await call(broker, ledger.accounts.open, { currency: "KWD", ownerId: "someone-else" });
		const sys = await call(broker, ledger.accounts.open, { kind: "system", code: "external:rates:KWD", currency: "KWD" });
		await call(broker, ledger.transfers.create, { idempotencyKey: "rates-fund", fromAccountId: sys.id, toAccountId: kwd.id, amount: 10_000, currency: "KWD" });
		const limits = { perTransferMinor: 1_000, perDayMinor: 1_000 };
		await call(broker, ledger.transfers.create, { idempotencyKey: "rates-1", fromAccountId: kwd.id, toAccountId: other.id, amount: 1_001, currency: "KWD", ownerId: owner, limits });
		const usage = await node.sql.query("SELECT currency, used::int8::text AS used FROM ledger.daily_usage WHERE owner_id = $1", [owner]);
		assert.deepEqual(usage.rows, [{ currency: "USD", used: "341" }]);
		// 1,940 fils more would be 659.6 -> 660 cents: over the 1,000 left... by one cent.
		await assert.rejects(
			call(broker, ledger.transfers.create, { idempotencyKey: "rates-2", fromAccountId: kwd.id, toAccountId: other.id, amount: 1_940, currency: "KWD", ownerId: owner, limits }),
			(e: { type?: string; data?: Record<string, unknown> }) => e.type === "LIMIT_EXCEEDED" && e.data?.["usedMinor"] === "341" && e.data?.["amountMinor"] === "660" && e.data?.["limitCurrency"] === "USD",
		);
		await call(broker, ledger.transfers.create, { idempotencyKey: "rates-3", fromAccountId: kwd.id, toAccountId: other.id, amount: 1_938, currency: "KWD", ownerId: owner, limits });
		assert.deepEqual((await node.sql.query("SELECT used::int8::text AS used FROM ledger.daily_usage WHERE owner_id = $1", [owner])).rows, [{ used: "1000" }]);
	});
	it("keeps every rate within the band around the seeded one, however many days a caller walks it", async () => {
		const seeded = defaultRates("USD");
		const kwdSeeded = seeded.get("KWD") ?? 0n;
		const jpySeeded = seeded.get("JPY") ?? 0n;
		// Days of the ledger's own clock, well after the other tests' days.
		const start = Date.now() + 100 * DAY_MS;
		let kwd = kwdSeeded;
		let jpy = jpySeeded;
		const refused: string[] = [];
		for (let i = 0; i < 6; i++) {
			const at = start + i * DAY_MS;
			clockAt(at);
			// Each day 1.9 times the day before (KWD up, JPY down): every step is within a factor of 2 of the last one.
			const rates = [{ currency: "KWD" as const, rate: Number((kwd * 19n) / 10n) }, { currency: "JPY" as const, rate: Number((jpy * 10n) / 19n) }];
			try {
				const out = await call(broker, ledger.referenceRates.set, { base: "USD", day: dayOf(at), rates });
				kwd = BigInt(out.rates["KWD"] ?? 0);
				jpy = BigInt(out.rates["JPY"] ?? 0);
			} catch (err) {
				assert.equal((err as { type?: string }).type, "VALIDATION_ERROR");
				refused.push(dayOf(at));
			}
		}
		clockAt();
		// The first step is taken, every later one would leave the band and is refused.
		assert.deepEqual(refused, [1, 2, 3, 4, 5].map(i => dayOf(start + i * DAY_MS)));
		const { rows } = await node.sql.query<{ currency: string; rate: string }>("SELECT currency, rate::text AS rate FROM ledger.reference_rates WHERE day >= $1::date ORDER BY day, currency", [dayOf(start)]);
		assert.deepEqual(rows.map(r => [r.currency, BigInt(r.rate)]), [["JPY", (jpySeeded * 10n) / 19n], ["KWD", (kwdSeeded * 19n) / 10n]]);
		for (const r of rows) {
			const reference = seeded.get(r.currency) ?? 0n;
			assert.ok(BigInt(r.rate) <= reference * REFERENCE_RATE_BAND && BigInt(r.rate) * REFERENCE_RATE_BAND >= reference, `${r.currency} ${r.rate} left the band around ${reference}`);
		}
	});

	it("asks again for the day's rates until every currency has them, the earlier day's standing in for the missing ones", async () => {
		const knex = Reflect.get(broker.getLocalService("ledger"), "knex") as Knex;
		const seeded = defaultRates("USD");
		const at = Date.now() + 300 * DAY_MS;
		const day = dayOf(at);
		const put = (d: string, rates: [string, number][]) =>
			node.sql.query("INSERT INTO ledger.reference_rates (base, currency, day, rate) SELECT 'USD', c, $1::date, r FROM unnest($2::text[], $3::int8[]) AS v(c, r)", [d, rates.map(r => r[0]), rates.map(r => r[1])]);
		await put(dayOf(at - DAY_MS), [["KWD", 330e9], ["JPY", 660e9], ["GBP", 1.27e12]]);
		// Only part of the day's rates so far (say, one write of a day that comes in two).
		await put(day, [["GBP", 1.26e12]]);
		const rates = new BudgetRates("USD");
		const pick = (b: { rates: ReadonlyMap<string, bigint> }) => ["GBP", "KWD", "JPY", "CHF", "EUR"].map(c => b.rates.get(c));
		assert.deepEqual(pick(await rates.budgetAt(knex, new Date(at))), [1_260_000_000_000n, 330_000_000_000n, 660_000_000_000n, seeded.get("CHF"), seeded.get("EUR")]);
		// The rest of the day's rates, written through another node (this node's cache is not told):
		// the node has not got the day's rates of every currency, so it asks again after RATES_RETRY_MS.
		await put(day, [["KWD", 331e9], ["JPY", 661e9]]);
		assert.deepEqual(pick(await rates.budgetAt(knex, new Date(at + RATES_RETRY_MS))), [1_260_000_000_000n, 331_000_000_000n, 661_000_000_000n, seeded.get("CHF"), seeded.get("EUR")]);
		// Now it has them all, and keeps them for the rest of the day without asking.
		await put(day, [["EUR", 1.08e12]]);
		assert.deepEqual(pick(await rates.budgetAt(knex, new Date(at + 3 * RATES_RETRY_MS))), [1_260_000_000_000n, 331_000_000_000n, 661_000_000_000n, seeded.get("CHF"), seeded.get("EUR")]);
	});
	it("carries the day's spending kept per currency before the one budget into the owner's new budget row, once", async () => {
		const owner = "carried-owner";
		const today = dayOf(Date.now());
		// What the code before the one budget kept this morning: a row per currency spent, in its minor units.
		await node.sql.query("INSERT INTO ledger.daily_usage (owner_id, day, currency, used) VALUES ($1, $2, 'KWD', 500), ($1, $2, 'EUR', 1000)", [owner, today]);
		const got = await call(broker, ledger.referenceRates.get, {});
		const rate = (c: string) => BigInt(got.rates[c] ?? 0);
		const carried = toBaseMinor(500n, rate("KWD")) + toBaseMinor(1_000n, rate("EUR"));
		const kwd = await call(broker, ledger.accounts.open, { currency: "KWD", ownerId: owner });
		const other = await call(broker, ledger.accounts.open, { currency: "KWD", ownerId: "someone-else" });
		const sys = await call(broker, ledger.accounts.open, { kind: "system", code: "external:carried:KWD", currency: "KWD" });
		await call(broker, ledger.transfers.create, { idempotencyKey: "carried-fund", fromAccountId: sys.id, toAccountId: kwd.id, amount: 10_000, currency: "KWD" });
		// Room for 200 cents more today: 1,000 fils (over 300 cents) is refused, the spending so far counted.
		const limits = { perTransferMinor: 100_000, perDayMinor: Number(carried) + 200 };
		await assert.rejects(
			call(broker, ledger.transfers.create, { idempotencyKey: "carried-1", fromAccountId: kwd.id, toAccountId: other.id, amount: 1_000, currency: "KWD", ownerId: owner, limits }),
			(e: { type?: string; data?: Record<string, unknown> }) => e.type === "LIMIT_EXCEEDED" && e.data?.["usedMinor"] === String(carried),
		);
		// The refused batch still kept what it carried; the next one adds to it and does not carry it again.
		const usage = async () => (await node.sql.query("SELECT currency, used::int8::text AS used FROM ledger.daily_usage WHERE owner_id = $1 ORDER BY currency", [owner])).rows;
		assert.deepEqual(await usage(), [{ currency: "EUR", used: "1000" }, { currency: "KWD", used: "500" }, { currency: "USD", used: String(carried) }]);
		await call(broker, ledger.transfers.create, { idempotencyKey: "carried-2", fromAccountId: kwd.id, toAccountId: other.id, amount: 400, currency: "KWD", ownerId: owner, limits });
		assert.deepEqual(await usage(), [{ currency: "EUR", used: "1000" }, { currency: "KWD", used: "500" }, { currency: "USD", used: String(carried + toBaseMinor(400n, rate("KWD"))) }]);
	});

	it("answers the stored rate of a currency another writer committed while the write waited on it (the first write of the day stays)", async () => {
		const day = dayOf(Date.now());
		await node.sql.query("DELETE FROM ledger.reference_rates WHERE day = $1::date", [day]);
		// Another writer (the fx service on another node) has written EUR and not committed yet.
		const other = new pg.Client({ connectionString: node.db.url });
		await other.connect();
		try {
			await other.query("BEGIN");
			await other.query("INSERT INTO ledger.reference_rates (base, currency, day, rate) VALUES ('USD', 'EUR', $1::date, 1100000000000)", [day]);
			const writing = call(broker, ledger.referenceRates.set, { base: "USD", day, rates: [{ currency: "EUR", rate: 1.05e12 }, { currency: "USD", rate: 1e12 }] });
			// The write waits on the EUR row until the other writer commits.
			await until("the write waits on the other writer's row", async () => (await node.sql.query("SELECT 1 FROM pg_locks WHERE NOT granted")).rowCount !== 0);
			await other.query("COMMIT");
			const out = await writing;
			assert.deepEqual([out.written, out.rates["EUR"], out.rates["USD"]], [1, 1.1e12, 1e12], "EUR as the other writer stored it, USD as this one");
		} finally {
			await other.end();
		}
	});
});
