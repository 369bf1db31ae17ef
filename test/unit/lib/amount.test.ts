/**
 * Amounts as people type them (lib/amount.ts): the findings of issue 18 each answered as a
 * person expects, one message per cause, and a seeded round trip: any amount in any
 * currency of the table, written the way a locale writes it (with or without the code or
 * symbol), reads back as the same minor units.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { formatAmount, parseAmount, separatorsOf } from "../../../lib/amount.ts";
import { CURRENCY_CODES, CURRENCY_EXPONENTS, type CurrencyCode } from "../../../config/currencies.ts";

const ok = (text: string, currency: CurrencyCode, locale = "en") => {
	const r = parseAmount(text, currency, locale);
	return r.ok ? r.minor : `${r.cause}: ${r.message}`;
};

describe("amount parsing", () => {
	it("reads grouped thousands, symbols of the amount's currency and the locale's decimal separator", () => {
		assert.equal(ok("10,000.00", "USD"), 1_000_000n);
		assert.equal(ok("1,000", "USD"), 100_000n);
		assert.equal(ok("$5", "USD"), 500n);
		assert.equal(ok("5 USD", "USD"), 500n);
		assert.equal(ok("usd 5", "USD"), 500n);
		assert.equal(ok(".5", "USD"), 50n);
		assert.equal(ok("1,500", "KWD"), 1_500_000n, "in English 1,500 KWD is one thousand five hundred, not 1.500");
		assert.equal(ok("1.500", "KWD"), 1_500n);
		assert.equal(ok("1,5", "EUR", "de"), 150n);
		assert.equal(ok("10.000,50", "EUR", "de"), 1_000_050n);
		assert.equal(ok("1 000,5", "EUR", "fr"), 100_050n);
		assert.equal(ok("10'000.50", "CHF", "de-CH"), 1_000_050n);
		assert.equal(ok("1,23,456", "INR", "en-IN"), 12_345_600n);
		assert.equal(ok("1,234", "JPY"), 1_234n);
	});

	it("refuses with a message per cause, never guessing", () => {
		assert.equal(ok("1,5", "USD"), 'BAD_GROUPING: "1,5" is not a clear amount. For decimals use a dot: 1.5.');
		assert.equal(ok("1.5", "EUR", "de"), 'BAD_GROUPING: "1.5" is not a clear amount. For decimals use a comma: 1,5.');
		assert.equal(ok("12.345", "USD"), "TOO_MANY_DECIMALS: USD amounts have at most 2 decimals.");
		assert.equal(ok("100.5", "JPY"), "TOO_MANY_DECIMALS: JPY amounts have no decimals.");
		assert.equal(ok("1.0001", "KWD"), "TOO_MANY_DECIMALS: KWD amounts have at most 3 decimals.");
		assert.equal(ok("€5", "USD"), "WRONG_CURRENCY: This amount is in EUR; the account is in USD.");
		assert.equal(ok("5 gbp", "USD"), "WRONG_CURRENCY: This amount is in GBP; the account is in USD.");
		assert.equal(ok("-5", "USD"), "NEGATIVE: Enter an amount above zero, without a minus sign.");
		assert.equal(ok("0.00", "USD"), "ZERO: Enter an amount above zero.");
		assert.equal(ok("   ", "USD"), "EMPTY: Enter an amount.");
		assert.equal(ok("abc", "USD"), "NOT_A_NUMBER: Enter a number.");
		assert.equal(ok("1.2.3", "USD"), "BAD_GROUPING: Use a dot once, for the decimals.");
		assert.equal(ok("99999999999999999", "USD"), "TOO_LARGE: That amount is too large.");
		assert.equal(ok("1,00,000", "USD"), 'BAD_GROUPING: "1,00,000" is not a clear amount. Group thousands with a comma in threes, or leave them out.');
	});

	it("formats with grouped thousands and the currency's decimals", () => {
		assert.equal(formatAmount(1_000_000n, "USD"), "10,000.00 USD");
		assert.equal(formatAmount(1_500_000, "KWD"), "1,500.000 KWD");
		assert.equal(formatAmount(1_234_567n, "JPY"), "1,234,567 JPY");
		assert.equal(formatAmount(-5n, "USD"), "-0.05 USD");
		assert.equal(formatAmount(1_000_050n, "EUR", "de"), "10.000,50 EUR");
		assert.equal(formatAmount(12_345_600n, "INR", "en-IN"), "1,23,456.00 INR");
	});

	it("has every ISO 4217 currency without minor units at exponent 0, and the three-decimal ones at 3", () => {
		for (const c of ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"] as const) assert.equal(CURRENCY_EXPONENTS[c], 0, c);
		for (const c of ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"] as const) assert.equal(CURRENCY_EXPONENTS[c], 3, c);
	});

	it("reads back what it writes, for any amount, currency and locale (seeded, 20,000 cases)", () => {
		const rnd = seededRandom(Number(process.env["AMOUNT_SEED"] ?? 18));
		const locales = ["en", "en-GB", "de", "fr", "de-CH", "en-IN", "es", "it", "nl", "pt-BR", "ja", "sv"];
		for (const l of locales) assert.ok(separatorsOf(l).decimal === "." || separatorsOf(l).decimal === ",");
		for (let i = 0; i < 20_000; i++) {
			const currency = CURRENCY_CODES[Math.floor(rnd() * CURRENCY_CODES.length)] as CurrencyCode;
			const locale = locales[Math.floor(rnd() * locales.length)] as string;
			const digits = 1 + Math.floor(rnd() * 15);
			const minor = BigInt(Math.floor(rnd() * 10 ** Math.min(digits, 15))) + 1n;
			if (minor > BigInt(Number.MAX_SAFE_INTEGER)) continue;
			const text = formatAmount(minor, currency, locale, rnd() < 0.5);
			const back = parseAmount(text, currency, locale);
			assert.ok(back.ok && back.minor === minor, `${text} (${currency}, ${locale}) read as ${JSON.stringify(back, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`);
		}
	});
});
