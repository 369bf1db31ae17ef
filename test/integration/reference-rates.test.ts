/**
 * The spending budget's reference rates in the ledger (docs/ledger.md, "One spending
 * budget"): the first write of a day stays, a day without its own rates uses the most
 * recent earlier day's, then the seeded table; implausible or malformed writes are refused
 * whole; a batch converts an owner's spending with the day's rates, rounding up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ServiceBroker } from "moleculer";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { call } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { defaultRates } from "../../services/ledger/reference-rates.ts";

let node: NodeOnDatabase;
let broker: ServiceBroker;

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const code = (c: string) => (e: { type?: string }) => e.type === c;

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

		// Yesterday's rates stand in for today until today's are written.
		assert.equal((await set(yesterday, [{ currency: "KWD", rate: 330e9 }])).written, 1);
		assert.equal((await call(broker, ledger.referenceRates.get, {})).rates["KWD"], 330e9);
		assert.equal((await call(broker, ledger.referenceRates.get, {})).rates["JPY"], Number(seeded.get("JPY")));

		// The first write of a day stays; a second answers what is stored.
		assert.deepEqual(await set(today, [{ currency: "KWD", rate: 340e9 }, { currency: "JPY", rate: 700e9 }]), { base: "USD", day: today, written: 2, rates: { KWD: 340e9, JPY: 700e9 } });
		assert.deepEqual(await set(today, [{ currency: "KWD", rate: 350e9 }]), { base: "USD", day: today, written: 0, rates: { KWD: 340e9 } });
		const got = await call(broker, ledger.referenceRates.get, {});
		assert.deepEqual([got.rates["KWD"], got.rates["JPY"]], [340e9, 700e9]);
		assert.equal((await call(broker, ledger.referenceRates.get, { day: yesterday })).rates["KWD"], 330e9);

		// Refused whole, nothing written: another base, a day out of reach, a currency twice,
		// a rate more than twice the day before's or ten times the seeded one.
		const tomorrow = dayOf(now + DAY_MS);
		await assert.rejects(set(tomorrow, [{ currency: "KWD", rate: 340e9 }], "EUR"), code("VALIDATION_ERROR"));
		await assert.rejects(set(dayOf(now + 2 * DAY_MS), [{ currency: "KWD", rate: 340e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(dayOf(now - 2 * DAY_MS), [{ currency: "KWD", rate: 340e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(tomorrow, [{ currency: "KWD", rate: 340e9 }, { currency: "KWD", rate: 341e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(tomorrow, [{ currency: "EUR", rate: 1e12 }, { currency: "KWD", rate: 169e9 }]), code("VALIDATION_ERROR"));
		await assert.rejects(set(tomorrow, [{ currency: "EUR", rate: 1e10 }]), code("VALIDATION_ERROR"));
		await assert.rejects(call(broker, ledger.referenceRates.set, { base: "USD", day: "2026-02-30", rates: [{ currency: "KWD", rate: 340e9 }] }), code("VALIDATION_ERROR"));
		await assert.rejects(call(broker, ledger.referenceRates.set, { base: "USD", day: today, rates: [{ currency: "KWD", rate: 1.5 }] }), code("VALIDATION_ERROR"));
		const { rows } = await node.sql.query("SELECT count(*)::int AS n FROM ledger.reference_rates WHERE day = $1", [tomorrow]);
		assert.equal(rows[0].n, 0);

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
});
