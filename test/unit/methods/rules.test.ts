/**
 * Saved payment methods' pure rules: the instrument checks (Luhn, brand, expiry, IBAN)
 * against brute-force references on seeded random inputs, and which method a top-up or a
 * payout may use.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { seededRandom } from "../../../lib/random.ts";
import { cardBrand, cardValidAt, ibanValid, luhnValid } from "../../../lib/instruments.ts";
import { checkNewBankAccount, checkNewCard, checkUse, methodView, statusOf, type MethodState } from "../../../services/methods/rules.ts";

/** Luhn by the book: double every second digit from the right, sum the digits of each. */
function luhnReference(n: string): boolean {
	const digits = [...n].reverse().map(Number);
	const sum = digits.map((d, i) => (i % 2 === 1 ? [...String(d * 2)].reduce((s, c) => s + Number(c), 0) : d)).reduce((a, b) => a + b, 0);
	return /^[0-9]{12,19}$/.test(n) && sum % 10 === 0;
}

/** The digit that makes a number pass Luhn. */
function withCheckDigit(body: string): string {
	for (let d = 0; d <= 9; d++) if (luhnReference(`${body}${d}`)) return `${body}${d}`;
	throw new Error("no check digit");
}

/** IBAN by the book: move the first four to the end, letters to 10..35, the number mod 97 is 1 (as a bigint). */
function ibanReference(iban: string): boolean {
	if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
	const digits = [...(iban.slice(4) + iban.slice(0, 4))].map(c => (c >= "A" ? String(c.charCodeAt(0) - 55) : c)).join("");
	return BigInt(digits) % 97n === 1n;
}

describe("instrument checks", () => {
	it("Luhn agrees with the reference on 5,000 seeded numbers, and every number with its check digit passes", () => {
		const rnd = seededRandom(18_006);
		let valid = 0;
		for (let i = 0; i < 5_000; i++) {
			const len = 12 + Math.floor(rnd() * 8);
			const n = Array.from({ length: len }, () => Math.floor(rnd() * 10)).join("");
			assert.equal(luhnValid(n), luhnReference(n), n);
			if (luhnValid(n)) valid++;
			assert.equal(luhnValid(withCheckDigit(n.slice(0, -1))), true);
		}
		// About one in ten random numbers passes.
		assert.ok(valid > 350 && valid < 650, String(valid));
		for (const bad of ["", "4242", "4242 4242 4242 4242", "42424242424242a2", "4".repeat(20)]) assert.equal(luhnValid(bad), false, bad);
		assert.equal(luhnValid("4242424242424242"), true);
	});

	it("names brands by their leading digits", () => {
		assert.deepEqual(["4242424242424242", "5555555555554444", "2223003122003222", "378282246310005", "6011111111111117", "3056930009020004"].map(cardBrand), ["visa", "mastercard", "mastercard", "amex", "discover", "card"]);
	});

	it("takes a card through the last day of its expiry month, UTC", () => {
		assert.equal(cardValidAt(2, 2028, new Date("2028-02-29T23:59:59.999Z")), true);
		assert.equal(cardValidAt(2, 2028, new Date("2028-03-01T00:00:00.000Z")), false);
		assert.equal(cardValidAt(12, 2027, new Date("2027-12-31T12:00:00Z")), true);
		assert.equal(cardValidAt(12, 2027, new Date("2028-01-01T00:00:00Z")), false);
	});

	it("checks IBANs as the reference does on 3,000 seeded ones (a valid one with each check digit changed fails)", () => {
		const rnd = seededRandom(97);
		const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
		for (let i = 0; i < 3_000; i++) {
			const bban = Array.from({ length: 11 + Math.floor(rnd() * 20) }, () => alnum[Math.floor(rnd() * (rnd() < 0.7 ? 10 : 36)) + (rnd() < 0.7 ? 26 : 0)] ?? "0").join("").slice(0, 30);
			const country = String.fromCharCode(65 + Math.floor(rnd() * 26), 65 + Math.floor(rnd() * 26));
			const check = String(Math.floor(rnd() * 100)).padStart(2, "0");
			const iban = `${country}${check}${bban}`;
			assert.equal(ibanValid(iban), ibanReference(iban), iban);
		}
		assert.equal(ibanValid("GB82WEST12345698765432"), true);
		assert.equal(ibanValid("GB83WEST12345698765432"), false);
		assert.equal(ibanValid("DE89370400440532013000"), true);
		assert.equal(ibanValid("de89370400440532013000"), false);
	});
});

const NOW = new Date("2026-12-02T12:00:00Z");
const USER = "01900000-0000-7000-8000-000000000001";
const OTHER = "01900000-0000-7000-8000-000000000002";

function method(over: Partial<MethodState> = {}): MethodState {
	return {
		id: "01900000-0000-7000-8000-00000000000a", userId: USER, kind: "card", provider: "card", brand: "visa", last4: "4242", expMonth: 12, expYear: 2030,
		country: null, holderName: "Alice", label: "", createdAt: NOW, updatedAt: NOW, removedAt: null, ...over,
	};
}

describe("which method a payment may use", () => {
	it("refuses a bad card number before the provider (400) and an expired card (422)", () => {
		assert.equal(checkNewCard({ number: "4242424242424241", expMonth: 1, expYear: 2030 }, NOW)?.code, "VALIDATION_ERROR");
		assert.equal(checkNewCard({ number: "4242424242424242", expMonth: 11, expYear: 2026 }, NOW)?.code, "CARD_EXPIRED");
		assert.equal(checkNewCard({ number: "4242424242424242", expMonth: 12, expYear: 2026 }, NOW), null);
		assert.equal(checkNewBankAccount({ iban: "GB83WEST12345698765432" })?.code, "VALIDATION_ERROR");
		assert.equal(checkNewBankAccount({ iban: "GB82WEST12345698765432" }), null);
	});

	it("answers a foreign, unknown or removed method like a missing one; a payment in flight still uses a removed one", () => {
		assert.equal(checkUse(null, USER, "topup", NOW)?.code, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(checkUse(method({ userId: OTHER }), USER, "topup", NOW)?.code, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(checkUse(method({ userId: OTHER }), USER, "topup", NOW, true)?.code, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(checkUse(method({ removedAt: NOW }), USER, "topup", NOW)?.code, "PAYMENT_METHOD_NOT_FOUND");
		assert.equal(checkUse(method({ removedAt: NOW }), USER, "topup", NOW, true), null);
		assert.equal(checkUse(method(), USER, "topup", NOW), null);
	});

	it("takes money in from a card and pays out to a bank account, never the other way; an expired card is refused", () => {
		const bank = method({ kind: "bank_account", provider: "bank", brand: "bank", expMonth: null, expYear: null, country: "GB" });
		assert.equal(checkUse(method(), USER, "payout", NOW)?.code, "PAYMENT_METHOD_UNUSABLE");
		assert.equal(checkUse(bank, USER, "topup", NOW)?.code, "PAYMENT_METHOD_UNUSABLE");
		assert.equal(checkUse(bank, USER, "payout", NOW), null);
		assert.equal(checkUse(method({ expMonth: 11, expYear: 2026 }), USER, "topup", NOW)?.code, "CARD_EXPIRED");
		assert.deepEqual([statusOf(method(), NOW), statusOf(method({ expMonth: 11, expYear: 2026 }), NOW), statusOf(method({ removedAt: NOW }), NOW), statusOf(bank, NOW)], ["active", "expired", "removed", "active"]);
	});

	it("shows the hint and never a token", () => {
		const v = methodView(method(), NOW);
		assert.deepEqual(Object.keys(v).sort(), ["brand", "country", "createdAt", "expMonth", "expYear", "holderName", "id", "kind", "label", "last4", "provider", "removedAt", "status"]);
	});
});
