/**
 * The OTLP exporter (lib/otlp.ts): Moleculer spans in OTLP's JSON shape (ids, times,
 * attributes, status), nothing secret among the attributes over 2,000 seeded random tag
 * trees, and the sending side: batches of at most the batch size, a bounded queue that
 * drops and counts instead of growing or waiting, a collector that never answers
 * abandoned at the timeout with its spans counted as failed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServiceBroker } from "moleculer";
import { attributesOf, OTLP_SPANS_METRIC, OtlpTraceExporter, otlpSpanOf, spanIdOf, traceIdOf, unixNanos, type OtlpExportRequest, type OtlpOptions, type SpanRecord } from "../../../lib/otlp.ts";
import { seededRandom } from "../../../lib/random.ts";
import { tracingOptions } from "../../../moleculer.config.ts";
import { loadConfig } from "../../../config/index.ts";
import { until } from "../../support/wait.ts";

const record = (over: Partial<SpanRecord> = {}): SpanRecord => ({
	traceID: "0f8fad5b-d9cb-469f-a165-70867728950e", id: "7c9e6679-7425-40de-944b-e07fc1f90ae7", parentID: null, name: "action 'ledger.payments.p2p'",
	type: "action", service: "ledger", startTime: 1_700_000_000_123.5, finishTime: 1_700_000_000_125.25, tags: {}, error: null, ...over,
});

describe("OTLP mapping", () => {
	it("keeps a UUID request id's hex as the trace id, hashes any other, and gives a span and its children's parent link one id", () => {
		assert.equal(traceIdOf("0f8fad5b-d9cb-469f-a165-70867728950e"), "0f8fad5bd9cb469fa16570867728950e");
		for (const id of ["trace-me-42", "x", "00000000-0000-0000-0000-000000000000", "ZZZZ"]) {
			assert.match(traceIdOf(id), /^[0-9a-f]{32}$/);
			assert.notEqual(traceIdOf(id), "0".repeat(32));
			assert.equal(traceIdOf(id), traceIdOf(id));
		}
		assert.notEqual(traceIdOf("a"), traceIdOf("b"));
		const parent = otlpSpanOf(record());
		const child = otlpSpanOf(record({ id: "another", parentID: "7c9e6679-7425-40de-944b-e07fc1f90ae7" }));
		assert.match(parent.spanId, /^[0-9a-f]{16}$/);
		assert.equal(child.parentSpanId, parent.spanId);
		assert.equal(child.traceId, parent.traceId);
		assert.equal("parentSpanId" in parent, false, "a root has no parent");
		assert.equal(spanIdOf("x"), spanIdOf("x"));
	});

	it("writes times as unix nanoseconds in decimal strings, exactly", () => {
		assert.equal(unixNanos(1_700_000_000_123.5), "1700000000123500000");
		assert.equal(unixNanos(1_700_000_000_123), "1700000000123000000");
		const s = otlpSpanOf(record());
		assert.deepEqual([s.startTimeUnixNano, s.endTimeUnixNano], ["1700000000123500000", "1700000000125250000"]);
		assert.ok(BigInt(s.endTimeUnixNano) >= BigInt(s.startTimeUnixNano));
	});

	it("maps kind, status and error without the error's data, and strips a query from names and paths", () => {
		const err = Object.assign(new Error("Parameters validation error!"), { code: 422, type: "VALIDATION_ERROR", data: [{ field: "password", actual: "hunter2-secret" }] });
		const s = otlpSpanOf(record({ error: err, tags: { nodeID: "n1", remoteCall: true, callingLevel: 2, action: { name: "auth.login" } } }));
		assert.deepEqual(s.status, { code: 2, message: "Parameters validation error!" });
		assert.equal(s.kind, 2);
		const attrs = Object.fromEntries(s.attributes.map(a => [a.key, a.value]));
		assert.deepEqual(attrs["error.code"], { intValue: "422" });
		assert.deepEqual(attrs["error.type"], { stringValue: "VALIDATION_ERROR" });
		assert.deepEqual(attrs["moleculer.nodeID"], { stringValue: "n1" });
		assert.deepEqual(attrs["moleculer.remoteCall"], { boolValue: true });
		assert.deepEqual(attrs["moleculer.action.name"], { stringValue: "auth.login" });
		assert.deepEqual(attrs["moleculer.service"], { stringValue: "ledger" });
		assert.equal(JSON.stringify(s).includes("hunter2-secret"), false);
		assert.deepEqual(otlpSpanOf(record({ type: "event" })).kind, 5);
		assert.deepEqual(otlpSpanOf(record({ type: "custom" })).kind, 1);
		const http = otlpSpanOf(record({ name: "GET /api/v1/auth/reset?token=abc123", tags: { params: { req: { method: "GET", url: "/api/v1/auth/reset?token=abc123#x" } } } }));
		assert.equal(http.name, "GET /api/v1/auth/reset");
		const h = Object.fromEntries(http.attributes.map(a => [a.key, a.value]));
		assert.deepEqual([h["http.request.method"], h["url.path"]], [{ stringValue: "GET" }, { stringValue: "/api/v1/auth/reset" }]);
		assert.equal(JSON.stringify(http).includes("abc123"), false);
	});

	it("never exports params, meta, answers or secret-looking names, over 2,000 seeded random tag trees", () => {
		const rnd = seededRandom(19_005);
		const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
		const secretNames = ["password", "newPassword", "accessToken", "refreshToken", "otp", "secret", "authorization", "Cookie", "apiKey", "api_key", "clientSecret", "credentials", "signature"];
		const plainNames = ["nodeID", "action", "name", "callingLevel", "remoteCall", "fromCache", "requestID", "options", "timeout", "retries", "id", "amount", "status"];
		for (let run = 0; run < 2_000; run++) {
			const secrets: string[] = [];
			const value = (): unknown => {
				const r = rnd();
				if (r < 0.3) return Math.floor(rnd() * 1e6);
				if (r < 0.4) return rnd() < 0.5;
				if (r < 0.45) return [1, 2];
				if (r < 0.5) return rnd() * 10;
				return `v${Math.floor(rnd() * 1e9)}`;
			};
			const tree = (depth: number): Record<string, unknown> => {
				const out: Record<string, unknown> = {};
				const n = 1 + Math.floor(rnd() * 5);
				for (let i = 0; i < n; i++) {
					const r = rnd();
					if (r < 0.2) {
						const s = `S3cr3t-${run}-${i}-${depth}-${Math.floor(rnd() * 1e9)}`;
						secrets.push(s);
						out[pick(secretNames)] = s;
					} else if (r < 0.45 && depth < 5) {
						out[pick(plainNames)] = tree(depth + 1);
					} else {
						out[pick(plainNames)] = value();
					}
				}
				return out;
			};
			const tags: Record<string, unknown> = tree(0);
			// Params, meta and answers of any action, whatever they hold.
			for (const head of ["params", "meta", "response"]) {
				if (rnd() < 0.6) {
					const s = `Hidden-${head}-${run}-${Math.floor(rnd() * 1e9)}`;
					secrets.push(s);
					tags[head] = { ...tree(1), email: s, nested: { deep: s } };
				}
			}
			const { attributes, dropped } = attributesOf(tags);
			const text = JSON.stringify(attributes);
			for (const s of secrets) assert.equal(text.includes(s), false, `seed run ${run}: ${s} exported`);
			assert.ok(attributes.length <= 64);
			assert.ok(dropped >= 0);
			for (const a of attributes) {
				assert.match(a.key, /^moleculer\.|^http\.request\.method$|^url\.path$/);
				assert.doesNotMatch(a.key, /^moleculer\.(params|meta|response)(\.|$)/, `run ${run}: ${a.key}`);
				const v = a.value;
				if ("stringValue" in v) assert.ok(v.stringValue.length <= 512);
				if ("intValue" in v) assert.match(v.intValue, /^-?\d+$/);
			}
		}
	});
});

interface Sent {
	url: string;
	headers: Record<string, string>;
	body: OtlpExportRequest;
}

/** A broker whose tracer has only this exporter; spans made by hand through the tracer. */
function brokerWith(exporter: OtlpTraceExporter): ServiceBroker {
	return new ServiceBroker({ logger: false, nodeID: "unit-node", metrics: { enabled: true }, tracing: { enabled: true, exporter: [exporter as never] } });
}

const options = (over: Partial<OtlpOptions> = {}): OtlpOptions => ({
	url: "http://collector.test/v1/traces", headers: { "x-api-key": "k-123" }, serviceName: "paymesh-ledger", namespace: "ns",
	scheduleDelayMs: 20, batchSizeMax: 10, queueMax: 50, timeoutMs: 200, ...over,
});

function finishSpans(broker: ServiceBroker, n: number, traceID = "t-1"): void {
	for (let i = 0; i < n; i++) broker.tracer.startSpan(`custom ${i}`, { traceID, service: "ledger" }).finish();
}

describe("OTLP exporter", () => {
	it("sends batches of at most the batch size with the resource and headers, counting what it exported", async () => {
		const sent: Sent[] = [];
		const exporter = new OtlpTraceExporter(options(), async (url, init) => {
			sent.push({ url: String(url), headers: init?.headers as Record<string, string>, body: JSON.parse(String(init?.body)) as OtlpExportRequest });
			return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
		});
		const broker = brokerWith(exporter);
		await broker.start();
		try {
			finishSpans(broker, 25);
			await until("25 spans exported", () => exporter.counts.exported === 25, 5_000, 5);
			const sizes = sent.map(s => s.body.resourceSpans[0]?.scopeSpans[0]?.spans.length ?? 0);
			assert.ok(sizes.every(n => n >= 1 && n <= 10), `batches ${sizes.join(",")}`);
			assert.equal(sizes.reduce((a, b) => a + b, 0), 25);
			const first = sent[0];
			assert.ok(first);
			assert.equal(first.url, "http://collector.test/v1/traces");
			assert.deepEqual([first.headers["content-type"], first.headers["x-api-key"]], ["application/json", "k-123"]);
			const resource = Object.fromEntries(first.body.resourceSpans[0]?.resource.attributes.map(a => [a.key, a.value]) ?? []);
			assert.deepEqual(resource["service.name"], { stringValue: "paymesh-ledger" });
			assert.deepEqual(resource["service.instance.id"], { stringValue: "unit-node" });
			assert.deepEqual(resource["service.namespace"], { stringValue: "ns" });
			assert.equal(broker.metrics.getMetric(OTLP_SPANS_METRIC)?.get({ outcome: "exported" })?.value, 25);
		} finally {
			await broker.stop();
		}
	});

	it("drops and counts spans past a full queue without waiting, and abandons a collector that never answers at the timeout", async () => {
		let calls = 0;
		let aborted = 0;
		// A collector that takes the request and never answers (until the exporter gives up).
		const exporter = new OtlpTraceExporter(options({ batchSizeMax: 5, queueMax: 20, scheduleDelayMs: 60_000, timeoutMs: 150 }), (_url, init) => {
			calls += 1;
			return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => (aborted += 1, reject(new Error("aborted")))));
		});
		const broker = brokerWith(exporter);
		await broker.start();
		try {
			// Spans finish synchronously whatever the collector does: nothing here awaits it.
			finishSpans(broker, 100);
			// The first full batch left at once (and hangs); the queue holds at most 20, the rest are dropped.
			const queuedMax = 20;
			assert.equal(calls, 1);
			assert.equal(exporter.counts.dropped, 100 - 5 - queuedMax);
			await until("the hanging batches abandoned", () => exporter.counts.failed === 100 - exporter.counts.dropped, 10_000, 10);
			assert.equal(aborted, calls, "every request was abandoned at its timeout");
			assert.equal(calls, 5, "each batch tried once, not retried");
			assert.equal(exporter.counts.exported, 0);
			assert.equal(broker.metrics.getMetric(OTLP_SPANS_METRIC)?.get({ outcome: "dropped" })?.value, 75);
			assert.equal(broker.metrics.getMetric(OTLP_SPANS_METRIC)?.get({ outcome: "failed" })?.value, 25);
		} finally {
			await broker.stop();
		}
	});

	it("counts a refusing collector's batches as failed and sends what is queued when the broker stops", async () => {
		let status = 503;
		const got: number[] = [];
		const exporter = new OtlpTraceExporter(options({ scheduleDelayMs: 60_000, batchSizeMax: 100 }), async (_url, init) => {
			got.push((JSON.parse(String(init?.body)) as OtlpExportRequest).resourceSpans[0]?.scopeSpans[0]?.spans.length ?? 0);
			return new Response("", { status });
		});
		const broker = brokerWith(exporter);
		await broker.start();
		finishSpans(broker, 3);
		await exporter.flush();
		assert.deepEqual([exporter.counts.failed, exporter.counts.exported], [3, 0]);
		status = 200;
		finishSpans(broker, 4);
		// No tick before stop (the delay is a minute): stop sends them.
		await broker.stop();
		assert.deepEqual(got, [3, 4]);
		assert.equal(exporter.counts.exported, 4);
	});
});

describe("tracing options", () => {
	it("turn the tracer on with the OTLP exporter only when OTEL_EXPORTER_OTLP_ENDPOINT is set, never with params, meta or answers", () => {
		const base = { JWT_SECRET: "unit-secret-0123456789-abcdefghijklmnopqrstuvwx" };
		assert.deepEqual(tracingOptions(loadConfig(base)), { enabled: false });
		const on = tracingOptions(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel:4318/", ROLE: "ledger", OTEL_TRACES_SAMPLER_ARG: "0.25" }));
		assert.equal(on.enabled, true);
		const exporters = (on as { exporter: unknown[] }).exporter;
		assert.equal(exporters.length, 1);
		assert.ok(exporters[0] instanceof OtlpTraceExporter);
		assert.deepEqual((on as { sampling: unknown }).sampling, { rate: 0.25 });
		assert.deepEqual((on as { tags: unknown }).tags, { action: { params: false, meta: false, response: false }, event: { params: false, meta: false } });
		const both = tracingOptions(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel:4318", TRACING_EXPORTER: "event" }));
		assert.equal((both as { exporter: unknown[] }).exporter.length, 2);
	});
});
