import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../../config/index.ts";

describe("config", () => {
	it("defaults to the embedded single node", () => {
		const c = loadConfig({});
		assert.equal(c.databaseUrl, null);
		assert.equal(c.transporter, null);
		assert.equal(c.redisUrl, null);
		assert.equal(c.dataDir, "./data");
		assert.deepEqual(c.services, ["api", "realtime", "auth", "users", "ledger", "payments", "providers", "fx", "fraud", "notifications", "audit", "webhooks", "reports", "recon", "requests", "schedules", "bills", "methods"]);
		assert.equal(c.notifications.smtpUrl, null);
		assert.deepEqual(c.payments.webhookProviders, ["bank", "mobile_money"]);
		assert.equal(c.payments.webhookSecret.length >= 32 && c.payments.webhookSecret !== c.auth.jwtSecret, true);
		assert.equal(c.auth.jwtSecretGenerated, true);
		assert.equal(c.port, 3000);
		assert.equal(c.outbox.packEvents, true, "the ledger packs its events unless told not to (a rolling upgrade)");
		assert.equal(loadConfig({ OUTBOX_PACK_EVENTS: "false" }).outbox.packEvents, false);
	});

	it("reads cluster settings", () => {
		const c = loadConfig({
			DATABASE_URL: "postgres://u@db:5432/pay", TRANSPORTER: "nats://nats:4222", REDIS_URL: "redis://:r3dis-Pass-for-config-test-5Kw9@r:6379",
			SERVICES: "ledger", NODE_ID: "ledger-1", LEDGER_BATCH_SIZE_MAX: "250", JWT_SECRET: "c1-Jwt-Secret-for-config-test-8Hs3Qd", TRANSIT_KEY: "t0-Transit-Key-for-config-test-7Qm2Vz",
			GATEWAY_VERIFY_KEYS: "3E6J_TY6U6Bp-A3wmTP6nKzNuhxIoPl-1RT6N76Fbp4",
		});
		assert.equal(c.databaseUrl, "postgres://u@db:5432/pay");
		assert.deepEqual(c.services, ["ledger"]);
		assert.equal(c.ledger.batchSizeMax, 250);
		assert.deepEqual(loadConfig({ SERVICES: "none" }).services, []);
		assert.deepEqual(loadConfig({ ROLE: "gateway" }).services, ["api", "realtime"]);
		assert.deepEqual(loadConfig({ ROLE: "workers" }).services, ["notifications", "audit", "webhooks", "reports", "recon"]);
		assert.deepEqual(loadConfig({ ROLE: "gateway", SERVICES: "ledger" }).services, ["ledger"], "SERVICES wins over ROLE");
		assert.throws(() => loadConfig({ ROLE: "cook" }), /ROLE="cook" is invalid/);
		// nats-server reads the password as a config value: one that begins like a number (9e5…) stops it starting.
		assert.throws(() => loadConfig({ NATS_PASSWORD: "9e5a1c7f0b2d4e6a8c9b" }), (err: Error) => err instanceof ConfigError && /NATS_PASSWORD must begin with a letter/.test(err.message));
		assert.equal(loadConfig({ NATS_PASSWORD: "p9e5a1c7f0b2d4e6a8c9b" }).transit.natsPassword, "p9e5a1c7f0b2d4e6a8c9b");
	});

	const bad: [Record<string, string>, RegExp][] = [
		[{ PORT: "70000" }, /PORT="70000" is invalid: expected an integer from 0 to 65535/],
		[{ PORT: "12.5" }, /PORT/],
		[{ LEDGER_BATCH_SIZE_MAX: "0" }, /LEDGER_BATCH_SIZE_MAX="0" is invalid: expected an integer from 1 to 10000/],
		[{ DAILY_COUNTERS_RETENTION_DAYS: "1" }, /DAILY_COUNTERS_RETENTION_DAYS="1" is invalid: expected an integer from 2 to 3650/],
		[{ DATABASE_URL: "mysql://x" }, /DATABASE_URL has protocol mysql: but expected postgres: or postgresql:/],
		[{ DATABASE_URL: "not a url" }, /DATABASE_URL is not a valid URL/],
		[{ TRANSPORTER: "amqp://x" }, /TRANSPORTER has protocol amqp:/],
		[{ SERVICES: "ledger,bogus" }, /SERVICES contains "bogus"/],
		[{ LOG_LEVEL: "loud" }, /LOG_LEVEL="loud" is invalid: expected one of fatal, error, warn, info, debug, trace/],
		[{ METRICS_ENABLED: "maybe" }, /METRICS_ENABLED="maybe" is invalid: expected true or false/],
		[{ NODE_ID: "has space" }, /NODE_ID/],
		[{ TRANSPORTER: "nats://n:4222" }, /JWT_SECRET is required when TRANSPORTER is set/],
		[{ JWT_SECRET: "short" }, /JWT_SECRET is too short/],
		[{ TRANSPORTER: "nats://n:4222", JWT_SECRET: "j0-Jwt-Secret-for-config-test-4Wp8Lx" }, /TRANSIT_KEY is required when TRANSPORTER is set/],
	];
	for (const [env, message] of bad) {
		it(`refuses ${JSON.stringify(env)} naming the variable`, () => {
			assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message));
		});
	}
});
