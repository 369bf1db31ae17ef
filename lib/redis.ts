/**
 * One place for how Paymesh talks to Redis, so the cacher and the rate-limit counters
 * connect the same way.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";

/**
 * ioredis options from a redis:// or rediss:// URL, with auto-pipelining: the commands of
 * one event-loop turn leave in one write. Under load that turns a cache lookup per call into
 * one round trip per turn for all of them. Moleculer's Redis cacher takes options, not a
 * URL with extras; the rate-limit counters take the same options.
 */
export function redisOptions(url: string): Record<string, unknown> {
	const u = new URL(url);
	const db = Number(u.pathname.slice(1) || 0);
	return {
		host: u.hostname, port: Number(u.port || 6379), db: Number.isInteger(db) ? db : 0,
		...(u.username ? { username: decodeURIComponent(u.username) } : {}),
		...(u.password ? { password: decodeURIComponent(u.password) } : {}),
		...(u.protocol === "rediss:" ? { tls: {} } : {}),
		enableAutoPipelining: true,
	};
}

/**
 * How long one cache or counter command may take before the caller goes on without Redis.
 * Callers bound each command with withTimeout (lib/timeout.ts), which reads a reply that
 * arrived in time before it gives up: ioredis's own timer fires before the event loop reads
 * its socket, so on a node at its CPU cap, 250 ms behind, every command "timed out" with
 * its reply waiting unread (the scale bench's gateways: their rate limits skipped, and
 * more CPU per request spent on the failures).
 */
export const REDIS_COMMAND_TIMEOUT_MS = 250;

/**
 * ioredis's own bound on a command: a backstop that frees the commands of a Redis that hangs
 * while connected (callers have stopped waiting after REDIS_COMMAND_TIMEOUT_MS).
 */
export const REDIS_COMMAND_BACKSTOP_MS = 5_000;

/**
 * ioredis options for clients whose callers have an answer without Redis (the cache, the
 * rate limits): commands are neither queued while disconnected nor retried, so during an
 * outage a command fails at once instead of waiting for Redis; each is bounded by its caller
 * (REDIS_COMMAND_TIMEOUT_MS) and by ioredis (REDIS_COMMAND_BACKSTOP_MS).
 */
export const FAIL_FAST_REDIS_OPTIONS = { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: REDIS_COMMAND_BACKSTOP_MS } as const;

/** Resolves true once the client is connected and ready, or false after `timeoutMs`. */
export function redisReady(redis: { status: string; once(event: "ready", fn: () => void): unknown; off(event: "ready", fn: () => void): unknown }, timeoutMs: number): Promise<boolean> {
	if (redis.status === "ready") return Promise.resolve(true);
	return new Promise(resolve => {
		const onReady = () => {
			clearTimeout(timer);
			resolve(true);
		};
		const timer = setTimeout(() => {
			redis.off("ready", onReady);
			resolve(false);
		}, timeoutMs);
		redis.once("ready", onReady);
	});
}


/**
 * Integrity of what Paymesh reads back from Redis (issue 16, finding 9). Redis is shared
 * infrastructure: whoever can write to it could plant a cache entry (a user's tier) or a
 * Socket.IO fan-out message (someone's balance, or a room join). Every value Paymesh stores
 * there for another node to trust carries an HMAC-SHA256 under a key every node derives from
 * the shared JWT_SECRET, bound to its context (the cache key, the channel's namespace); what
 * does not verify is treated as absent. Counters (lib/ratelimit.ts) cannot be signed: their
 * protection is Redis's own authentication, which a cluster's REDIS_URL must carry (config).
 */
export interface RedisSeal {
	/** `payload` prefixed with its tag for `context`. */
	seal(context: string, payload: Buffer): Buffer;
	/** The payload if its tag for `context` verifies, else null. */
	open(context: string, sealed: Buffer): Buffer | null;
}

const REDIS_SEAL_TAG_BYTES = 32;

export function redisSeal(secret: string): RedisSeal {
	const key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "paymesh:redis-integrity:v1", 32));
	const tag = (context: string, payload: Buffer) => createHmac("sha256", key).update(context).update("\n").update(payload).digest();
	return {
		seal: (context, payload) => Buffer.concat([tag(context, payload), payload]),
		open(context, sealed) {
			if (sealed.length < REDIS_SEAL_TAG_BYTES) return null;
			const payload = sealed.subarray(REDIS_SEAL_TAG_BYTES);
			return timingSafeEqual(sealed.subarray(0, REDIS_SEAL_TAG_BYTES), tag(context, payload)) ? payload : null;
		},
	};
}
