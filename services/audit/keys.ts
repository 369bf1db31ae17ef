/**
 * The audit chain's keys: AUDIT_KEY (and AUDIT_KEYS_PREVIOUS) from the config. A single
 * node started without one (the embedded default) keeps a generated key in
 * DATA_DIR/audit.key, created once (mode 0600) and read at every start, so `npm start`
 * works with nothing configured. An audit node with a transporter refuses to start without
 * AUDIT_KEY: every audit node needs the same key, and a file in one pod's DATA_DIR is not
 * shared.
 */
import { join } from "node:path";
import { ConfigError, type Config } from "../../config/index.ts";
import { keyFromFile } from "../../lib/key-file.ts";
import { keyring, type Keyring } from "./chain.ts";

const KEY_FILE = "audit.key";

export function auditKeys(config: Pick<Config, "audit" | "dataDir" | "transporter">): { keys: Keyring; fromFile: string | null } {
	if (config.audit.key !== null) return { keys: keyring(config.audit.key, config.audit.previousKeys), fromFile: null };
	if (config.transporter !== null) {
		throw new ConfigError("AUDIT_KEY is required when TRANSPORTER is set on a node that runs audit: expected at least 32 random characters shared by every audit node (it keys the audit chain), e.g. openssl rand -base64 48");
	}
	const key = keyFromFile(config.dataDir, KEY_FILE);
	if (key.length < 32) throw new Error(`${join(config.dataDir, KEY_FILE)} holds no usable audit key: set AUDIT_KEY or remove the file`);
	return { keys: keyring(key), fromFile: join(config.dataDir, KEY_FILE) };
}
