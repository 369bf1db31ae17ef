/**
 * Issue 16, finding 8: deploy/k8s/config.yaml shipped `REPLACE_ME_…` (44 characters, so it
 * passed the length check) as JWT_SECRET, TRANSIT_KEY and PROVIDER_WEBHOOK_SECRET at once.
 * Now a node refuses placeholder and low-entropy secrets and one value serving two keys,
 * and the deploy files ship no secret values at all.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { ConfigError, loadConfig, secretProblem, SECRET_VARS } from "../../config/index.ts";
import { gatewayKeys } from "../support/gateway-key.ts";

const DEPLOY = new URL("../../deploy/", import.meta.url).pathname;
const random = () => randomBytes(36).toString("base64url");
const refuses = (env: Record<string, string>, message: RegExp) =>
	assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(Object.keys(env)));

describe("finding 8: placeholder, low-entropy and shared secrets", () => {
	it("refuses the placeholder the Kubernetes files shipped, and others like it, in every secret setting", () => {
		const placeholders = [
			"REPLACE_ME_WITH_32_OR_MORE_RANDOM_CHARACTERS", "change-me-local-only-0123456789abcdef", "changeme-changeme-changeme-changeme",
			"this-is-a-placeholder-secret-value-0123", "your-secret-here-0123456789-abcdefghij", "Example-Key-For-The-Docs-0123456789xyz",
		];
		for (const value of placeholders) {
			for (const name of ["JWT_SECRET", "TRANSIT_KEY", "PROVIDER_WEBHOOK_SECRET"]) {
				const env: Record<string, string> = name === "JWT_SECRET" ? { JWT_SECRET: value } : { JWT_SECRET: random(), [name]: value };
				refuses(env, new RegExp(`^${name} looks like a placeholder`));
			}
			refuses({ JWT_SECRET: random(), TRANSPORTER: "nats://n:4222", TRANSIT_KEY: random(), NATS_TOKEN: value }, /^NATS_TOKEN looks like a placeholder/);
		}
	});

	it("refuses values with too few distinct characters to be random", () => {
		for (const value of ["x".repeat(32), "ab".repeat(20), "0123".repeat(10), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"]) {
			refuses({ JWT_SECRET: value }, /^JWT_SECRET has too little variety/);
			refuses({ JWT_SECRET: random(), PROVIDER_WEBHOOK_SECRET: value }, /^PROVIDER_WEBHOOK_SECRET has too little variety/);
		}
		for (const value of ["abcdefgh".repeat(5), "Qx7-Lm2#".repeat(4)]) refuses({ JWT_SECRET: value }, /^JWT_SECRET repeats a pattern of 8 characters/);
		refuses({ JWT_SECRET: random(), TRANSPORTER: "nats://n:4222", TRANSIT_KEY: random(), NATS_PASSWORD: "aaaabbbb" }, /^NATS_PASSWORD has too little variety/);
	});

	it("refuses one value for two keys, naming both and never the value", () => {
		const shared = random();
		const pairs: [string, string][] = [["JWT_SECRET", "TRANSIT_KEY"], ["JWT_SECRET", "PROVIDER_WEBHOOK_SECRET"], ["TRANSIT_KEY", "PROVIDER_WEBHOOK_SECRET"], ["NATS_TOKEN", "JWT_SECRET"]];
		for (const [a, b] of pairs) {
			const env: Record<string, string> = { JWT_SECRET: random(), TRANSIT_KEY: random(), TRANSPORTER: "nats://n:4222", [a]: shared, [b]: shared };
			assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.message.includes(a) && e.message.includes(b) && /same value/.test(e.message) && !e.message.includes(shared));
		}
	});

	it("accepts generated keys: base64, base64url and hex", () => {
		const c = loadConfig({
			TRANSPORTER: "nats://n:4222", JWT_SECRET: randomBytes(48).toString("base64"), TRANSIT_KEY: randomBytes(32).toString("hex"),
			PROVIDER_WEBHOOK_SECRET: random(), NATS_TOKEN: randomBytes(16).toString("hex"), ...gatewayKeys(),
		});
		assert.equal(c.auth.jwtSecretGenerated, false);
		for (let i = 0; i < 200; i++) {
			assert.equal(secretProblem(randomBytes(16).toString("hex")), null);
			assert.equal(secretProblem(randomBytes(24).toString("base64url")), null);
		}
	});

	it("the Kubernetes files ship no secret values, and the compose file takes every secret from the environment, one variable per key", () => {
		const docs = ["config.yaml", "deployments.yaml", "services.yaml", "autoscaling.yaml"]
			.flatMap(f => parseAllDocuments(readFileSync(`${DEPLOY}k8s/${f}`, "utf8")).map(d => d.toJSON() as { kind: string; data?: Record<string, string>; stringData?: Record<string, string> }));
		for (const d of docs) {
			assert.notEqual(d.kind, "Secret", "a Secret with values in the repository");
			for (const name of SECRET_VARS) assert.equal(d.data?.[name], undefined, `${name} in a ${d.kind}`);
		}
		const compose = parse(readFileSync(`${DEPLOY}docker-compose.yml`, "utf8"), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> };
		const seen = new Map<string, string>();
		for (const [service, s] of Object.entries(compose.services)) {
			for (const [name, value] of Object.entries(s.environment ?? {})) {
				if (!(SECRET_VARS as readonly string[]).includes(name) && name !== "POSTGRES_PASSWORD") continue;
				const from = /^\$\{([A-Z_]+):\?[^}]+\}$/.exec(value)?.[1];
				assert.ok(from, `${service}.${name} is a literal, not taken from the environment`);
				const other = seen.get(from);
				assert.ok(other === undefined || other === name, `${name} and ${other} both read ${from}`);
				seen.set(from, name);
			}
			const url = s.environment?.["DATABASE_URL"];
			if (url) assert.match(url, /^postgres:\/\/paymesh:\$\{POSTGRES_PASSWORD:\?[^}]+\}@/, `${service} has a literal database password`);
		}
		for (const name of ["JWT_SECRET", "POSTGRES_PASSWORD", "PROVIDER_WEBHOOK_SECRET", "TRANSIT_KEY"]) assert.ok([...seen.values()].includes(name), `${name} is not set from the environment`);
	});
});
