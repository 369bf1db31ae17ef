/**
 * One place for how Paymesh talks to Redis, so the cacher and the rate-limit counters
 * connect the same way.
 */

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
