/**
 * The simulated providers' vault: what it takes and declines, and that a token is only
 * good with the provider that issued it, for its kind, before its card's expiry, and with
 * its MAC intact (also on another vault with the same key: another node, or a restart).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isToken, SimulatedVault } from "../../../services/payments/providers-vault.ts";

const NOW = new Date("2026-12-02T12:00:00Z");
const card = { number: "4242424242424242", expMonth: 12, expYear: 2027, cvc: "123", holderName: "Alice" };

describe("simulated vault", () => {
	it("answers a token, a fingerprint and a hint, and nothing of the number but its last 4", () => {
		const v = new SimulatedVault("a key of the simulation, 32 chars or more");
		const out = v.tokenize({ provider: "card", kind: "card", card }, NOW);
		assert.ok(out.ok);
		assert.deepEqual(out.hint, { brand: "visa", last4: "4242", expMonth: 12, expYear: 2027, country: null });
		assert.ok(isToken(out.token));
		assert.ok(!out.token.includes("42424242") && !out.fingerprint.includes("42424242"));
		// The same card: another token, the same fingerprint.
		const again = v.tokenize({ provider: "card", kind: "card", card }, NOW);
		assert.ok(again.ok);
		assert.notEqual(again.token, out.token);
		assert.equal(again.fingerprint, out.fingerprint);
		const other = v.tokenize({ provider: "card", kind: "card", card: { ...card, number: "5555555555554444" } }, NOW);
		assert.ok(other.ok);
		assert.notEqual(other.fingerprint, out.fingerprint);
	});

	it("declines invalid, expired, issuer-declined cards and a wrong security code; bad or refused IBANs", () => {
		const v = new SimulatedVault("a key of the simulation, 32 chars or more");
		const declined = (r: ReturnType<SimulatedVault["tokenize"]>) => (r.ok ? "ok" : r.reason);
		assert.match(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, number: "4242424242424241" } }, NOW)), /not valid/);
		assert.match(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, expYear: 2026, expMonth: 11 } }, NOW)), /expired/);
		assert.match(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, number: "4000000000000002" } }, NOW)), /issuer/);
		assert.match(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, cvc: "1234" } }, NOW)), /security code/);
		assert.match(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, number: "378282246310005", cvc: "123" } }, NOW)), /security code/);
		assert.equal(declined(v.tokenize({ provider: "card", kind: "card", card: { ...card, number: "378282246310005", cvc: "1234" } }, NOW)), "ok");
		assert.match(declined(v.tokenize({ provider: "bank", kind: "bank_account", bankAccount: { iban: "GB83WEST12345698765432", holderName: "A" } }, NOW)), /not valid/);
		assert.match(declined(v.tokenize({ provider: "bank", kind: "bank_account", bankAccount: { iban: "GB82WEST12345698760000", holderName: "A" } }, NOW)), /refused/);
	});

	it("accepts a token only from its provider, for its kind, before the card expires, with its MAC intact", () => {
		const v = new SimulatedVault("a key of the simulation, 32 chars or more");
		const sameKey = new SimulatedVault("a key of the simulation, 32 chars or more");
		const otherKey = new SimulatedVault("another key of another simulation, 32+");
		const c = v.tokenize({ provider: "card", kind: "card", card }, NOW);
		const b = v.tokenize({ provider: "bank", kind: "bank_account", bankAccount: { iban: "GB82WEST12345698765432", holderName: "A" } }, NOW);
		assert.ok(c.ok && b.ok);
		assert.equal(v.accepts(c.token, "card", "card", NOW), true);
		assert.equal(sameKey.accepts(c.token, "card", "card", NOW), true);
		assert.equal(otherKey.accepts(c.token, "card", "card", NOW), false);
		assert.equal(v.accepts(c.token, "bank", "card", NOW), false);
		assert.equal(v.accepts(c.token, "card", "bank_account", NOW), false);
		assert.equal(v.accepts(c.token, "card", "card", new Date("2028-01-01T00:00:00Z")), false);
		assert.equal(v.accepts(b.token, "bank", "bank_account", new Date("2099-01-01T00:00:00Z")), true);
		// Any change to the token's text breaks its MAC, also one that would move the expiry.
		const forged = c.token.replace(":202712:", ":209912:");
		assert.notEqual(forged, c.token);
		assert.equal(v.accepts(forged, "card", "card", NOW), false);
		assert.equal(v.accepts(`${c.token.slice(0, -1)}${c.token.endsWith("A") ? "B" : "A"}`, "card", "card", NOW), false);
		assert.equal(v.accepts("tok:card:c:209912:abc", "card", "card", NOW), false);
	});
});
