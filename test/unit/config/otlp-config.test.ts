/** OTEL_* settings of the OTLP trace exporter (config/index.ts; the exporter is lib/otlp.ts). */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../../config/index.ts";

const otlp = (env: Record<string, string>) => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector:4318", ...env }).tracing.otlp;

describe("OTLP settings", () => {
	it("are off without OTEL_EXPORTER_OTLP_ENDPOINT, and send to <endpoint>/v1/traces with bounded defaults", () => {
		assert.equal(loadConfig({}).tracing.otlp, null);
		const c = otlp({});
		assert.deepEqual(c, {
			url: "http://otel-collector:4318/v1/traces", headers: {}, serviceName: "paymesh",
			scheduleDelayMs: 1_000, batchSizeMax: 512, queueMax: 4_096, timeoutMs: 5_000, sampleRate: 1,
		});
		assert.equal(otlp({ OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example/otlp/" })?.url, "https://collector.example/otlp/v1/traces");
	});

	it("name the service by the node's role", () => {
		assert.equal(otlp({ ROLE: "gateway" })?.serviceName, "paymesh-gateway");
		assert.equal(otlp({ ROLE: "payments" })?.serviceName, "paymesh-payments");
		// The same services as a role's, given by name.
		assert.equal(otlp({ SERVICES: "ledger" })?.serviceName, "paymesh-ledger");
		assert.equal(otlp({ SERVICES: "api,realtime" })?.serviceName, "paymesh-gateway");
		assert.equal(otlp({ SERVICES: "ledger,fraud" })?.serviceName, "paymesh-ledger-fraud");
		assert.equal(otlp({ SERVICES: "none" })?.serviceName, "paymesh-none");
		assert.equal(otlp({ ROLE: "ledger", OTEL_SERVICE_NAME: "ledger.eu-1" })?.serviceName, "ledger.eu-1");
	});

	it("read headers, the sampling share and the batch limits, and refuse bad values without echoing a header's value", () => {
		const c = otlp({ OTEL_EXPORTER_OTLP_HEADERS: "x-api-key=abc%3D%3D, x-team=pay", OTEL_TRACES_SAMPLER_ARG: "0.1", OTEL_BSP_MAX_QUEUE_SIZE: "100", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "10", OTEL_EXPORTER_OTLP_TIMEOUT: "2000", OTEL_BSP_SCHEDULE_DELAY: "250" });
		assert.deepEqual(c?.headers, { "x-api-key": "abc==", "x-team": "pay" });
		assert.deepEqual([c?.sampleRate, c?.queueMax, c?.batchSizeMax, c?.timeoutMs, c?.scheduleDelayMs], [0.1, 100, 10, 2_000, 250]);
		for (const ok of ["0", "1", "1.0", ".5", "0.001"]) assert.equal(otlp({ OTEL_TRACES_SAMPLER_ARG: ok })?.sampleRate, Number(ok));
		for (const bad of ["2", "-0.1", "half", "1.5", "0x1"]) assert.throws(() => otlp({ OTEL_TRACES_SAMPLER_ARG: bad }), ConfigError);
		assert.throws(() => otlp({ OTEL_EXPORTER_OTLP_ENDPOINT: "grpc://collector:4317" }), /protocol/);
		assert.throws(() => otlp({ OTEL_BSP_MAX_QUEUE_SIZE: "0" }), ConfigError);
		assert.throws(() => otlp({ OTEL_EXPORTER_OTLP_TIMEOUT: "99999999" }), ConfigError);
		assert.throws(() => otlp({ OTEL_SERVICE_NAME: "a b" }), ConfigError);
		assert.throws(() => otlp({ OTEL_EXPORTER_OTLP_HEADERS: "no-equals-sign-s3cr3t" }), (e: unknown) => e instanceof ConfigError && !e.message.includes("s3cr3t"));
		assert.throws(() => otlp({ OTEL_EXPORTER_OTLP_HEADERS: "k=%E0%A4%A-s3cr3t" }), (e: unknown) => e instanceof ConfigError && !e.message.includes("s3cr3t"));
	});
});
