/**
 * Socket.IO fan-out between gateway nodes over Redis pub/sub, sealed (issue 16, finding 9).
 *
 * A push to a user's room reaches the sockets on every gateway: the node that emits it
 * publishes it on one Redis channel and every other node delivers it to its own sockets.
 * Redis is shared infrastructure, so what arrives is not trusted: each message carries an
 * HMAC (lib/redis.ts, redisSeal) under a key derived from the cluster's JWT_SECRET and bound
 * to the channel, a sending time and an id; a message that does not verify, is older than
 * FANOUT_MESSAGE_AGE_MS_MAX (or that far in the future), was sent before this node started
 * listening (less FANOUT_CLOCK_SKEW_MS: a restarted node has forgotten the ids it saw, so
 * it accepts nothing it could not have seen), was seen already, or is larger than any push
 * is dropped before or after its HMAC and counted. The seen ids are bounded: when
 * FANOUT_SEEN_IDS_MAX ids are all still within the window, further messages are dropped
 * ("flood") rather than let in unchecked. Only broadcasts cross nodes: the cross-node requests of @socket.io/redis-adapter
 * (remote join, leave, disconnect, fetch), which it accepted as unsigned JSON, are not
 * offered; a node disconnects, joins and fetches its own sockets only.
 */
import { randomBytes } from "node:crypto";
import { Adapter, type BroadcastOptions } from "socket.io-adapter";
import type { RedisSeal } from "../../lib/redis.ts";

/** A message older than this (by the sender's clock, within the allowed skew) is dropped as a replay. */
export const FANOUT_MESSAGE_AGE_MS_MAX = 30_000;
/** Ids of messages seen within the window, at most; past that, new messages are dropped until old ones leave the window. */
export const FANOUT_SEEN_IDS_MAX = 200_000;
/** A message larger than this is not published (the feed's pushes are small), nor opened when one arrives. */
export const FANOUT_MESSAGE_BYTES_MAX = 64 * 1024;
/** How far another gateway's clock may be ahead of this one's, for messages sent around this node's start. */
export const FANOUT_CLOCK_SKEW_MS = 2_000;
/** The seal's tag before the message (lib/redis.ts). */
const SEAL_TAG_BYTES = 32;

type DropReason = "seal" | "malformed" | "stale" | "replayed" | "flood";

interface WireMessage {
	id: string;
	from: string;
	atMs: number;
	nsp: string;
	packet: unknown;
	rooms: string[];
	except: string[];
}

interface RedisPub {
	publish(channel: string, message: Buffer): Promise<unknown>;
}
interface RedisSub {
	subscribe(channel: string): Promise<unknown>;
	on(event: "messageBuffer", fn: (channel: Buffer, message: Buffer) => void): unknown;
}

export interface FanoutOptions {
	channel: string;
	seal: RedisSeal;
	now?: () => number;
	/** Told of every message dropped, with the reason (never the message). */
	onDropped?: (reason: DropReason) => void;
	onPublishError?: (err: Error) => void;
}

function isWire(v: unknown): v is WireMessage {
	if (typeof v !== "object" || v === null) return false;
	const w = v as Record<string, unknown>;
	return typeof w["id"] === "string" && typeof w["from"] === "string" && typeof w["atMs"] === "number" && typeof w["nsp"] === "string"
		&& Array.isArray(w["rooms"]) && w["rooms"].every(r => typeof r === "string")
		&& Array.isArray(w["except"]) && w["except"].every(r => typeof r === "string")
		&& typeof w["packet"] === "object" && w["packet"] !== null;
}

/**
 * The adapter class to give `io.adapter(...)`, and `ready`, which resolves once the node
 * listens on the channel.
 */
export function sealedFanout(pub: RedisPub, sub: RedisSub, opts: FanoutOptions): { adapter: typeof Adapter; ready: Promise<unknown> } {
	const now = opts.now ?? Date.now;
	const uid = randomBytes(9).toString("base64url");
	const adapters = new Map<string, Adapter>();
	const seen = new Map<string, number>();
	const drop = (reason: DropReason) => opts.onDropped?.(reason);
	const startedAtMs = now();

	const ready = sub.subscribe(opts.channel);
	sub.on("messageBuffer", (channel, message) => {
		if (channel.toString() !== opts.channel) return;
		// No HMAC work for what no gateway would publish.
		if (message.length > FANOUT_MESSAGE_BYTES_MAX + SEAL_TAG_BYTES) return drop("malformed");
		const payload = opts.seal.open(opts.channel, message);
		if (payload === null) return drop("seal");
		let wire: unknown;
		try {
			wire = JSON.parse(payload.toString("utf8"));
		} catch {
			return drop("malformed");
		}
		if (!isWire(wire)) return drop("malformed");
		if (wire.from === uid) return;
		const t = now();
		if (Math.abs(t - wire.atMs) > FANOUT_MESSAGE_AGE_MS_MAX || wire.atMs < startedAtMs - FANOUT_CLOCK_SKEW_MS) return drop("stale");
		if (seen.has(wire.id)) return drop("replayed");
		// Forget what is too old to be accepted again anyway (Map keeps insertion order).
		for (const [id, atMs] of seen) {
			if (t - atMs <= FANOUT_MESSAGE_AGE_MS_MAX) break;
			seen.delete(id);
		}
		if (seen.size >= FANOUT_SEEN_IDS_MAX) return drop("flood");
		seen.set(wire.id, wire.atMs);
		const local = adapters.get(wire.nsp);
		if (!local) return;
		// The packet goes to this node's sockets only (flags.local: not published again).
		Adapter.prototype.broadcast.call(local, wire.packet, { rooms: new Set(wire.rooms), except: new Set(wire.except), flags: { local: true } });
	});

	class SealedRedisAdapter extends Adapter {
		constructor(nsp: { name: string }) {
			super(nsp);
			adapters.set(nsp.name, this);
		}

		override broadcast(packet: Record<string, unknown>, bopts: BroadcastOptions): void {
			super.broadcast(packet, bopts);
			if (bopts.flags?.local) return;
			const nsp = String((this.nsp as { name: string }).name);
			const wire: WireMessage = { id: randomBytes(12).toString("base64url"), from: uid, atMs: now(), nsp, packet: { ...packet, nsp }, rooms: [...bopts.rooms], except: [...(bopts.except ?? [])] };
			const body = Buffer.from(JSON.stringify(wire), "utf8");
			if (body.length > FANOUT_MESSAGE_BYTES_MAX) {
				opts.onPublishError?.(new Error(`a push of ${body.length} bytes is over FANOUT_MESSAGE_BYTES_MAX; delivered on this node only`));
				return;
			}
			pub.publish(opts.channel, opts.seal.seal(opts.channel, body)).catch((err: unknown) => opts.onPublishError?.(err instanceof Error ? err : new Error(String(err))));
		}

		override close(): void {
			if (adapters.get(String((this.nsp as { name: string }).name)) === this) adapters.delete(String((this.nsp as { name: string }).name));
		}
	}
	return { adapter: SealedRedisAdapter, ready };
}
