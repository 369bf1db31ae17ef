/**
 * Encrypts everything a node sends over the transporter with AES-256-GCM under a key every
 * node shares (TRANSIT_KEY): a fresh random IV per packet, and the tag checked on receipt,
 * so a packet read off the wire reveals nothing and a changed one is dropped. It uses
 * Moleculer's transit middleware hooks (transporterSend / transporterReceive) like the
 * built-in Encryption middleware, which instead takes one fixed IV for every packet and no
 * integrity check.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

const IV_BYTES = 12;
const TAG_BYTES = 16;

type Send = (topic: string, data: Buffer, meta: unknown) => Promise<void>;
type Receive = (cmd: string, data: Buffer, s: unknown) => unknown;

export function transitKey(secret: string): Buffer {
	return createHash("sha256").update(`paymesh transit\n${secret}`).digest();
}

export function seal(key: Buffer, data: Buffer): Buffer {
	const iv = randomBytes(IV_BYTES);
	const c = createCipheriv("aes-256-gcm", key, iv);
	const body = Buffer.concat([c.update(data), c.final()]);
	return Buffer.concat([iv, c.getAuthTag(), body]);
}

/** The plain packet, or null when it was not sealed with this key or was changed. */
export function open(key: Buffer, packet: Buffer): Buffer | null {
	if (packet.length < IV_BYTES + TAG_BYTES) return null;
	try {
		const d = createDecipheriv("aes-256-gcm", key, packet.subarray(0, IV_BYTES));
		d.setAuthTag(packet.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
		return Buffer.concat([d.update(packet.subarray(IV_BYTES + TAG_BYTES)), d.final()]);
	} catch {
		return null;
	}
}

export function transitEncryption(secret: string) {
	const key = transitKey(secret);
	let logger: { warn(msg: string, o?: object): void } | null = null;
	return {
		name: "TransitEncryption",
		created(this: { logger: { warn(msg: string, o?: object): void; info(msg: string): void } }) {
			logger = this.logger;
			this.logger.info("transporter traffic is encrypted (AES-256-GCM)");
		},
		transporterSend(next: Send): Send {
			return (topic, data, meta) => next(topic, seal(key, data), meta);
		},
		transporterReceive(next: Receive): Receive {
			return (cmd, data, s) => {
				const plain = open(key, data);
				// A node with another key, or a forged packet: dropped, never parsed.
				if (!plain) {
					logger?.warn("dropped a transporter packet that did not decrypt", { cmd });
					return undefined;
				}
				return next(cmd, plain, s);
			};
		},
	};
}
