/**
 * Access tokens with scopes (OAuth2 client credentials): the scopes survive the round trip,
 * a scoped token never carries a role beyond user (even one signed with the key and an
 * admin role in it), and a malformed scope claim makes the token invalid.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import jwt from "jsonwebtoken";
import { signAccessToken, verifyAccessToken } from "../../../services/auth/tokens.ts";
import { registrationAttemptMail, verificationMail } from "../../../services/auth/mails.ts";

const KEY = "unit-test-key-0123456789-abcdefghijklmnopqrstuvwxyz";
const claims = { sub: "018f0000-0000-7000-8000-000000000001", sid: "018f0000-0000-7000-8000-000000000002" };

describe("access tokens and scopes", () => {
	it("a person's token has roles and no scopes", () => {
		const t = verifyAccessToken(signAccessToken({ ...claims, roles: ["user", "admin"] }, KEY, 60), KEY);
		assert.deepEqual([t?.roles, t?.scopes], [["user", "admin"], undefined]);
	});

	it("a client's token keeps its scopes and never a role beyond user", () => {
		const t = verifyAccessToken(signAccessToken({ ...claims, roles: ["user", "admin"], scopes: ["transactions:read", "payments:write"] }, KEY, 60), KEY);
		assert.deepEqual([t?.roles, t?.scopes], [["user"], ["transactions:read", "payments:write"]]);
	});

	it("drops unknown scopes and refuses a scope claim that is not a string", () => {
		const sign = (scope: unknown) => jwt.sign({ roles: ["user"], sid: claims.sid, typ: "access", scope }, KEY, { algorithm: "HS256", expiresIn: 60, subject: claims.sub, issuer: "paymesh", audience: "paymesh-api" });
		assert.deepEqual(verifyAccessToken(sign("accounts:read admin:all"), KEY)?.scopes, ["accounts:read"]);
		assert.equal(verifyAccessToken(sign(["accounts:read"]), KEY), null);
		// An empty scope is a client token allowed nothing.
		assert.deepEqual(verifyAccessToken(sign(""), KEY)?.scopes, []);
	});
});

describe("identity mails", () => {
	it("a verification mail carries its code; the notice to an owner carries none", () => {
		assert.match(verificationMail("042917", 900).body, /Your code is 042917\. .*15 minutes/);
		assert.doesNotMatch(registrationAttemptMail().body, /[0-9]{6}/);
	});
});
