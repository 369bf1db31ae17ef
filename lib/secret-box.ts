/**
 * Secrets at rest (issue 16, finding 14): values the services must read back (TOTP
 * secrets, webhook signing secrets) are stored sealed with AES-256-GCM under a key derived
 * (HKDF) from SECRETS_KEY, the key-encryption key, which lives outside the database. A copy
 * of the database alone reveals none of them.
 *
 * A sealed value: `sb1.<key id>.<iv>.<ciphertext and tag>` (base64url parts). The key id
 * lets SECRETS_KEYS_PREVIOUS open values sealed before a rotation (new values are sealed
 * with the current key only). Each value is bound to its context (say `auth.mfa:<user id>`)
 * as associated data: copied to another row it does not open.
 *
 * A single node without SECRETS_KEY keeps a generated one in DATA_DIR/secrets.key; a node
 * with a transporter that stores such secrets refuses to start without it.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { ConfigError, type Config } from "../config/index.ts";
import { keyFromFile } from "./key-file.ts";

const PREFIX = "sb1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_FILE = "secrets.key";

export interface SecretKey {
	id: string;
	key: Buffer;
}

/** The current key first, then the retired ones. */
export type SecretKeyring = readonly SecretKey[];

function derive(secret: string): SecretKey {
	const ikm = Buffer.from(secret, "utf8");
	const key = Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), "paymesh:secrets-at-rest:key:v1", 32));
	const id = Buffer.from(hkdfSync("sha256", ikm, Buffer.alloc(0), "paymesh:secrets-at-rest:id:v1", 6)).toString("base64url");
	return { id, key };
}

export function secretKeyring(current: string, previous: readonly string[] = []): SecretKeyring {
	return [current, ...previous].map(derive);
}

/** The keyring of this node: SECRETS_KEY (and SECRETS_KEYS_PREVIOUS), or a single node's DATA_DIR/secrets.key. */
export function nodeSecretKeyring(config: Pick<Config, "secrets" | "dataDir" | "transporter">): SecretKeyring {
	if (config.secrets.key !== null) return secretKeyring(config.secrets.key, config.secrets.previousKeys);
	if (config.transporter !== null) {
		throw new ConfigError("SECRETS_KEY is required when TRANSPORTER is set on a node that stores secrets (auth, webhooks, methods): expected at least 32 random characters shared by those nodes, e.g. openssl rand -base64 48");
	}
	const key = keyFromFile(config.dataDir, KEY_FILE);
	if (key.length < 32) throw new Error(`${config.dataDir}/${KEY_FILE} holds no usable key: set SECRETS_KEY or remove the file`);
	return secretKeyring(key);
}

export function isSealed(value: string): boolean {
	return value.startsWith(`${PREFIX}.`);
}

export function seal(keys: SecretKeyring, plaintext: string, context: string): string {
	const k = keys[0];
	if (!k) throw new Error("no secrets key");
	const iv = randomBytes(IV_BYTES);
	const cipher = createCipheriv("aes-256-gcm", k.key, iv);
	cipher.setAAD(Buffer.from(`${PREFIX}.${k.id}.${context}`, "utf8"));
	const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
	return `${PREFIX}.${k.id}.${iv.toString("base64url")}.${ct.toString("base64url")}`;
}

/** The plaintext, or null when the value does not open (another context, an unknown key, tampered). */
export function open(keys: SecretKeyring, sealed: string, context: string): string | null {
	const parts = sealed.split(".");
	if (parts.length !== 4 || parts[0] !== PREFIX) return null;
	const [, id, ivText, ctText] = parts;
	const k = keys.find(x => x.id === id);
	if (!k || !ivText || !ctText) return null;
	const iv = Buffer.from(ivText, "base64url");
	const data = Buffer.from(ctText, "base64url");
	if (iv.length !== IV_BYTES || data.length < TAG_BYTES) return null;
	try {
		const decipher = createDecipheriv("aes-256-gcm", k.key, iv);
		decipher.setAAD(Buffer.from(`${PREFIX}.${k.id}.${context}`, "utf8"));
		decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
		return Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString("utf8");
	} catch {
		return null;
	}
}

/** Whether a sealed value is under a retired key (to be sealed again with the current one). */
export function sealedWithRetiredKey(keys: SecretKeyring, sealed: string): boolean {
	return isSealed(sealed) && sealed.split(".")[1] !== keys[0]?.id;
}
