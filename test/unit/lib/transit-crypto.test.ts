/**
 * Sealing and opening transporter packets (lib/transit-crypto.ts) on an injected clock:
 * tampering, a packet moved to another topic, namespace or node, old and future
 * timestamps, replayed nonces, the bounded nonce cache, key rotation (previous key
 * accepted, unknown key refused), the throttled drop log, and the middleware around
 * Moleculer's transporterSend/transporterReceive hooks.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { DropLog, NonceCache, Sealer, TransitOpener, commandOfTopic, deriveTransitKey, seal, transitEncryption, type DropReason, type TransitKey } from "../../../lib/transit-crypto.ts";
import { natsOptions, transitMiddleware } from "../../../moleculer.config.ts";
import { loadConfig } from "../../../config/index.ts";
import { gatewayKeys } from "../../support/gateway-key.ts";

const secretA = randomBytes(30).toString("base64url");
const secretB = randomBytes(30).toString("base64url");
const keyA = deriveTransitKey(secretA);
const keyB = deriveTransitKey(secretB);
const T0 = 1_800_000_000_000;
const topic = { namespace: "paymesh", cmd: "REQ", target: "ledger-1" };
const here = { namespace: "paymesh", cmd: "REQ", self: "ledger-1" };
const packet = Buffer.from(JSON.stringify({ action: "auth.setRoles", params: { userId: "u-7", roles: ["admin"] } }));

function opener(keys: TransitKey[], clock: { t: number }, extra: { replayCacheMax?: number } = {}) {
	return new TransitOpener({ keys, replayWindowMs: 60_000, clockSkewMs: 5_000, replayCacheMax: extra.replayCacheMax ?? 1_000, now: () => clock.t });
}

function reason(r: ReturnType<TransitOpener["open"]>): DropReason | "ok" {
	return r.ok ? "ok" : r.reason;
}

describe("transit key derivation", () => {
	it("derives the key and a key id with HKDF: stable per secret, distinct between secrets, not a bare SHA-256", () => {
		assert.deepEqual(deriveTransitKey(secretA), keyA);
		assert.equal(keyA.key.length, 32);
		assert.equal(keyA.id.length, 8);
		assert.notDeepEqual(keyA.id, keyB.id);
		assert.notDeepEqual(keyA.key, keyB.key);
		assert.notDeepEqual(keyA.key, createHash("sha256").update(`paymesh transit\n${secretA}`).digest());
		assert.equal(keyA.key.includes(keyA.id), false, "the key id is not a piece of the key");
	});
});

describe("seal and open", () => {
	it("opens what it sealed, with the version, key id and a fresh nonce in the clear and nothing of the packet", () => {
		const clock = { t: T0 };
		const a = seal(keyA, topic, packet, T0);
		const b = seal(keyA, topic, packet, T0);
		assert.notDeepEqual(a, b);
		assert.equal(a[0], 1);
		assert.deepEqual(a.subarray(1, 9), keyA.id);
		assert.equal(a.readBigUInt64BE(9), BigInt(T0));
		assert.equal(a.includes(Buffer.from("setRoles")), false);
		const o = opener([keyA], clock);
		const r = o.open(here, a);
		assert.ok(r.ok);
		assert.deepEqual(r.data, packet);
		assert.equal(r.previous, false);
		assert.equal(reason(o.open(here, b)), "ok");
	});

	it("drops a changed byte anywhere: ciphertext, tag, timestamp, nonce, target; and a short or unknown-version packet", () => {
		const clock = { t: T0 };
		const sealed = seal(keyA, topic, packet, T0);
		// Last ciphertext byte, timestamp, session, nonce (the IV), target, tag.
		for (const at of [sealed.length - 1, 9 + 7, 20, 30, 38, 38 + "ledger-1".length + 3]) {
			const changed = Buffer.from(sealed);
			changed[at] = (changed[at] ?? 0) ^ 1;
			assert.equal(reason(opener([keyA], clock).open(here, changed)), "auth", `byte ${at}`);
		}
		assert.equal(reason(opener([keyA], clock).open(here, sealed.subarray(0, 50))), "malformed");
		const v2 = Buffer.from(sealed);
		v2[0] = 2;
		assert.equal(reason(opener([keyA], clock).open(here, v2)), "version");
		// Plaintext, as a node without the key would send it.
		assert.notEqual(reason(opener([keyA], clock).open(here, packet)), "ok");
	});

	it("binds the topic: a packet moved to another command, namespace or node fails", () => {
		const clock = { t: T0 };
		const sealed = seal(keyA, topic, packet, T0);
		assert.equal(reason(opener([keyA], clock).open({ ...here, cmd: "EVENT" }, sealed)), "auth");
		assert.equal(reason(opener([keyA], clock).open({ ...here, namespace: "other" }, sealed)), "auth");
		// Addressed to ledger-1, replayed to ledger-2 (whose nonce cache has not seen it).
		assert.equal(reason(opener([keyA], clock).open({ ...here, self: "ledger-2" }, sealed)), "misrouted");
		// A broadcast (no target) is for every node.
		const broadcast = seal(keyA, { namespace: "paymesh", cmd: "INFO", target: "" }, packet, T0);
		assert.equal(reason(opener([keyA], clock).open({ namespace: "paymesh", cmd: "INFO", self: "any-node" }, broadcast)), "ok");
	});

	it("drops packets older than the window or from the future beyond the skew", () => {
		const clock = { t: T0 - 120_000 };
		const o = opener([keyA], clock);
		clock.t = T0;
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 - 59_999))), "ok");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 - 60_000))), "stale");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 + 5_000))), "ok");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 + 5_001))), "future");
	});

	it("drops what was sent before it started (less the skew): a restarted node, its nonce cache empty, takes no replay", () => {
		const clock = { t: T0 };
		const o = opener([keyA], clock);
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 - 5_001))), "stale");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 - 5_000))), "ok", "a sender whose clock is behind by the skew");
	});

	it("drops a replayed nonce within the window, and the same packet after it as too old", () => {
		const clock = { t: T0 };
		const o = opener([keyA], clock);
		const captured = seal(keyA, topic, packet, T0);
		assert.equal(reason(o.open(here, captured)), "ok");
		clock.t = T0 + 30_000;
		assert.equal(reason(o.open(here, captured)), "replay");
		clock.t = T0 + 60_000;
		assert.equal(reason(o.open(here, captured)), "stale");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, clock.t))), "ok");
		assert.equal(o.nonces.size, 1, "the captured packet's nonce is forgotten once the packet is too old anyway");
	});

	it("accepts a previous key during a rotation and refuses a key it does not hold", () => {
		const clock = { t: T0 };
		const rotated = opener([keyB, keyA], clock);
		const fromOld = rotated.open(here, seal(keyA, topic, packet, T0));
		assert.ok(fromOld.ok && fromOld.previous && fromOld.key.idHex === keyA.idHex);
		const fromNew = rotated.open(here, seal(keyB, topic, packet, T0));
		assert.ok(fromNew.ok && !fromNew.previous);
		assert.equal(reason(opener([keyA], clock).open(here, seal(keyB, topic, packet, T0))), "unknown_key");
		// A forged key id (the old key's id on a packet sealed with another key) still fails.
		const forged = seal(keyB, topic, packet, T0);
		keyA.id.copy(forged, 1);
		assert.equal(reason(opener([keyA], clock).open(here, forged)), "auth");
	});
});

describe("sender sessions", () => {
	it("draws a new session (and GCM key) after its packet budget; the receiver opens both", () => {
		const clock = { t: T0 };
		const sealer = new Sealer(keyA, 3);
		const packets = Array.from({ length: 5 }, () => sealer.seal(topic, packet, T0));
		const sessions = new Set(packets.map(p => p.subarray(17, 25).toString("hex")));
		assert.equal(sessions.size, 2);
		assert.equal(packets[0]?.subarray(17, 25).toString("hex"), packets[2]?.subarray(17, 25).toString("hex"));
		const o = opener([keyA], clock);
		for (const p of packets) assert.equal(reason(o.open(here, p)), "ok");
	});

	it("drops a packet whose session was changed, and still opens the genuine session after", () => {
		const clock = { t: T0 };
		const o = opener([keyA], clock);
		const sealer = new Sealer(keyA);
		const first = sealer.seal(topic, packet, T0);
		const forged = Buffer.from(sealer.seal(topic, packet, T0));
		forged[18] = (forged[18] ?? 0) ^ 0xff;
		assert.equal(reason(o.open(here, forged)), "auth");
		assert.equal(reason(o.open(here, first)), "ok");
		assert.equal(reason(o.open(here, sealer.seal(topic, packet, T0))), "ok");
	});
});

describe("nonce cache", () => {
	it("prunes by time and refuses new nonces when full, until old ones expire", () => {
		const clock = { t: T0 };
		const o = opener([keyA], clock, { replayCacheMax: 3 });
		for (let i = 0; i < 3; i++) assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 + i))), "ok");
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, T0 + 3))), "replay_cache_full");
		clock.t = T0 + 60_001;
		assert.equal(reason(o.open(here, seal(keyA, topic, packet, clock.t))), "ok");
		assert.equal(o.nonces.size, 2, "the nonces of T0 and T0+1 expired; T0+2 and the new one stay");
	});

	it("keeps an entry that arrived out of expiry order at least until its own expiry", () => {
		const c = new NonceCache(10);
		assert.equal(c.add("late", 2_000, 0), "added");
		assert.equal(c.add("early", 1_000, 0), "added");
		assert.equal(c.add("early", 1_000, 1_500), "seen", "behind a live entry, not pruned before its time is no harm");
		assert.equal(c.add("late", 2_000, 1_999), "seen");
		assert.equal(c.add("x", 3_000, 2_000), "added");
		assert.equal(c.size, 1);
	});
});

describe("drop log", () => {
	it("logs at most one warning per interval, with the counts by reason", () => {
		const clock = { t: T0 };
		const lines: { message: string; counts: Record<string, number> }[] = [];
		const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
		const log = new DropLog((message, counts) => lines.push({ message, counts }), () => clock.t, 10_000, (fn, ms) => {
			const t = { fn, ms, cancelled: false };
			timers.push(t);
			return { cancel: () => { t.cancelled = true; } };
		});
		log.drop("auth");
		assert.equal(lines.length, 1, "the first drop is told at once");
		for (let i = 0; i < 5_000; i++) log.drop(i % 2 ? "auth" : "replay");
		assert.equal(lines.length, 1);
		assert.equal(timers.length, 1, "one flush is scheduled, not one per drop");
		assert.equal(timers[0]?.ms, 10_000);
		clock.t += 10_000;
		timers[0]?.fn();
		assert.equal(lines.length, 2);
		assert.deepEqual(lines[1]?.counts, { replay: 2_500, auth: 2_500 });
		assert.match(lines[1]?.message ?? "", /dropped 5000 transporter packet/);
		log.stop();
		assert.equal(lines.length, 2, "nothing pending, nothing logged");
	});
});

describe("transit middleware", () => {
	function fakeBroker(nodeID: string) {
		const counts = new Map<string, number>();
		const warnings: unknown[] = [];
		const broker = {
			namespace: "ns1", nodeID,
			getLogger: () => ({ warn: (_m: string, o?: object) => warnings.push(o), info: () => undefined }),
			isMetricsEnabled: () => true,
			metrics: {
				register: () => undefined,
				getMetric: () => undefined,
				increment: (name: string, labels?: Record<string, string>) => {
					const k = `${name}${JSON.stringify(labels)}`;
					counts.set(k, (counts.get(k) ?? 0) + 1);
				},
			},
		};
		return { broker, counts, warnings };
	}

	it("seals with the packet's command and target on send, opens and counts on receipt, and drops a replay", async () => {
		const clock = { t: T0 };
		const sender = transitEncryption({ key: secretB, now: () => clock.t });
		const receiver = transitEncryption({ key: secretA, previousKeys: [secretB], now: () => clock.t });
		const s = fakeBroker("caller-1");
		const r = fakeBroker("ledger-1");
		sender.created(s.broker);
		receiver.created(r.broker);
		const wire: { topic: string; data: Buffer }[] = [];
		const send = sender.transporterSend(async (t, data) => { wire.push({ topic: t, data }); });
		const delivered: Buffer[] = [];
		const receive = receiver.transporterReceive((_cmd, data) => { delivered.push(data); return undefined; });
		await send("MOL-ns1.REQ.ledger-1", packet, { packet: { type: "REQ", target: "ledger-1" } });
		await send("MOL-ns1.REQB.ledger.transfers.create", packet, { packet: { type: "REQ", target: null } });
		for (const w of wire) receive("REQ", w.data);
		assert.equal(delivered.length, 2);
		assert.deepEqual(delivered[0], packet);
		receive("REQ", wire[0]?.data ?? Buffer.alloc(0));
		receive("EVENT", wire[1]?.data ?? Buffer.alloc(0));
		assert.equal(delivered.length, 2);
		assert.equal(r.counts.get(`paymesh.transit.packets.dropped{"reason":"replay"}`), 1);
		assert.equal(r.counts.get(`paymesh.transit.packets.dropped{"reason":"auth"}`), 1);
		assert.equal(r.counts.get(`paymesh.transit.packets.received{"key":"${keyB.idHex}"}`), 2);
		assert.equal(r.warnings.length, 1, "two drops within 10 s: one warning");
		receiver.stopped();
		assert.equal(r.warnings.length, 2, "stopping tells what is pending");
	});

	it("reads the command of a topic without a packet, and is off without a transporter", () => {
		assert.equal(commandOfTopic("MOL-ns.REQB.ledger.accounts.open"), "REQ");
		assert.equal(commandOfTopic("MOL-ns.EVENTB.audit.ledger.posted"), "EVENT");
		assert.equal(commandOfTopic("MOL.INFO.node-1"), "INFO");
		assert.deepEqual(transitMiddleware(loadConfig({ TRANSIT_KEY: secretA })), []);
		assert.equal(transitMiddleware(loadConfig({ TRANSPORTER: "nats://n:4222", JWT_SECRET: secretB, TRANSIT_KEY: secretA, ...gatewayKeys() })).length, 1);
	});
});

describe("transit configuration", () => {
	const base = { TRANSPORTER: "nats://n:4222", JWT_SECRET: randomBytes(30).toString("base64url"), ...gatewayKeys() };

	it("refuses a transporter without TRANSIT_KEY, and bad previous keys", () => {
		assert.throws(() => loadConfig(base), /TRANSIT_KEY is required when TRANSPORTER is set/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: "short" }), /TRANSIT_KEY is too short/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_KEYS_PREVIOUS: "short" }), /TRANSIT_KEYS_PREVIOUS item 1 is too short/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_KEYS_PREVIOUS: secretA }), /TRANSIT_KEYS_PREVIOUS repeats TRANSIT_KEY/);
		assert.throws(() => loadConfig({ TRANSIT_KEYS_PREVIOUS: secretA }), /TRANSIT_KEYS_PREVIOUS is set without TRANSIT_KEY/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: base.JWT_SECRET }), /same value as JWT_SECRET/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_KEYS_PREVIOUS: base.JWT_SECRET }), /TRANSIT_KEYS_PREVIOUS item 1 has the same value as JWT_SECRET/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_KEYS_PREVIOUS: `${secretB},REPLACE_ME_OLD_TRANSIT_KEY_0123456789` }), /TRANSIT_KEYS_PREVIOUS item 2 looks like a placeholder/);
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_REPLAY_WINDOW_S: "0" }), /TRANSIT_REPLAY_WINDOW_S/);
	});

	it("reads the keys, the window, the skew and the cache size", () => {
		const c = loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_KEYS_PREVIOUS: `${secretB}, ${randomBytes(30).toString("base64url")}` });
		assert.equal(c.transit.encryptionKey, secretA);
		assert.equal(c.transit.previousKeys.length, 2);
		assert.equal(c.transit.previousKeys[0], secretB);
		assert.deepEqual([c.transit.replayWindowS, c.transit.clockSkewS, c.transit.replayCacheMax], [60, 5, 1_000_000]);
		const d = loadConfig({ ...base, TRANSIT_KEY: secretA, TRANSIT_REPLAY_WINDOW_S: "2", TRANSIT_CLOCK_SKEW_S: "0", TRANSIT_REPLAY_CACHE_MAX: "5000" });
		assert.deepEqual([d.transit.replayWindowS, d.transit.clockSkewS, d.transit.replayCacheMax], [2, 0, 5_000]);
	});
});

describe("NATS options from the config", () => {
	it("passes the token, the user and TLS; refuses short secrets", () => {
		const base = { TRANSPORTER: "nats://n:4222", JWT_SECRET: randomBytes(30).toString("base64url"), TRANSIT_KEY: secretA, ...gatewayKeys() };
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_TOKEN: "t0ken-123456-Qz9w" })), { url: "nats://n:4222", maxReconnectAttempts: -1, token: "t0ken-123456-Qz9w" });
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_USER: "pay", NATS_PASSWORD: "secret-pw-1-Vx7k" })), { url: "nats://n:4222", maxReconnectAttempts: -1, user: "pay", pass: "secret-pw-1-Vx7k" });
		assert.deepEqual(natsOptions(loadConfig({ ...base, NATS_TLS: "true" })), { url: "nats://n:4222", maxReconnectAttempts: -1, tls: {} });
		assert.throws(() => loadConfig({ ...base, TRANSIT_KEY: "short" }), /TRANSIT_KEY is too short/);
	});
});
