import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, seal, transitKey } from "../../../lib/transit-crypto.ts";
import { natsOptions } from "../../../moleculer.config.ts";
import { loadConfig } from "../../../config/index.ts";

describe("transit encryption", () => {
	const key = transitKey("k".repeat(40));
	const packet = Buffer.from(JSON.stringify({ action: "ledger.transfers.create", amount: 100 }));

	it("opens what it sealed, with a fresh IV each time", () => {
		const a = seal(key, packet);
		const b = seal(key, packet);
		assert.notDeepEqual(a, b);
		assert.deepEqual(open(key, a), packet);
		assert.equal(a.includes(Buffer.from("ledger")), false);
	});

	it("refuses another key, a changed byte and a short packet", () => {
		const sealed = seal(key, packet);
		assert.equal(open(transitKey("x".repeat(40)), sealed), null);
		const changed = Buffer.from(sealed);
		changed[changed.length - 1] = (changed[changed.length - 1] ?? 0) ^ 1;
		assert.equal(open(key, changed), null);
		assert.equal(open(key, Buffer.alloc(10)), null);
	});
});

describe("NATS options from the config", () => {
	it("passes the token, the user and TLS; refuses short secrets", () => {
		const base = { TRANSPORTER: "nats://n:4222", JWT_SECRET: "j".repeat(32) };
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_TOKEN: "t0ken-123456" })), { url: "nats://n:4222", maxReconnectAttempts: -1, token: "t0ken-123456" });
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_USER: "pay", NATS_PASSWORD: "secret-pw-1" })), { url: "nats://n:4222", maxReconnectAttempts: -1, user: "pay", pass: "secret-pw-1" });
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_TLS: "true" })), { url: "nats://n:4222", maxReconnectAttempts: -1, tls: {} });
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: "short" }), /TRANSIT_KEY is too short/);
	});
});
