/**
 * A key kept in a file under DATA_DIR for a single node started without one configured
 * (the embedded default): created once (48 random bytes, mode 0600) and read at every
 * start, atomically, so a concurrent start reads the winner's. Clustered nodes must share
 * their keys through the environment instead: a file in one pod's DATA_DIR is not shared.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function keyFromFile(dataDir: string, fileName: string): string {
	const path = join(dataDir, fileName);
	try {
		return readFileSync(path, "utf8").trim();
	} catch (err) {
		if ((err as { code?: string }).code !== "ENOENT") throw err;
	}
	mkdirSync(dataDir, { recursive: true });
	const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}`;
	writeFileSync(tmp, `${randomBytes(48).toString("base64url")}\n`, { mode: 0o600 });
	try {
		linkSync(tmp, path);
	} catch (err) {
		if ((err as { code?: string }).code !== "EEXIST") throw err;
	} finally {
		unlinkSync(tmp);
	}
	return readFileSync(path, "utf8").trim();
}
