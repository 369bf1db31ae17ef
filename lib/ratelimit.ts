/**
 * Fixed-window counters for rate limits and login throttling. With REDIS_URL the counts
 * live in Redis (INCR and PEXPIRE in one script), so a limit holds across every gateway
 * node; without, in this process's memory, bounded in size.
 */
import { Redis } from "ioredis";
import { redisOptions } from "./redis.ts";

export interface Hit {
	count: number;
	resetMs: number;
}

export interface CounterStore {
	hit(key: string, windowMs: number): Promise<Hit>;
	peek(key: string): Promise<Hit | null>;
	reset(key: string): Promise<void>;
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

	async reset(key: string): Promise<void> {
		this.counts.delete(key);
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

type ScriptedRedis = Redis & { paymeshHit(key: string, windowMs: number): Promise<[number, number]> };

export class RedisCounterStore implements CounterStore {
	private readonly redis: ScriptedRedis;
	private readonly prefix: string;

	constructor(url: string, prefix: string) {
		// redisOptions turns on auto-pipelining: under load a gateway's many rate-limit checks
		// cost Redis and the gateway one round trip per event-loop turn, not one per check. It
		// applies to single commands, hence the script instead of MULTI.
		const redis = new Redis({ ...redisOptions(url), maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2_000 });
		redis.defineCommand("paymeshHit", { numberOfKeys: 1, lua: HIT_SCRIPT });
		this.redis = redis as ScriptedRedis;
		this.prefix = prefix;
	}

	async hit(key: string, windowMs: number): Promise<Hit> {
		const [count, ttl] = await this.redis.paymeshHit(this.prefix + key, windowMs);
		return { count: Number(count), resetMs: Number(ttl) > 0 ? Number(ttl) : windowMs };
	}

	async peek(key: string): Promise<Hit | null> {
		const k = this.prefix + key;
		const res = await this.redis.multi().get(k).pttl(k).exec();
		const count = Number(res?.[0]?.[1] ?? 0);
		const ttl = Number(res?.[1]?.[1] ?? 0);
		return count > 0 && ttl > 0 ? { count, resetMs: ttl } : null;
	}

	async reset(key: string): Promise<void> {
		await this.redis.del(this.prefix + key);
	}

	async close(): Promise<void> {
		this.redis.disconnect();
	}
}

export function createCounterStore(redisUrl: string | null, prefix: string): CounterStore {
	return redisUrl ? new RedisCounterStore(redisUrl, prefix) : new MemoryCounterStore();
}
