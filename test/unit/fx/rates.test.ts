import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BASE_RATES_PER_USD, convertMinor, crossRate, nextRates, RATE_BAND_BPS, RATE_SCALE, rateToString, stepBpsFor, withSpread } from "../../../services/fx/rates.ts";
import type { CurrencyCode } from "../../../config/currencies.ts";
import { seededRandom } from "../../../lib/random.ts";

const rates = new Map<string, bigint>([["USD", 1_000_000n], ["EUR", 920_000n], ["JPY", 150_200_000n], ["KWD", 307_500n]]);

describe("fx arithmetic", () => {
	it("crosses rates through USD", () => {
		assert.equal(crossRate(rates, "USD", "EUR"), 920_000n);
		assert.equal(rateToString(crossRate(rates, "EUR", "USD")), "1.086956");
		assert.throws(() => crossRate(rates, "USD", "GBP"));
	});

	it("applies the spread against the customer", () => {
		assert.equal(withSpread(RATE_SCALE, 50), 995_000n);
		assert.equal(withSpread(920_000n, 0), 920_000n);
	});

	it("converts minor units across exponents, rounding down", () => {
		// 100.00 USD -> 92.00 EUR
		assert.equal(convertMinor(10_000n, 920_000n, "USD", "EUR"), 9_200n);
		// 1.00 USD -> 150 JPY (exponent 2 -> 0), 0.01 USD -> 1 JPY (1.502 rounded down)
		assert.equal(convertMinor(100n, 150_200_000n, "USD", "JPY"), 150n);
		assert.equal(convertMinor(1n, 150_200_000n, "USD", "JPY"), 1n);
		// 1 JPY -> 0.00 USD: too small to give anything
		assert.equal(convertMinor(1n, crossRate(rates, "JPY", "USD"), "JPY", "USD"), 0n);
		// 100.00 USD -> 30.750 KWD (exponent 2 -> 3)
		assert.equal(convertMinor(10_000n, 307_500n, "USD", "KWD"), 30_750n);
	});
});

describe("rates that leave no free option (issue 16 finding 15)", () => {
	it("keeps each step within the band and the step, from one snapshot for every currency", () => {
		const rnd = seededRandom(15);
		let rates = nextRates(new Map(), 10, rnd);
		for (let i = 0; i < 2_000; i++) {
			const next = nextRates(rates, 10, rnd);
			assert.equal(next.size, rates.size);
			assert.equal(next.get("USD"), RATE_SCALE);
			for (const [c, r] of next) {
				const prev = rates.get(c) ?? r;
				const base = BigInt(Math.round((BASE_RATES_PER_USD[c as keyof typeof BASE_RATES_PER_USD] ?? 1) * Number(RATE_SCALE)));
				assert.ok((r > prev ? r - prev : prev - r) * 10_000n <= prev * 10n + 10_000n, `${c} moved too far`);
				assert.ok((r > base ? r - base : base - r) * 10_000n <= base * BigInt(RATE_BAND_BPS) + 10_000n, `${c} left its band`);
			}
			rates = next;
		}
	});

	it("shows the free option the old redraw gave: two legs redrawn 50 bp each way beat a 50 bp spread's round trip", () => {
		const base = (c: string) => BigInt(Math.round((BASE_RATES_PER_USD[c as keyof typeof BASE_RATES_PER_USD] ?? 1) * Number(RATE_SCALE)));
		const at = (eur: number, gbp: number) => new Map([["USD", RATE_SCALE], ["EUR", (base("EUR") * BigInt(10_000 + eur)) / 10_000n], ["GBP", (base("GBP") * BigInt(10_000 + gbp)) / 10_000n]]);
		const roundTrip = (first: Map<string, bigint>, last: Map<string, bigint>) =>
			convertMinor(convertMinor(1_000_000_000n, withSpread(crossRate(first, "EUR", "GBP"), 50), "EUR", "GBP"), withSpread(crossRate(last, "GBP", "EUR"), 50), "GBP", "EUR");
		assert.ok(roundTrip(at(-50, 50), at(50, -50)) > 1_000_000_000n, "the old redraw let a round trip gain");
		// Today's step for the defaults (50 bp spread, 30 s quotes, a refresh a minute) allows no gain, even straight in one direction.
		const step = stepBpsFor(50, 30_000, 60_000);
		assert.ok(step > 0 && roundTrip(at(0, 0), at(step, -step)) <= 1_000_000_000n, `step ${step}`);
	});

	it("never lets a round trip within a quote's life come back with more than it left with, over seeded settings and pairs", () => {
		const rnd = seededRandom(1515);
		const currencies = Object.keys(BASE_RATES_PER_USD) as CurrencyCode[];
		for (let run = 0; run < 200; run++) {
			const spreadBps = 1 + Math.floor(rnd() * 100);
			const ttlMs = 1_000 * (1 + Math.floor(rnd() * 120));
			const refreshMs = 1_000 * (1 + Math.floor(rnd() * 60));
			const step = stepBpsFor(spreadBps, ttlMs, refreshMs);
			const refreshes = Math.ceil(ttlMs / refreshMs);
			// Snapshots pushed to the band's edge and back: the worst walks are the straight ones.
			const snapshots = [nextRates(new Map(), step, rnd)];
			const direction = rnd() < 0.5 ? () => 1 : () => 0;
			for (let i = 0; i < refreshes; i++) snapshots.push(nextRates(snapshots[i] as Map<string, bigint>, step, i % 2 === 0 ? direction : rnd));
			for (let k = 0; k < 20; k++) {
				const a = currencies[Math.floor(rnd() * currencies.length)] as CurrencyCode;
				let b = currencies[Math.floor(rnd() * currencies.length)] as CurrencyCode;
				if (a === b) b = a === "USD" ? "EUR" : "USD";
				const first = snapshots[0] as Map<string, bigint>;
				const last = snapshots[snapshots.length - 1] as Map<string, bigint>;
				const amount = 1_000_000_000n;
				const there = convertMinor(amount, withSpread(crossRate(first, a, b), spreadBps), a, b);
				const back = convertMinor(there, withSpread(crossRate(last, b, a), spreadBps), b, a);
				assert.ok(back <= amount, `${a}->${b}->${a} with spread ${spreadBps} bp, step ${step} bp over ${refreshes} refreshes: ${amount} became ${back}`);
			}
		}
	});
});
