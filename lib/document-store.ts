/**
 * Where uploaded documents (KYC) are kept, behind one interface so the storage can change
 * without the service: a directory by default (KYC_STORAGE_DIR, one file per document,
 * mode 0600, written atomically). Several nodes share documents only through a directory
 * they all mount; an S3-compatible store would implement the same three calls.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface DocumentStore {
	put(key: string, data: Buffer): Promise<void>;
	/** The document, or null when there is none under the key. */
	get(key: string): Promise<Buffer | null>;
	delete(key: string): Promise<void>;
}

/** Keys are document ids: a UUID, so a key can never name a path outside the directory. */
const KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checked(key: string): string {
	if (!KEY.test(key)) throw new Error("a document key must be a UUID");
	return key;
}

export function directoryStore(dir: string): DocumentStore {
	let made: Promise<unknown> | null = null;
	const ready = () => (made ??= mkdir(dir, { recursive: true, mode: 0o700 }));
	return {
		async put(key, data) {
			await ready();
			const path = join(dir, checked(key));
			const tmp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
			await writeFile(tmp, data, { mode: 0o600 });
			await rename(tmp, path);
		},
		async get(key) {
			try {
				return await readFile(join(dir, checked(key)));
			} catch (err) {
				if ((err as { code?: string }).code === "ENOENT") return null;
				throw err;
			}
		},
		async delete(key) {
			await rm(join(dir, checked(key)), { force: true });
		},
	};
}
