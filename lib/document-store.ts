/**
 * Where uploaded documents (KYC) are kept, behind one interface so the storage can change
 * without the service: a directory by default (KYC_STORAGE_DIR, one file per document,
 * mode 0600, written atomically), or an S3-compatible bucket (KYC_STORAGE=s3, s3Store), which
 * several users nodes share without a common mount. documentStoreFor picks one by config.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { amzDate, EMPTY_SHA256, sha256Hex, sigV4Signer, uriEncode } from "./sigv4.ts";

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

/** The largest document any store keeps or hands back (KYC_DOCUMENT_BYTES_MAX goes up to it). */
export const DOCUMENT_BYTES_LIMIT = 20 * 1024 * 1024;

/** KYC_STORAGE=s3 (config/index.ts, docs/identity.md). */
export interface S3StoreConfig {
	/** Scheme, host and port of the service (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`); no path. */
	endpoint: string;
	bucket: string;
	region: string;
	accessKeyId: string;
	/** Signs requests; never sent, never logged, never in an error. */
	secretAccessKey: string;
	/** `<endpoint>/<bucket>/<key>` (MinIO and most self-hosted services) instead of `<bucket>.<endpoint host>/<key>`. */
	pathStyle: boolean;
	/** x-amz-server-side-encryption on every PUT; null: the bucket's default. */
	serverSideEncryption: "AES256" | "aws:kms" | null;
	/** The KMS key of aws:kms; null: the account's default key. */
	kmsKeyId: string | null;
	/** Each request, its body included, is abandoned after this. */
	timeoutMs: number;
}

export interface S3StoreOptions {
	/** Injected by tests (an in-path tamperer); the global fetch otherwise. */
	fetch?: typeof fetch;
	/** The signing time; the system clock otherwise. */
	now?: () => Date;
	/** Largest document put or read; DOCUMENT_BYTES_LIMIT otherwise. */
	bytesMax?: number;
}

/** Most bytes of an error answer read for its S3 error code. */
const ERROR_BODY_BYTES_MAX = 4_096;

class S3StoreError extends Error {
	override name = "S3StoreError";
}

/** The bytes of an answer, at most `max`: more is an error (the rest is not read). */
async function bodyOf(res: Response, max: number, truncate: boolean): Promise<Buffer> {
	const declared = Number(res.headers.get("content-length") ?? "");
	if (!truncate && Number.isFinite(declared) && declared > max) {
		await res.body?.cancel();
		throw new S3StoreError(`the answer has ${declared} bytes, more than the ${max} a document may have`);
	}
	const chunks: Buffer[] = [];
	let total = 0;
	if (res.body) {
		for await (const chunk of res.body) {
			const room = max - total;
			if (chunk.byteLength > room) {
				if (!truncate) throw new S3StoreError(`the answer has more than the ${max} bytes a document may have`);
				chunks.push(Buffer.from(chunk.subarray(0, room)));
				break; // leaving the loop cancels the rest of the body
			}
			chunks.push(Buffer.from(chunk));
			total += chunk.byteLength;
		}
	}
	return Buffer.concat(chunks);
}

/** Why a fetch failed, without anything of the request (no headers, no URL credentials). */
function failure(err: unknown, timeoutMs: number): string {
	if (err instanceof S3StoreError) return err.message;
	const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
	if (e.name === "TimeoutError") return `no answer within ${timeoutMs} ms`;
	return e.cause?.code ?? e.cause?.message ?? e.message ?? "unknown error";
}

/**
 * Documents in an S3-compatible bucket, one object per document under its id, every request
 * signed with AWS Signature Version 4 (lib/sigv4.ts): PUT with the body's SHA-256 in
 * x-amz-content-sha256, which the service checks against what arrives, so a body changed on
 * the way is refused; GET (404 NoSuchKey: null); DELETE (a missing object is no error).
 * Requests time out after timeoutMs, bodies are bounded both ways, redirects are not
 * followed (a wrong region or endpoint is an error, not a second request elsewhere).
 */
export function s3Store(s: S3StoreConfig, options: S3StoreOptions = {}): DocumentStore {
	const send = options.fetch ?? fetch;
	const now = options.now ?? (() => new Date());
	const bytesMax = options.bytesMax ?? DOCUMENT_BYTES_LIMIT;
	const sign = sigV4Signer({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, region: s.region, service: "s3" });
	const endpoint = new URL(s.endpoint);
	const bucket = uriEncode(s.bucket);

	function objectUrl(key: string): URL {
		const k = uriEncode(checked(key));
		return s.pathStyle ? new URL(`/${bucket}/${k}`, endpoint) : new URL(`${endpoint.protocol}//${s.bucket}.${endpoint.host}/${k}`);
	}

	async function request(method: "PUT" | "GET" | "DELETE", key: string, body?: Buffer): Promise<Response> {
		const url = objectUrl(key);
		const payloadHash = body ? sha256Hex(body) : EMPTY_SHA256;
		const date = amzDate(now());
		const headers: Record<string, string> = { "x-amz-content-sha256": payloadHash, "x-amz-date": date };
		if (body) {
			headers["content-type"] = "application/octet-stream";
			if (s.serverSideEncryption) headers["x-amz-server-side-encryption"] = s.serverSideEncryption;
			if (s.serverSideEncryption === "aws:kms" && s.kmsKeyId) headers["x-amz-server-side-encryption-aws-kms-key-id"] = s.kmsKeyId;
		}
		// Signed as fetch sends it: the URL's host, its port unless the scheme's default.
		const authorization = sign({ method, path: url.pathname, headers: { ...headers, host: url.host }, payloadHash }, date);
		try {
			return await send(url, {
				method,
				headers: { ...headers, authorization },
				...(body ? { body } : {}),
				redirect: "manual",
				signal: AbortSignal.timeout(s.timeoutMs),
			});
		} catch (err) {
			throw new S3StoreError(`S3 ${method} of document ${key} failed: ${failure(err, s.timeoutMs)}`);
		}
	}

	/** The S3 error code of an answer that is not a success (its body read, bounded). */
	async function errorCode(res: Response): Promise<string> {
		const text = (await bodyOf(res, ERROR_BODY_BYTES_MAX, true).catch(() => Buffer.alloc(0))).toString("utf8");
		return /<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(text)?.[1] ?? "";
	}

	async function refused(method: string, key: string, res: Response, code?: string): Promise<S3StoreError> {
		const c = code ?? (await errorCode(res));
		return new S3StoreError(`S3 ${method} of document ${key} answered ${res.status}${c ? ` ${c}` : ""}`);
	}

	return {
		async put(key, data) {
			if (data.length > bytesMax) throw new S3StoreError(`document ${key} has ${data.length} bytes, more than the ${bytesMax} a document may have`);
			const res = await request("PUT", key, data);
			if (!res.ok) throw await refused("PUT", key, res);
			await res.body?.cancel();
		},
		async get(key) {
			const res = await request("GET", key);
			if (res.status === 404) {
				const code = await errorCode(res);
				// Only S3's own answer for a missing key is a missing document: a missing bucket, or a
				// 404 without S3's code (a wrong endpoint or path), is a misconfiguration.
				if (code === "NoSuchKey") return null;
				throw await refused("GET", key, res, code);
			}
			if (!res.ok) throw await refused("GET", key, res);
			try {
				return await bodyOf(res, bytesMax, false);
			} catch (err) {
				throw new S3StoreError(`S3 GET of document ${key} failed: ${failure(err, s.timeoutMs)}`);
			}
		},
		async delete(key) {
			const res = await request("DELETE", key);
			if (res.status === 404) {
				const code = await errorCode(res);
				if (code === "NoSuchBucket") throw await refused("DELETE", key, res, code);
				return;
			}
			if (!res.ok) throw await refused("DELETE", key, res);
			await res.body?.cancel();
		},
	};
}

/** The store config chooses: the S3-compatible bucket when KYC_STORAGE=s3, else the directory. */
export function documentStoreFor(kyc: { storageDir: string; s3: S3StoreConfig | null }): DocumentStore {
	return kyc.s3 ? s3Store(kyc.s3) : directoryStore(kyc.storageDir);
}
