/**
 * GATEWAY_SIGNING_KEY, GATEWAY_VERIFY_KEYS and CALLER_SIGNATURES (config/index.ts): which node
 * needs which key, their format, and the single node's derived pair.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ConfigError, loadConfig } from "../../../config/index.ts";
import { derivedSigningKey, generateGatewayKey, publicKeyOf } from "../../../lib/caller-identity.ts";

const secret = () => randomBytes(30).toString("base64url");
const gw = generateGatewayKey();
const next = generateGatewayKey();
const cluster = () => ({ TRANSPORTER: "nats://n:4222", JWT_SECRET: secret(), TRANSIT_KEY: secret() });

function refuses(env: Record<string, string>, message: RegExp): void {
	assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message), `expected ${message}`);
}

describe("caller identity settings", () => {
	it("a cluster: every node needs GATEWAY_VERIFY_KEYS, a gateway its GATEWAY_SIGNING_KEY; signatures are required", () => {
		refuses({ ...cluster(), SERVICES: "ledger" }, /^GATEWAY_VERIFY_KEYS is required when TRANSPORTER is set/);
		refuses({ ...cluster(), SERVICES: "none" }, /^GATEWAY_VERIFY_KEYS is required/);
		refuses({ ...cluster(), ROLE: "gateway", GATEWAY_VERIFY_KEYS: gw.verifyKey }, /^GATEWAY_SIGNING_KEY is required on a node that runs the gateway \(api\)/);
		const gateway = loadConfig({ ...cluster(), ROLE: "gateway", GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: gw.verifyKey });
		assert.deepEqual(gateway.callerIdentity, { signingKey: gw.signingKey, verifyKeys: [gw.verifyKey], required: true });
		const ledger = loadConfig({ ...cluster(), SERVICES: "ledger", GATEWAY_VERIFY_KEYS: gw.verifyKey });
		assert.deepEqual(ledger.callerIdentity, { signingKey: null, verifyKeys: [gw.verifyKey], required: true });
		// A node that runs no gateway never keeps the private key, whatever its environment.
		assert.equal(loadConfig({ ...cluster(), SERVICES: "ledger", GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: gw.verifyKey }).callerIdentity.signingKey, null);
	});

	it("a rotation: two verify keys, the gateway signing with either; a gateway whose key is not listed is refused", () => {
		for (const signing of [gw, next]) {
			const c = loadConfig({ ...cluster(), SERVICES: "api", GATEWAY_SIGNING_KEY: signing.signingKey, GATEWAY_VERIFY_KEYS: `${next.verifyKey}, ${gw.verifyKey}` });
			assert.deepEqual(c.callerIdentity.verifyKeys, [next.verifyKey, gw.verifyKey]);
		}
		refuses({ ...cluster(), SERVICES: "api", GATEWAY_SIGNING_KEY: next.signingKey, GATEWAY_VERIFY_KEYS: gw.verifyKey }, new RegExp(`^GATEWAY_SIGNING_KEY's public key ${next.verifyKey} is not in GATEWAY_VERIFY_KEYS`));
	});

	it("refuses keys of the wrong format, repeated, too many, the private key among the public ones, and a placeholder or shared signing key, never echoing it", () => {
		const base = { ...cluster(), SERVICES: "api" };
		refuses({ ...base, GATEWAY_SIGNING_KEY: randomBytes(33).toString("base64url"), GATEWAY_VERIFY_KEYS: gw.verifyKey }, /^GATEWAY_SIGNING_KEY is not an Ed25519 private key/);
		refuses({ ...base, GATEWAY_SIGNING_KEY: "REPLACE_ME_REPLACE_ME_REPLACE_ME_REPLACE_ME", GATEWAY_VERIFY_KEYS: gw.verifyKey }, /^GATEWAY_SIGNING_KEY looks like a placeholder/);
		refuses({ ...base, GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: `${gw.verifyKey},abc` }, /^GATEWAY_VERIFY_KEYS item 2 is not an Ed25519 public key/);
		refuses({ ...base, GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: `${gw.verifyKey},${gw.verifyKey}` }, /^GATEWAY_VERIFY_KEYS item 2 repeats item 1/);
		refuses({ ...base, GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: `${gw.verifyKey},${gw.signingKey}` }, /^GATEWAY_VERIFY_KEYS item 2 is GATEWAY_SIGNING_KEY/);
		const five = Array.from({ length: 5 }, () => generateGatewayKey().verifyKey).join(",");
		refuses({ ...base, GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: five }, /^GATEWAY_VERIFY_KEYS lists 5 keys: expected at most 4/);
		refuses({ ...base, TRANSIT_KEY: gw.signingKey, GATEWAY_SIGNING_KEY: gw.signingKey, GATEWAY_VERIFY_KEYS: gw.verifyKey }, /^GATEWAY_SIGNING_KEY has the same value as TRANSIT_KEY/);
		for (const env of [{ ...base, GATEWAY_SIGNING_KEY: `${gw.signingKey}x`, GATEWAY_VERIFY_KEYS: gw.verifyKey }]) {
			try {
				loadConfig(env);
				assert.fail("refused");
			} catch (err) {
				assert.ok(!(err as Error).message.includes(gw.signingKey), "the private key is not echoed");
			}
		}
	});

	it("one process: the pair derived from JWT_SECRET unless given, checked only when a call carries an assertion, unless CALLER_SIGNATURES=required", () => {
		const jwt = secret();
		const c = loadConfig({ JWT_SECRET: jwt });
		const derived = derivedSigningKey(jwt);
		assert.deepEqual(c.callerIdentity, { signingKey: derived, verifyKeys: [publicKeyOf(derived)], required: false });
		assert.equal(loadConfig({ JWT_SECRET: jwt, CALLER_SIGNATURES: "required" }).callerIdentity.required, true);
		assert.deepEqual(loadConfig({ JWT_SECRET: jwt, GATEWAY_SIGNING_KEY: gw.signingKey }).callerIdentity.verifyKeys, [gw.verifyKey]);
		refuses({ JWT_SECRET: jwt, CALLER_SIGNATURES: "off" }, /^CALLER_SIGNATURES="off" is invalid: expected one of auto, required/);
		refuses({ JWT_SECRET: jwt, GATEWAY_VERIFY_KEYS: gw.verifyKey }, /^GATEWAY_SIGNING_KEY's public key .* is not in GATEWAY_VERIFY_KEYS/);
		assert.equal(loadConfig({ ...cluster(), SERVICES: "ledger", GATEWAY_VERIFY_KEYS: gw.verifyKey, CALLER_SIGNATURES: "auto" }).callerIdentity.required, true, "a cluster always requires them");
	});
});
