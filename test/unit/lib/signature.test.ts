import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { signatureHeader, verifySignature } from "../../../lib/signature.ts";

const SECRET = "s".repeat(40);
const BODY = JSON.stringify({ eventId: "e1", status: "succeeded" });
const NOW_S = 1_800_000_000;

describe("webhook signatures", () => {
	it("accepts the body it signed, within the tolerance on either side", () => {
		assert.equal(verifySignature(SECRET, signatureHeader(SECRET, BODY, NOW_S), BODY, NOW_S), true);
		assert.equal(verifySignature(SECRET, signatureHeader(SECRET, BODY, NOW_S - 300), BODY, NOW_S), true);
		assert.equal(verifySignature(SECRET, signatureHeader(SECRET, BODY, NOW_S + 300), BODY, NOW_S), true);
	});

	it("refuses another body, another key, a stale or future time, and a moved time", () => {
		const header = signatureHeader(SECRET, BODY, NOW_S);
		assert.equal(verifySignature(SECRET, header, BODY.replace("succeeded", "failed"), NOW_S), false);
		assert.equal(verifySignature("k".repeat(40), header, BODY, NOW_S), false);
		assert.equal(verifySignature(SECRET, signatureHeader(SECRET, BODY, NOW_S - 301), BODY, NOW_S), false);
		assert.equal(verifySignature(SECRET, signatureHeader(SECRET, BODY, NOW_S + 301), BODY, NOW_S), false);
		// The time is inside the MAC: the same MAC with a fresher time does not verify.
		assert.equal(verifySignature(SECRET, header.replace(`t=${NOW_S}`, `t=${NOW_S + 1}`), BODY, NOW_S), false);
	});

	it("refuses missing and malformed headers without throwing", () => {
		for (const bad of [undefined, "", "t=1", "v1=00", `t=abc,v1=${"0".repeat(64)}`, `t=${NOW_S},v1=${"0".repeat(63)}`, `t=${NOW_S},v1=${"z".repeat(64)}`, "x".repeat(600)]) {
			assert.equal(verifySignature(SECRET, bad, BODY, NOW_S), false, String(bad));
		}
	});
});
