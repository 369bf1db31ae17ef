/**
 * The Redis cacher, failing open. A cache is an optimisation: while Redis is down or slow
 * a lookup is a miss (the action runs and reads the database), and a failed store or
 * invalidation is logged, not thrown. Moleculer's own Redis cacher rejects instead, and
 * with ioredis's offline queue a lookup waited for Redis to come back: payments stalled
 * for as long as Redis was away, and its unhandled `set` rejection could end the process.
 *
 * The client is made with FAIL_FAST_REDIS_OPTIONS (lib/redis.ts): a lookup during an
 * outage fails at once, and each command is bounded here by REDIS_COMMAND_TIMEOUT_MS
 * (withTimeout, which reads a reply that arrived in time on a busy node before giving up). A clean, several SCANs, is bounded here. Failures are logged at most
 * once per CACHE_WARN_INTERVAL_MS and counted in the `paymesh_cache_failures` metric, by
 * operation.
 *
 * Entries are sealed (lib/redis.ts, redisSeal): each value is stored with an HMAC bound to
 * its key, and an entry that does not verify (planted by someone else with access to Redis,
 * moved from another key, or written before sealing) is a miss, counted as op "forged".
 * The sealed value carries its expiry (the write time plus its TTL, on this node's clock),
 * so an entry recorded earlier and planted back later without a TTL (a user's old tier,
 * after staff lowered it) is a miss too, counted as op "expired": Redis's own TTL is not
 * trusted, as whoever can write to Redis can also drop it.
 */
import { Cachers, type ServiceBroker } from "moleculer";
import { withTimeout } from "./timeout.ts";
import { REDIS_COMMAND_TIMEOUT_MS, redisSeal, type RedisSeal } from "./redis.ts";

/** A clean runs several SCAN and DEL commands; together they get a few commands' time. */
const CACHE_CLEAN_TIMEOUT_MS = REDIS_COMMAND_TIMEOUT_MS * 4;
const CACHE_WARN_INTERVAL_MS = 10_000;
export const CACHE_FAILURES_METRIC = "paymesh.cache.failures";

type RedisCacherOptions = ConstructorParameters<typeof Cachers.Redis>[0];

/** An entry stored without a TTL (none given and no default) still expires after this. */
export const CACHE_ENTRY_LIFETIME_MAX_S = 3_600;

export class FailOpenRedisCacher extends Cachers.Redis {
	private warnedAtMs = 0;
	private readonly sealer: RedisSeal;
	/** Operations that failed and were served as a miss or skipped, since start (tests read it; operators read the metric). */
	failures = 0;

	private readonly nowMs: () => number;

	/** `integritySecret`: the cluster's shared secret the entries' seal is derived from; `now`: the clock entries expire by (tests inject one). */
	constructor(opts: RedisCacherOptions & { integritySecret: string; now?: () => number }) {
		const { integritySecret, now, ...rest } = opts;
		super(rest);
		this.sealer = redisSeal(integritySecret);
		this.nowMs = now ?? Date.now;
	}

	override init(broker: ServiceBroker): void {
		super.init(broker);
		if (broker.isMetricsEnabled() && !broker.metrics.getMetric(CACHE_FAILURES_METRIC)) {
			broker.metrics.register({ type: "counter", name: CACHE_FAILURES_METRIC, labelNames: ["op"], description: "Redis cache operations that failed and were served as a miss or skipped" });
		}
		// Moleculer logs every failed reconnect as an error (several a second during an
		// outage); the outage is reported once per interval instead.
		const client = this.client as { removeAllListeners(event: string): void; on(event: string, fn: (err: Error) => void): void };
		client.removeAllListeners("error");
		client.on("error", err => {
			// While false, Moleculer's cache middleware calls the action without a lookup; "ready" sets it back.
			(this as unknown as { connected: boolean | null }).connected = false;
			this.failed("connection", err);
		});
	}

	/** QUIT cannot be sent on a closed connection (no offline queue): then the client is just dropped. */
	override async close(): Promise<void> {
		try {
			await super.close();
		} catch {
			(this.client as { disconnect(): void }).disconnect();
		}
	}

	override async get(key: string): Promise<Record<string, unknown> | null> {
		let stored: unknown;
		try {
			stored = await withTimeout(super.get(key), REDIS_COMMAND_TIMEOUT_MS);
		} catch (err) {
			this.failed("get", err);
			return this.opts.missingResponse as null;
		}
		if (stored === null || stored === undefined || stored === this.opts.missingResponse) return this.opts.missingResponse as null;
		const opened = typeof stored === "string" ? this.sealer.open(`${this.prefix ?? ""}${key}`, Buffer.from(stored, "base64")) : null;
		if (opened === null) {
			this.failed("forged", new Error("a cache entry failed its integrity check"));
			return this.opts.missingResponse as null;
		}
		// The sealed value: the expiry in ms since the epoch, a newline, the JSON.
		const text = opened.toString("utf8");
		const cut = text.indexOf("\n");
		const expiresAtMs = Number(text.slice(0, cut));
		if (cut < 0 || !Number.isSafeInteger(expiresAtMs) || this.nowMs() >= expiresAtMs) {
			this.failed("expired", new Error("a sealed cache entry was read after its expiry"));
			return this.opts.missingResponse as null;
		}
		return JSON.parse(text.slice(cut + 1)) as Record<string, unknown>;
	}

	/** Only `get` is sealed; the lock-based lookup that would read around it is not offered. */
	override getWithTTL(): Promise<never> {
		return Promise.reject(new Error("FailOpenRedisCacher: cache locks are not supported (entries are sealed)"));
	}

	override async set(key: string, data: unknown, ttl?: number): Promise<void> {
		try {
			const ttlS = ttl ?? this.opts.ttl ?? null;
			const lifetimeS = ttlS !== null && ttlS > 0 ? Math.min(ttlS, CACHE_ENTRY_LIFETIME_MAX_S) : CACHE_ENTRY_LIFETIME_MAX_S;
			const payload = Buffer.from(`${this.nowMs() + lifetimeS * 1000}\n${JSON.stringify(data) ?? "null"}`, "utf8");
			await withTimeout(super.set(key, this.sealer.seal(`${this.prefix ?? ""}${key}`, payload).toString("base64"), ttlS !== null && ttlS > 0 ? ttlS : lifetimeS), REDIS_COMMAND_TIMEOUT_MS);
		} catch (err) {
			this.failed("set", err);
		}
	}

	override async del(key: string | string[]): Promise<void> {
		try {
			await withTimeout(super.del(key), REDIS_COMMAND_TIMEOUT_MS);
		} catch (err) {
			this.failed("del", err);
		}
	}

	/** An invalidation that fails leaves entries to expire by their TTL. */
	override async clean(match?: string | string[]): Promise<void> {
		try {
			await withTimeout(super.clean(match), CACHE_CLEAN_TIMEOUT_MS);
		} catch (err) {
			this.failed("clean", err);
		}
	}

	private failed(op: string, err: unknown): void {
		this.failures += 1;
		if (this.broker.isMetricsEnabled()) this.broker.metrics.increment(CACHE_FAILURES_METRIC, { op });
		const now = Date.now();
		if (now - this.warnedAtMs < CACHE_WARN_INTERVAL_MS) return;
		this.warnedAtMs = now;
		this.logger.warn("redis cache unavailable; served as a miss", { op, error: (err as Error).message, failures: this.failures });
	}
}
