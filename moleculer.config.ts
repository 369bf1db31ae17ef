/**
 * Broker settings, all derived from the validated config. Every limit is set explicitly:
 * Moleculer's defaults of 0 mean "unlimited" for several of them.
 */
import { Errors, MetricReporters, type BrokerOptions, type MetricRegistry, type TracerOptions } from "moleculer";
import { readFileSync } from "node:fs";
import type { Config } from "./config/index.ts";
import { transitEncryption } from "./lib/transit-crypto.ts";
import { callerIdentityMiddleware } from "./lib/caller-identity.ts";
import { InFlightMiddleware, LeastRequestsStrategy } from "./lib/balancer.ts";
import { ContextStoreMiddleware } from "./lib/context-store.ts";
import { CompiledOnceValidator } from "./lib/validator.ts";
import { FAIL_FAST_REDIS_OPTIONS, redisOptions } from "./lib/redis.ts";
import { FailOpenRedisCacher } from "./lib/cacher.ts";
import { OtlpTraceExporter } from "./lib/otlp.ts";
import { FastJSONExtSerializer } from "./lib/serializer.ts";

/**
 * Prometheus reporter that opens no port of its own: the gateway serves its text at
 * /metrics, so a node exposes one HTTP port whatever it runs.
 */
export class GatewayPrometheusReporter extends MetricReporters.Prometheus {
	override init(registry: MetricRegistry): void {
		MetricReporters.Base.prototype.init.call(this, registry);
		const labels = (this.opts as { defaultLabels?: unknown }).defaultLabels;
		(this as unknown as { defaultLabels: unknown }).defaultLabels = typeof labels === "function" ? labels.call(this, registry) : labels;
	}

	override stop(): Promise<void> {
		return Promise.resolve();
	}
}

/** Structured log objects print as one JSON line; errors keep their stack. */
function printLogObject(o: unknown): string {
	if (o instanceof Error) return o.stack ?? `${o.name}: ${o.message}`;
	return JSON.stringify(o, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/** Retrying a timed-out call could run a slow debit twice: timeouts are never retried. */
export function isRetryable(err: Error): boolean {
	if (err instanceof Errors.RequestTimeoutError) return false;
	return Boolean((err as Errors.MoleculerError).retryable);
}

/** NATS options: URL, reconnecting for ever, and the credentials and TLS the config gives. */
export function natsOptions(config: Config): Record<string, unknown> {
	const t = config.transit;
	const tls = t.natsTls
		? {
			...(t.natsTlsCaFile ? { ca: readFileSync(t.natsTlsCaFile) } : {}),
			...(t.natsTlsCertFile ? { cert: readFileSync(t.natsTlsCertFile) } : {}),
			...(t.natsTlsKeyFile ? { key: readFileSync(t.natsTlsKeyFile) } : {}),
		}
		: null;
	return {
		url: config.transporter, maxReconnectAttempts: -1,
		...(t.natsToken ? { token: t.natsToken } : {}),
		...(t.natsUser ? { user: t.natsUser, pass: t.natsPassword ?? "" } : {}),
		...(tls ? { tls } : {}),
	};
}

/**
 * With a transporter every packet is sealed and checked (lib/transit-crypto.ts); the config
 * refuses a transporter without TRANSIT_KEY. `now` is the clock the replay window is read by.
 */
export function transitMiddleware(config: Config, now: () => number = Date.now): never[] {
	const t = config.transit;
	if (!config.transporter || !t.encryptionKey) return [];
	return [transitEncryption({
		key: t.encryptionKey, previousKeys: t.previousKeys, now,
		replayWindowMs: t.replayWindowS * 1_000, clockSkewMs: t.clockSkewS * 1_000, replayCacheMax: t.replayCacheMax,
	}) as never];
}

/**
 * The gateway-signed caller identity (lib/caller-identity.ts): a gateway node signs what it
 * calls for its users on other nodes (in its own process a call carries an intent), every
 * node checks its guarded actions. Where signatures are not required (one process: no bus a
 * call could come over) the gateway does not sign, as a call without an assertion is taken
 * anyway. `now`: the clock assertions are signed and checked by (tests inject one).
 */
export function callerIdentity(config: Config, now: () => number = Date.now): never[] {
	const c = config.callerIdentity;
	const signs = config.services.includes("api") && c.required;
	return [callerIdentityMiddleware({ verifyKeys: c.verifyKeys, signingKey: signs ? c.signingKey : null, required: c.required, now }) as never];
}

/**
 * Spans carry the request id (ctx.requestID) as their trace id and the caller's span as
 * their parent, so one HTTP request's gateway, payments and ledger spans form one trace
 * across nodes. They go to the exporters TRACING_EXPORTER names and, with
 * OTEL_EXPORTER_OTLP_ENDPOINT, to an OpenTelemetry collector (lib/otlp.ts).
 */
export function tracingOptions(config: Config): TracerOptions {
	const { exporter, otlp } = config.tracing;
	if (exporter === "none" && !otlp) return { enabled: false };
	const exporters: unknown[] = [];
	if (exporter === "console") exporters.push({ type: "Console" });
	if (exporter === "event") exporters.push({ type: "Event", options: { eventName: "paymesh.tracing.spans", sendStartSpan: false, interval: 1, broadcast: true } });
	if (otlp) {
		exporters.push(new OtlpTraceExporter({
			url: otlp.url, headers: otlp.headers, serviceName: otlp.serviceName, namespace: config.namespace,
			scheduleDelayMs: otlp.scheduleDelayMs, batchSizeMax: otlp.batchSizeMax, queueMax: otlp.queueMax, timeoutMs: otlp.timeoutMs,
		}));
	}
	return {
		enabled: true,
		// An instance is accepted at run time; the typings only list exporter names.
		exporter: exporters as never,
		// A trace is sampled at its root and the decision travels with its calls: kept or dropped whole.
		sampling: { rate: otlp?.sampleRate ?? 1 },
		// Spans leave the node (the event exporter broadcasts them to every node, OTLP sends them
		// to a collector): they never carry params, meta or answers, which hold passwords, one-time
		// codes and tokens (auth's login, register, refresh, MFA). lib/otlp.ts drops them again.
		tags: { action: { params: false, meta: false, response: false }, event: { params: false, meta: false } },
	};
}

/** `now`: the clock the transit replay window and caller assertions are read by (tests inject one). */
export function brokerOptions(config: Config, opts: { now?: () => number } = {}): BrokerOptions {
	return {
		namespace: config.namespace,
		nodeID: config.nodeId ?? undefined,
		transporter: config.transporter ? { type: "NATS", options: natsOptions(config) } : undefined,
		middlewares: [ContextStoreMiddleware as never, InFlightMiddleware as never, ...transitMiddleware(config, opts.now), ...callerIdentity(config, opts.now)],
		// Moleculer's JSONExt wire format, with less work per value (lib/serializer.ts).
		serializer: new FastJSONExtSerializer(),
		logger: {
			type: "Console",
			options: { level: config.logLevel, formatter: config.logFormat, objectPrinter: printLogObject },
		},
		// Redis down or slow is a cache miss, never a stalled or failed call (lib/cacher.ts).
		cacher: config.redisUrl
			? new FailOpenRedisCacher({ prefix: `${config.namespace}-cache`, ttl: 30, redis: { ...redisOptions(config.redisUrl), ...FAIL_FAST_REDIS_OPTIONS }, integritySecret: config.auth.jwtSecret })
			: { type: "MemoryLRU", options: { max: 10_000, ttl: 30 } },
		requestTimeout: config.requestTimeoutMs,
		maxCallLevel: config.maxCallLevel,
		heartbeatInterval: config.heartbeatIntervalS,
		heartbeatTimeout: config.heartbeatTimeoutS,
		tracking: { enabled: true, shutdownTimeout: config.shutdownTimeoutMs },
		disableBalancer: false,
		// Of two nodes, the one with fewer of this node's calls unanswered (lib/balancer.ts); BALANCER=round-robin for Moleculer's own.
		registry: { strategy: config.balancer === "least-requests" ? LeastRequestsStrategy : "RoundRobin", preferLocal: true },
		retryPolicy: { enabled: true, retries: 3, delay: 100, maxDelay: 2_000, factor: 2, check: isRetryable },
		circuitBreaker: {
			enabled: true,
			threshold: 0.5,
			minRequestCount: 20,
			windowTime: 60,
			halfOpenTime: 10_000,
			check: (err: Error) => (err as Errors.MoleculerError).code >= 500,
		},
		bulkhead: { enabled: true, concurrency: config.bulkheadConcurrency, maxQueueSize: config.bulkheadQueueSizeMax },
		validator: new CompiledOnceValidator(),
		metrics: {
			enabled: config.metricsEnabled,
			// An instance is accepted at run time; the typings only list reporter names.
			reporter: [new GatewayPrometheusReporter({ defaultLabels: () => ({ namespace: config.namespace }) }) as never],
		},
		tracing: tracingOptions(config),
	};
}
