/**
 * The spending budget's conversion (services/ledger/reference-rates.ts): integer rates of
 * base minor units per 10^12 source minor units, amounts rounded up (never in the
 * customer's favour), every ISO 4217 exponent (0: JPY, 2: USD, 3: KWD).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CURRENCY_CODES, CURRENCY_EXPONENTS, type CurrencyCode } from "../../../config/currencies.ts";
import { DEFAULT_UNITS_PER_USD } from "../../../config/reference-rates.ts";
import { BASE_RATES_PER_USD } from "../../../services/fx/rates.ts";
import { defaultRates, parseMicro, RATE_MAX, RATE_UNIT, rateFromMicroPerUsd, rateMoveProblem, ratesOver, toBaseMinor } from "../../../services/ledger/reference-rates.ts";
import { seededRandom } from "../../../lib/random.ts";

const USD = parseMicro("1");

describe("reference rates: making a rate", () => {
	it("puts both exponents into the rate: KWD (3), JPY (0), GBP (2), XOF (0) in USD (2)", () => {
		// 1 KWD = 1 / 0.3075 USD = 3.2520... USD: 10^12 fils are 10^9 KWD = 325,203,252,032.5... cents, rounded up.
		assert.equal(rateFromMicroPerUsd("KWD", parseMicro("0.3075"), "USD", USD), 325_203_252_033n);
		// 1 JPY = 1 / 150.2 USD: 10^12 yen = 665,778,961,384.8... cents.
		assert.equal(rateFromMicroPerUsd("JPY", parseMicro("150.2"), "USD", USD), 665_778_961_385n);
		// 1 GBP = 1 / 0.79 USD; pence to cents.
		assert.equal(rateFromMicroPerUsd("GBP", parseMicro("0.79"), "USD", USD), 1_265_822_784_811n);
		assert.equal(rateFromMicroPerUsd("XOF", parseMicro("604"), "USD", USD), 165_562_913_908n);
		assert.equal(rateFromMicroPerUsd("USD", USD, "USD", USD), RATE_UNIT);
	});

	it("works in a base currency of any exponent (JPY 0, KWD 3)", () => {
		const jpy = parseMicro("150.2");
		// 1 USD = 150.2 JPY: 10^12 cents = 10^10 USD = 1.502 * 10^12 yen.
		assert.equal(rateFromMicroPerUsd("USD", USD, "JPY", jpy), 1_502_000_000_000n);
		const kwd = parseMicro("0.3075");
		// 1 USD = 0.3075 KWD = 307.5 fils: 10^12 cents = 3.075 * 10^12 fils.
		assert.equal(rateFromMicroPerUsd("USD", USD, "KWD", kwd), 3_075_000_000_000n);
		assert.equal(rateFromMicroPerUsd("KWD", kwd, "KWD", kwd), RATE_UNIT);
	});

	it("reads the seeded table without floats and refuses anything but plain decimals", () => {
		assert.equal(parseMicro("0.3075"), 307_500n);
		assert.equal(parseMicro("89500"), 89_500_000_000n);
		for (const bad of ["", "1e3", "-1", "1.1234567", "0x10", " 1", "1,5"]) assert.throws(() => parseMicro(bad), RangeError, bad);
		assert.throws(() => rateFromMicroPerUsd("EUR", 0n, "USD", USD), RangeError);
	});

	it("has a positive, safe-integer default for every currency, in any base", () => {
		for (const base of ["USD", "JPY", "KWD", "EUR"] as const) {
			const rates = defaultRates(base);
			assert.equal(rates.size, CURRENCY_CODES.length);
			for (const c of CURRENCY_CODES) {
				const r = rates.get(c);
				assert.ok(r !== undefined && r > 0n && r <= RATE_MAX, `${c} in ${base}: ${r}`);
			}
			assert.equal(rates.get(base), RATE_UNIT);
		}
	});

	it("seeds the currencies the fx service quotes at its own base rates", () => {
		for (const [c, units] of Object.entries(BASE_RATES_PER_USD)) {
			assert.equal(parseMicro(DEFAULT_UNITS_PER_USD[c as CurrencyCode]), BigInt(Math.round((units ?? 0) * 1_000_000)), c);
		}
	});

	it("refuses a rate more than the factor away from the one before, either way", () => {
		assert.equal(rateMoveProblem("KWD", 200n, 100n, 2n), null);
		assert.equal(rateMoveProblem("KWD", 50n, 100n, 2n), null);
		assert.match(rateMoveProblem("KWD", 201n, 100n, 2n) ?? "", /KWD/);
		assert.match(rateMoveProblem("KWD", 49n, 100n, 2n) ?? "", /more than 2 times/);
	});

	it("lays stored rates over the defaults, ignoring none that are positive", () => {
		const defaults = defaultRates("USD");
		const over = ratesOver(defaults, [["KWD", 400_000_000_000n], ["JPY", 0n]]);
		assert.equal(over.get("KWD"), 400_000_000_000n);
		assert.equal(over.get("JPY"), defaults.get("JPY"));
		assert.equal(over.size, defaults.size);
	});
});

describe("reference rates: converting an amount", () => {
	it("rounds up, so one minor unit of anything costs at least one base minor unit", () => {
		const usd = defaultRates("USD");
		for (const c of CURRENCY_CODES) assert.equal(toBaseMinor(1n, usd.get(c) ?? 0n) >= 1n, true, c);
		// 1 fils = 0.325... cents: one cent. 5,000 KWD = 16,260.162... USD: 1,626,017 cents.
		assert.equal(toBaseMinor(1n, usd.get("KWD") ?? 0n), 1n);
		assert.equal(toBaseMinor(5_000_000n, usd.get("KWD") ?? 0n), 1_626_017n);
		// 5,000 JPY = 33.288... USD: 3,329 cents. 5,000 GBP = 6,329.11... USD: 632,912 cents.
		assert.equal(toBaseMinor(5_000n, usd.get("JPY") ?? 0n), 3_329n);
		assert.equal(toBaseMinor(500_000n, usd.get("GBP") ?? 0n), 632_912n);
		assert.equal(toBaseMinor(123_456n, RATE_UNIT), 123_456n);
		assert.equal(toBaseMinor(0n, usd.get("KWD") ?? 0n), 0n);
	});

	it("never comes out below the exact value, and less than one base minor unit above it (seeded)", () => {
		const rnd = seededRandom(716);
		const usd = defaultRates("USD");
		const jpy = defaultRates("JPY");
		const kwd = defaultRates("KWD");
		for (let i = 0; i < 5_000; i++) {
			const c = CURRENCY_CODES[Math.floor(rnd() * CURRENCY_CODES.length)] ?? "USD";
			const amount = BigInt(Math.floor(rnd() * Number.MAX_SAFE_INTEGER)) + 1n;
			for (const table of [usd, jpy, kwd]) {
				const rate = table.get(c) ?? 0n;
				const base = toBaseMinor(amount, rate);
				// base * 10^12 >= amount * rate > (base - 1) * 10^12
				assert.ok(base * RATE_UNIT >= amount * rate, `${amount} ${c}`);
				assert.ok((base - 1n) * RATE_UNIT < amount * rate, `${amount} ${c}`);
			}
		}
		assert.equal(CURRENCY_EXPONENTS.KWD, 3);
	});
});
