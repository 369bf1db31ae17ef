/**
 * Fixed-window counters for rate limits and login throttling. With REDIS_URL the counts
 * live in Redis (INCR and PEXPIRE in one script), so a limit holds across every gateway
 * node; without, in this process's memory, bounded in size.
 *
 * While Redis is away every call fails at once with a retryable COUNTERS_UNAVAILABLE
 * (503), never waiting for Redis to come back: each caller decides what that means. The
 * gateway's rate limits count in this node's memory meanwhile (FallbackCounterStore), so a
 * limit still holds on each node; login throttling refuses the login.
 */
import { Redis } from "ioredis";
import { FAIL_FAST_REDIS_OPTIONS, REDIS_COMMAND_TIMEOUT_MS, redisOptions, redisReady } from "./redis.ts";
import { withTimeout } from "./timeout.ts";
import { unavailable } from "./errors.ts";

export interface Hit {
	count: number;
	resetMs: number;
}

export interface CounterStore {
	hit(key: string, windowMs: number): Promise<Hit>;
	peek(key: string): Promise<Hit | null>;
	/**
	 * Takes back one hit of the current window (never below zero, never starting a window):
	 * for a caller that counts an attempt first, atomically, and learns afterwards that it
	 * should not have counted (a login whose password was right).
	 */
	undo(key: string): Promise<void>;
	reset(key: string): Promise<void>;
	/** Resolves true once the store answers, false if it does not within `timeoutMs`. */
	ready(timeoutMs: number): Promise<boolean>;
	close(): Promise<void>;
}

const MEMORY_KEYS_MAX = 100_000;

export class MemoryCounterStore implements CounterStore {
	private readonly counts = new Map<string, { count: number; resetAt: number }>();

	async hit(key: string, windowMs: number): Promise<Hit> {
		const now = Date.now();
		let c = this.counts.get(key);
		if (!c || c.resetAt <= now) {
			if (this.counts.size >= MEMORY_KEYS_MAX) this.sweep(now);
			c = { count: 0, resetAt: now + windowMs };
			this.counts.set(key, c);
		}
		c.count += 1;
		return { count: c.count, resetMs: c.resetAt - now };
	}

	async peek(key: string): Promise<Hit | null> {
		const c = this.counts.get(key);
		const now = Date.now();
		return c && c.resetAt > now ? { count: c.count, resetMs: c.resetAt - now } : null;
	}

	async undo(key: string): Promise<void> {
		const c = this.counts.get(key);
		if (c && c.resetAt > Date.now() && c.count > 0) c.count -= 1;
	}

	async reset(key: string): Promise<void> {
		this.counts.delete(key);
	}

	async ready(): Promise<boolean> {
		return true;
	}

	async close(): Promise<void> {
		this.counts.clear();
	}

	private sweep(now: number): void {
		for (const [k, c] of this.counts) if (c.resetAt <= now) this.counts.delete(k);
		// Still full of live windows: drop the oldest half rather than grow without bound.
		if (this.counts.size >= MEMORY_KEYS_MAX) [...this.counts.keys()].slice(0, MEMORY_KEYS_MAX / 2).forEach(k => this.counts.delete(k));
	}
}

/** INCR, PEXPIRE NX and PTTL as one script: atomic as a MULTI was, but a single command. */
const HIT_SCRIPT = `local c = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return {c, redis.call('PTTL', KEYS[1])}`;

/** DECR only an existing, positive counter: a bare DECR on an expired key would leave -1 without a TTL. */
const UNDO_SCRIPT = `if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0`;

type ScriptedRedis = Redis & { paymeshHit(key: string, windowMs: number): Promise<[number, number]>; paymeshUndo(key: string): Promise<number> };

export class RedisCounterStore implements CounterStore {
	private readonly redis: ScriptedRedis;
	private readonly prefix: string;

	constructor(url: string, prefix: string) {
		// redisOptions turns on auto-pipelining: under load a gateway's many rate-limit checks
		// cost Redis and the gateway one round trip per event-loop turn, not one per check. It
		// applies to single commands, hence the script instead of MULTI.
		const redis = new Redis({ ...redisOptions(url), ...FAIL_FAST_REDIS_OPTIONS, connectTimeout: 2_000 });
		redis.defineCommand("paymeshHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
		redis.defineCommand("paymeshUndo", { numberOfKeys: 1, lua: UNDO_SCRIPT });
		// Failures reach the callers; the client's own error events would only repeat them.
		redis.on("error", () => undefined);
		this.redis = redis as ScriptedRedis;
		this.prefix = prefix;
	}

	async hit(key: string, windowMs: number): Promise<Hit> {
		const [count, ttl] = await this.answer(this.redis.paymeshHit(this.prefix + key, windowMs));
		return { count: Number(count), resetMs: Number(ttl) > 0 ? Number(ttl) : windowMs };
	}

	async peek(key: string): Promise<Hit | null> {
		const k = this.prefix + key;
		const res = await this.answer(this.redis.multi().get(k).pttl(k).exec());
		const count = Number(res?.[0]?.[1] ?? 0);
		const ttl = Number(res?.[1]?.[1] ?? 0);
		return count > 0 && ttl > 0 ? { count, resetMs: ttl } : null;
	}

	async undo(key: string): Promise<void> {
		await this.answer(this.redis.paymeshUndo(this.prefix + key));
	}

	async reset(key: string): Promise<void> {
		await this.answer(this.redis.del(this.prefix + key));
	}

	ready(timeoutMs: number): Promise<boolean> {
		return redisReady(this.redis, timeoutMs);
	}

	async close(): Promise<void> {
		this.redis.disconnect();
	}

	private async answer<T>(p: Promise<T>): Promise<T> {
		try {
			return await withTimeout(p, REDIS_COMMAND_TIMEOUT_MS);
		} catch (err) {
			throw Object.assign(unavailable("COUNTERS_UNAVAILABLE", "the rate-limit store is unavailable, retry later"), { cause: err });
		}
	}
}

/**
 * Counts in `shared` and, while it cannot answer, in this node's memory: a limit still holds
 * on each node (a client spread over N gateways gets up to N times it until the shared store
 * is back), instead of none at all. `onFallback` hears each failure of the shared store
 * (the caller rate-limits its own warnings).
 */
export class FallbackCounterStore implements CounterStore {
	private readonly shared: CounterStore;
	private readonly local = new MemoryCounterStore();
	private readonly onFallback: (err: unknown) => void;
	/** Calls answered from this node's memory since start (tests read it). */
	fallbacks = 0;

	constructor(shared: CounterStore, onFallback: (err: unknown) => void) {
		this.shared = shared;
		this.onFallback = onFallback;
	}

	hit(key: string, windowMs: number): Promise<Hit> {
		return this.shared.hit(key, windowMs).catch(err => this.fallBack(err, () => this.local.hit(key, windowMs)));
	}

	peek(key: string): Promise<Hit | null> {
		return this.shared.peek(key).catch(err => this.fallBack(err, () => this.local.peek(key)));
	}

	undo(key: string): Promise<void> {
		return this.shared.undo(key).catch(err => this.fallBack(err, () => this.local.undo(key)));
	}

	async reset(key: string): Promise<void> {
		await this.local.reset(key);
		await this.shared.reset(key).catch(err => this.fallBack(err, () => Promise.resolve()));
	}

	ready(timeoutMs: number): Promise<boolean> {
		return this.shared.ready(timeoutMs);
	}

	async close(): Promise<void> {
		await Promise.all([this.shared.close(), this.local.close()]);
	}

	private fallBack<T>(err: unknown, local: () => Promise<T>): Promise<T> {
		this.fallbacks += 1;
		this.onFallback(err);
		return local();
	}
}

export function createCounterStore(redisUrl: string | null, prefix: string): CounterStore {
	return redisUrl ? new RedisCounterStore(redisUrl, prefix) : new MemoryCounterStore();
}
