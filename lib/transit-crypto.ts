/**
 * Seals everything a node sends over the transporter, and opens, checks and may drop
 * everything it receives (docs/transit.md). Every node shares TRANSIT_KEY, from which
 * HKDF derives the AES-256-GCM key and a key id; TRANSIT_KEYS_PREVIOUS are accepted on
 * receipt only, so two keys overlap during a rotation.
 *
 * A sealed packet (version 1):
 *
 *   0   version (1)
 *   1   key id, 8 bytes (HKDF of the secret, another label than the key's)
 *   9   timestamp, ms since the epoch, uint64 big-endian
 *   17  session, 8 random bytes, renewed by the sender every 2^24 packets
 *   25  nonce, 12 random bytes: the GCM IV
 *   37  target length, 1 byte, then the target node id (empty: broadcast or balanced)
 *   ..  GCM tag, 16 bytes, then the ciphertext
 *
 * The header (everything before the tag), the namespace and the packet command (REQ, RES,
 * EVENT, INFO…) are the associated data: a packet moved to another topic, another
 * namespace or another node, or with a changed timestamp, fails authentication. A packet is
 * encrypted under its session's key, HMAC-SHA256(key, session), so no GCM key sees more
 * than 2^24 random IVs (the safe bound is 2^32) however long TRANSIT_KEY lives; the session
 * and nonce together identify the packet for replay detection.
 *
 * On receipt a packet is dropped when it does not authenticate, is older than the replay
 * window or from further in the future than the allowed clock skew, is addressed to
 * another node, or carries a nonce already seen within the window. The seen nonces are
 * kept until their packet would be too old anyway, and at most `replayCacheMax` of them:
 * past that, packets are refused rather than let through unchecked. A packet sent before
 * the receiver started (less the skew) is dropped too, so a restart, which empties the
 * cache, opens no replay window.
 *
 * It uses Moleculer's transit middleware hooks: transporterSend(topic, data, { packet })
 * (packet.type is the command, packet.target the node) and transporterReceive(cmd, data),
 * where cmd is the command of the subscription the data arrived on.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomFillSync } from "node:crypto";

export const TRANSIT_VERSION = 1;
const KEY_ID_BYTES = 8;
const SESSION_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AT_TIME = 1 + KEY_ID_BYTES;
const AT_SESSION = AT_TIME + 8;
const AT_NONCE = AT_SESSION + SESSION_BYTES;
/** version + key id + timestamp + session + nonce + target length. */
const FIXED_HEADER_BYTES = AT_NONCE + NONCE_BYTES + 1;
const HKDF_SALT = "paymesh transit v1";
/** Packets one sender session seals before it draws a new session (and so a new GCM key). */
export const SESSION_PACKETS_MAX = 2 ** 24;
/** Session keys a receiver keeps (one per sending node and session); a miss costs one HMAC. */
const SESSION_KEYS_CACHED_MAX = 4_096;

export interface TransitKey {
	/** Identifies the key on the wire; derived from it, reveals nothing of it. */
	id: Buffer;
	idHex: string;
	key: Buffer;
}

export function deriveTransitKey(secret: string): TransitKey {
	const key = Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, "aes-256-gcm key", 32));
	const id = Buffer.from(hkdfSync("sha256", secret, HKDF_SALT, "key id", KEY_ID_BYTES));
	return { id, idHex: id.toString("hex"), key };
}

/** Where a packet goes: bound to it as associated data. */
export interface TransitTopic {
	namespace: string;
	/** Moleculer's packet command: REQ, RES, EVENT, INFO, HEARTBEAT… */
	cmd: string;
	/** Node the packet is addressed to; "" for a broadcast or a balanced packet. */
	target: string;
}

function sessionKey(key: Buffer, session: Buffer): Buffer {
	return createHmac("sha256", key).update(session).digest();
}

const suffixes = new Map<string, Buffer>();
/** The namespace and command part of the associated data (few distinct values: cached). */
function topicSuffix(namespace: string, cmd: string): Buffer {
	const k = `${namespace}\0${cmd}`;
	let b = suffixes.get(k);
	if (!b) {
		b = Buffer.from(`\0${k}`);
		if (suffixes.size < 1_000) suffixes.set(k, b);
	}
	return b;
}

/** Random nonces cut from a pool refilled 1,024 at a time: one randomBytes call per packet costs more than the encryption. */
const noncePool = Buffer.allocUnsafe(NONCE_BYTES * 1_024);
let noncePoolAt = noncePool.length;
function randomNonce(): Buffer {
	if (noncePoolAt + NONCE_BYTES > noncePool.length) {
		randomFillSync(noncePool);
		noncePoolAt = 0;
	}
	const n = noncePool.subarray(noncePoolAt, noncePoolAt + NONCE_BYTES);
	noncePoolAt += NONCE_BYTES;
	return n;
}

function readTime(packet: Buffer): number {
	return packet.readUInt32BE(AT_TIME) * 2 ** 32 + packet.readUInt32BE(AT_TIME + 4);
}

/** Seals with one key, drawing a new session every SESSION_PACKETS_MAX packets. */
export class Sealer {
	private readonly key: TransitKey;
	private session: Buffer = Buffer.alloc(SESSION_BYTES);
	private sessionKey: Buffer = Buffer.alloc(32);
	private readonly packetsPerSession: number;
	private sealed: number;

	constructor(key: TransitKey, packetsPerSession = SESSION_PACKETS_MAX) {
		this.key = key;
		this.packetsPerSession = packetsPerSession;
		this.sealed = packetsPerSession;
	}

	seal(topic: TransitTopic, data: Buffer, nowMs: number): Buffer {
		if (this.sealed >= this.packetsPerSession) {
			this.session = randomBytes(SESSION_BYTES);
			this.sessionKey = sessionKey(this.key.key, this.session);
			this.sealed = 0;
		}
		this.sealed++;
		const targetLength = Buffer.byteLength(topic.target);
		if (targetLength > 255) throw new Error("transit: target node id longer than 255 bytes");
		const headerLength = FIXED_HEADER_BYTES + targetLength;
		const out = Buffer.allocUnsafe(headerLength + TAG_BYTES + data.length);
		out[0] = TRANSIT_VERSION;
		this.key.id.copy(out, 1);
		out.writeUInt32BE(Math.floor(nowMs / 2 ** 32), AT_TIME);
		out.writeUInt32BE(nowMs >>> 0, AT_TIME + 4);
		this.session.copy(out, AT_SESSION);
		const iv = randomNonce();
		iv.copy(out, AT_NONCE);
		out[FIXED_HEADER_BYTES - 1] = targetLength;
		out.write(topic.target, FIXED_HEADER_BYTES, "utf8");
		const c = createCipheriv("aes-256-gcm", this.sessionKey, iv);
		c.setAAD(Buffer.concat([out.subarray(0, headerLength), topicSuffix(topic.namespace, topic.cmd)]));
		const body = c.update(data);
		const rest = c.final();
		body.copy(out, headerLength + TAG_BYTES);
		rest.copy(out, headerLength + TAG_BYTES + body.length);
		c.getAuthTag().copy(out, headerLength);
		return out;
	}
}

const sealers = new WeakMap<TransitKey, Sealer>();

/** Seals with the key's shared Sealer (one session per key in this process). */
export function seal(key: TransitKey, topic: TransitTopic, data: Buffer, nowMs: number): Buffer {
	let s = sealers.get(key);
	if (!s) {
		s = new Sealer(key);
		sealers.set(key, s);
	}
	return s.seal(topic, data, nowMs);
}

export const DROP_REASONS = ["malformed", "version", "unknown_key", "auth", "stale", "future", "misrouted", "replay", "replay_cache_full"] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type Opened = { ok: true; data: Buffer; key: TransitKey; previous: boolean } | { ok: false; reason: DropReason };

export interface OpenerOptions {
	/** The sending key first, then the previous ones (accepted on receipt only). */
	keys: TransitKey[];
	replayWindowMs: number;
	clockSkewMs: number;
	replayCacheMax: number;
	now: () => number;
}

/**
 * Nonces seen within the replay window, with the time after which their packet is stale
 * anyway. Kept in arrival order, which is nearly expiry order, and pruned from the front;
 * an entry out of order stays a little longer, never shorter.
 */
export class NonceCache {
	private readonly expiries = new Map<string, number>();
	private readonly max: number;
	constructor(max: number) {
		this.max = max;
	}

	get size(): number {
		return this.expiries.size;
	}

	prune(nowMs: number): void {
		for (const [nonce, expiry] of this.expiries) {
			if (expiry > nowMs) break;
			this.expiries.delete(nonce);
		}
	}

	/** "seen", "full" (refused: no room to remember it), or "added". */
	add(nonce: string, expiryMs: number, nowMs: number): "seen" | "full" | "added" {
		this.prune(nowMs);
		if (this.expiries.has(nonce)) return "seen";
		if (this.expiries.size >= this.max) return "full";
		this.expiries.set(nonce, expiryMs);
		return "added";
	}
}

export class TransitOpener {
	readonly nonces: NonceCache;
	private readonly opts: OpenerOptions;
	/** Session keys of authentic packets, by key index and session. */
	private readonly sessionKeys = new Map<string, Buffer>();
	/**
	 * Nothing sent before this opener existed (less the clock skew) is accepted: the nonce
	 * cache starts empty, and without this a restarted node would take a replay of any
	 * packet of the last window.
	 */
	private readonly since: number;
	constructor(opts: OpenerOptions) {
		this.opts = opts;
		this.nonces = new NonceCache(opts.replayCacheMax);
		this.since = opts.now() - opts.clockSkewMs;
	}

	/** `self`: this node's id (a packet addressed to another node is dropped). */
	open(topic: { namespace: string; cmd: string; self: string }, packet: Buffer): Opened {
		if (packet.length < FIXED_HEADER_BYTES + TAG_BYTES) return { ok: false, reason: "malformed" };
		if (packet[0] !== TRANSIT_VERSION) return { ok: false, reason: "version" };
		const targetLength = packet[FIXED_HEADER_BYTES - 1] ?? 0;
		const headerEnd = FIXED_HEADER_BYTES + targetLength;
		if (packet.length < headerEnd + TAG_BYTES) return { ok: false, reason: "malformed" };
		const id = packet.subarray(1, 1 + KEY_ID_BYTES);
		const index = this.opts.keys.findIndex(k => k.id.equals(id));
		const key = this.opts.keys[index];
		if (!key) return { ok: false, reason: "unknown_key" };
		const session = packet.subarray(AT_SESSION, AT_SESSION + SESSION_BYTES);
		const cacheKey = `${index}${session.toString("latin1")}`;
		const cached = this.sessionKeys.get(cacheKey);
		const k = cached ?? sessionKey(key.key, session);
		let data: Buffer;
		try {
			const d = createDecipheriv("aes-256-gcm", k, packet.subarray(AT_NONCE, AT_NONCE + NONCE_BYTES));
			d.setAAD(Buffer.concat([packet.subarray(0, headerEnd), topicSuffix(topic.namespace, topic.cmd)]));
			d.setAuthTag(packet.subarray(headerEnd, headerEnd + TAG_BYTES));
			const body = d.update(packet.subarray(headerEnd + TAG_BYTES));
			const rest = d.final();
			data = rest.length === 0 ? body : Buffer.concat([body, rest]);
		} catch {
			return { ok: false, reason: "auth" };
		}
		// Authentic from here on: the timestamp, session, nonce and target are the sender's.
		if (!cached) this.rememberSessionKey(cacheKey, k);
		const now = this.opts.now();
		const sentAt = readTime(packet);
		// Accepted while now < sentAt + window: exactly as long as its nonce is remembered.
		if (sentAt <= now - this.opts.replayWindowMs || sentAt < this.since) return { ok: false, reason: "stale" };
		if (sentAt > now + this.opts.clockSkewMs) return { ok: false, reason: "future" };
		const target = packet.toString("utf8", FIXED_HEADER_BYTES, headerEnd);
		if (target !== "" && target !== topic.self) return { ok: false, reason: "misrouted" };
		// Only authentic nonces are remembered: nobody without the key can fill the cache.
		const seen = this.nonces.add(packet.toString("latin1", AT_SESSION, AT_NONCE + NONCE_BYTES), sentAt + this.opts.replayWindowMs, now);
		if (seen === "seen") return { ok: false, reason: "replay" };
		if (seen === "full") return { ok: false, reason: "replay_cache_full" };
		return { ok: true, data, key, previous: index > 0 };
	}

	private rememberSessionKey(cacheKey: string, k: Buffer): void {
		if (this.sessionKeys.size >= SESSION_KEYS_CACHED_MAX) {
			const oldest = this.sessionKeys.keys().next();
			if (!oldest.done) this.sessionKeys.delete(oldest.value);
		}
		this.sessionKeys.set(cacheKey, k);
	}
}

export type Scheduler = (fn: () => void, ms: number) => { cancel(): void };

const unrefTimeout: Scheduler = (fn, ms) => {
	const t = setTimeout(fn, ms);
	t.unref();
	return { cancel: () => clearTimeout(t) };
};

/**
 * Dropped packets are counted always and logged at most once per interval, with the counts
 * by reason since the last line: a flood of forged or replayed packets cannot flood the log.
 */
export class DropLog {
	private pending = new Map<DropReason, number>();
	private lastLogAt = Number.NEGATIVE_INFINITY;
	private timer: { cancel(): void } | null = null;
	private readonly warn: (message: string, counts: Record<string, number>) => void;
	private readonly now: () => number;
	private readonly intervalMs: number;
	private readonly schedule: Scheduler;

	constructor(warn: (message: string, counts: Record<string, number>) => void, now: () => number, intervalMs = 10_000, schedule: Scheduler = unrefTimeout) {
		this.warn = warn;
		this.now = now;
		this.intervalMs = intervalMs;
		this.schedule = schedule;
	}

	drop(reason: DropReason): void {
		this.pending.set(reason, (this.pending.get(reason) ?? 0) + 1);
		const wait = this.lastLogAt + this.intervalMs - this.now();
		if (wait <= 0) this.flush();
		else this.timer ??= this.schedule(() => {
			this.timer = null;
			this.flush();
		}, wait);
	}

	flush(): void {
		if (this.pending.size === 0) return;
		const counts = Object.fromEntries(this.pending);
		const total = [...this.pending.values()].reduce((a, b) => a + b, 0);
		this.pending = new Map();
		this.lastLogAt = this.now();
		this.warn(`dropped ${total} transporter packet(s) that failed the transit checks`, counts);
	}

	stop(): void {
		this.timer?.cancel();
		this.timer = null;
		this.flush();
	}
}

export const TRANSIT_DROPPED_METRIC = "paymesh.transit.packets.dropped";
export const TRANSIT_RECEIVED_METRIC = "paymesh.transit.packets.received";

export interface TransitOptions {
	/** TRANSIT_KEY: seals what this node sends. */
	key: string;
	/** TRANSIT_KEYS_PREVIOUS: also opened on receipt, during a rotation. */
	previousKeys?: string[];
	replayWindowMs?: number;
	clockSkewMs?: number;
	replayCacheMax?: number;
	now?: () => number;
	dropLogIntervalMs?: number;
}

type Send = (topic: string, data: Buffer, meta?: { packet?: { type?: string; target?: string | null } }) => Promise<void>;
type Receive = (cmd: string, data: Buffer) => unknown;
type Logger = { warn(msg: string, o?: object): void; info(msg: string, o?: object): void };
interface BrokerLike {
	namespace: string;
	nodeID: string;
	getLogger(name: string): Logger;
	isMetricsEnabled(): boolean;
	metrics: {
		register(def: { type: string; name: string; labelNames?: string[]; description?: string }): unknown;
		getMetric(name: string): unknown;
		increment(name: string, labels?: Record<string, string>): void;
	};
}

/** The command of a topic when the packet is not given: MOL-<ns>.<CMD>[.…], balanced REQB/EVENTB as REQ/EVENT. */
export function commandOfTopic(topic: string): string {
	const cmd = topic.split(".")[1] ?? "";
	return cmd === "REQB" ? "REQ" : cmd === "EVENTB" ? "EVENT" : cmd;
}

export function transitEncryption(opts: TransitOptions) {
	const now = opts.now ?? Date.now;
	const keys = [opts.key, ...(opts.previousKeys ?? [])].map(deriveTransitKey);
	const sending = keys[0] as TransitKey;
	const sealer = new Sealer(sending);
	const opener = new TransitOpener({
		keys, now,
		replayWindowMs: opts.replayWindowMs ?? 60_000,
		clockSkewMs: opts.clockSkewMs ?? 5_000,
		replayCacheMax: opts.replayCacheMax ?? 1_000_000,
	});
	let broker: BrokerLike | null = null;
	let metrics = false;
	let logger: Logger | null = null;
	const dropLog = new DropLog((message, counts) => logger?.warn(message, { counts }), now, opts.dropLogIntervalMs ?? 10_000);
	return {
		name: "TransitEncryption",
		opener,
		created(b: BrokerLike) {
			broker = b;
			logger = b.getLogger("transit-crypto");
			metrics = b.isMetricsEnabled();
			if (metrics && !b.metrics.getMetric(TRANSIT_DROPPED_METRIC)) {
				b.metrics.register({ type: "counter", name: TRANSIT_DROPPED_METRIC, labelNames: ["reason"], description: "Transporter packets dropped by the transit checks, by reason" });
				b.metrics.register({ type: "counter", name: TRANSIT_RECEIVED_METRIC, labelNames: ["key"], description: "Transporter packets opened, by key id (a previous key still counting: a node still sends with it)" });
			}
			logger.info("transporter packets are sealed (AES-256-GCM, topic bound, replay window)", {
				key: sending.idHex, previous: keys.slice(1).map(k => k.idHex), replayWindowMs: opts.replayWindowMs ?? 60_000,
			});
		},
		stopped() {
			dropLog.stop();
		},
		transporterSend(next: Send): Send {
			return (topic, data, meta) => {
				const packet = meta?.packet;
				const sealed = sealer.seal({
					namespace: broker?.namespace ?? "", cmd: packet?.type ?? commandOfTopic(topic), target: packet?.target ?? "",
				}, data, now());
				return next(topic, sealed, meta);
			};
		},
		transporterReceive(next: Receive): Receive {
			return (cmd, data) => {
				const r = opener.open({ namespace: broker?.namespace ?? "", cmd, self: broker?.nodeID ?? "" }, data);
				// Never parsed: a packet of another key, forged, moved, too old or seen before.
				if (!r.ok) {
					if (metrics) broker?.metrics.increment(TRANSIT_DROPPED_METRIC, { reason: r.reason });
					dropLog.drop(r.reason);
					return undefined;
				}
				if (metrics) broker?.metrics.increment(TRANSIT_RECEIVED_METRIC, { key: r.key.idHex });
				return next(cmd, r.data);
			};
		},
	};
}
