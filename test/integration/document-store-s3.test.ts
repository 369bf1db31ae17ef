/**
 * Issue 16 (KYC documents behind a storage interface, S3-compatible by config): the S3 store
 * of lib/document-store.ts against a small S3 in this test (node:http on loopback) that
 * answers the three calls the store makes and checks every request as S3 does: the
 * AWS Signature Version 4 recomputed from the request as received with the aws4 package (an
 * implementation of its own, not lib/sigv4.ts), host, x-amz-date and x-amz-content-sha256
 * among the signed headers and every x-amz-* header signed, the time within 15 minutes, and
 * a PUT's body against its x-amz-content-sha256. Anything else is refused as S3 refuses it
 * (403 SignatureDoesNotMatch, 400 XAmzContentSHA256Mismatch...).
 *
 *  - config (KYC_STORAGE=s3 ...) → documentStoreFor → put, get, delete, get → null; the
 *    server-side encryption header sent and signed;
 *  - a missing key → null; a missing bucket → an error, not "no document";
 *  - a wrong secret → every call fails, nothing stored (a wrong key id, region or clock too);
 *  - virtual-hosted addressing: the bucket's host name, and that host signed;
 *  - a body changed on the way (header kept, or header changed to match) → refused;
 *  - size bounds both ways, a server that never answers → an error after the timeout, a
 *    closed port → an error; the secret is in none of the messages, in no request, and not
 *    to be seen by inspecting the store.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import aws4 from "aws4";
import { loadConfig } from "../../config/index.ts";
import { documentStoreFor, s3Store, type DocumentStore, type S3StoreConfig } from "../../lib/document-store.ts";

const ACCESS_KEY_ID = "PAYMESHTESTKEY0001";
const SECRET = randomBytes(30).toString("base64url");
const REGION = "eu-central-1";
const BUCKET = "paymesh-kyc";

interface Stored {
	body: Buffer;
	headers: Record<string, string>;
	/** Served without content-length, in chunks. */
	chunked?: boolean;
}

interface FakeS3 {
	url: string;
	objects: Map<string, Stored>;
	/** Every request as received, raw: head and body. */
	wire: string[];
	/** Refusals, by S3 error code. */
	refusals: string[];
	/** Keys whose requests are never answered. */
	hang: Set<string>;
	close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function fail(res: ServerResponse, status: number, code: string, refusals: string[]): void {
	refusals.push(code);
	res.writeHead(status, { "content-type": "application/xml" });
	res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>refused by the test S3</Message></Error>`);
}

/** Why S3 would refuse the request's signature, or null. aws4 recomputes it from the request as received. */
function signatureProblem(req: IncomingMessage): string | null {
	const auth = req.headers.authorization ?? "";
	const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$/.exec(auth);
	if (!m) return "AccessDenied";
	const [keyId, day, region, signedList] = [m[1], m[2], m[3], m[4] ?? ""];
	if (keyId !== ACCESS_KEY_ID) return "InvalidAccessKeyId";
	if (region !== REGION) return "AuthorizationHeaderMalformed";
	const signed = signedList.split(";");
	for (const needed of ["host", "x-amz-content-sha256", "x-amz-date"]) if (!signed.includes(needed)) return "AccessDenied";
	// S3 wants every x-amz-* header signed.
	if (Object.keys(req.headers).some(h => h.startsWith("x-amz-") && !signed.includes(h))) return "AccessDenied";
	const date = String(req.headers["x-amz-date"] ?? "");
	if (!/^\d{8}T\d{6}Z$/.test(date) || date.slice(0, 8) !== day) return "AccessDenied";
	const at = Date.parse(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
	if (Math.abs(Date.now() - at) > 15 * 60_000) return "RequestTimeTooSkewed";
	const headers: Record<string, string> = {};
	for (const name of signed) {
		const v = req.headers[name];
		if (v === undefined) return "AccessDenied";
		headers[name] = Array.isArray(v) ? v.join(",") : v;
	}
	// No body given to aws4: the payload hash is the signed x-amz-content-sha256 (checked against the body separately).
	const expected = aws4.sign({ method: req.method ?? "", path: req.url ?? "/", service: "s3", region: REGION, headers }, { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET });
	return expected.headers?.["Authorization"] === auth ? null : "SignatureDoesNotMatch";
}

async function fakeS3(): Promise<FakeS3> {
	const objects = new Map<string, Stored>();
	const wire: string[] = [];
	const refusals: string[] = [];
	const hang = new Set<string>();
	const server: Server = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const body = Buffer.concat(chunks);
			wire.push(`${req.method} ${req.url}\n${req.rawHeaders.join("\n")}\n\n${body.toString("latin1")}`);
			const [, bucket, key, ...rest] = (req.url ?? "").split("?")[0]?.split("/") ?? [];
			if (bucket !== BUCKET) return fail(res, 404, "NoSuchBucket", refusals);
			if (!key || rest.length > 0) return fail(res, 400, "InvalidRequest", refusals);
			if (hang.has(key)) return; // never answered
			const problem = signatureProblem(req);
			if (problem) return fail(res, problem === "AuthorizationHeaderMalformed" ? 400 : 403, problem, refusals);
			if (req.method === "PUT") {
				if (sha256(body) !== req.headers["x-amz-content-sha256"]) return fail(res, 400, "XAmzContentSHA256Mismatch", refusals);
				const kept: Record<string, string> = {};
				for (const [n, v] of Object.entries(req.headers)) if (typeof v === "string" && (n.startsWith("x-amz-") || n === "content-type")) kept[n] = v;
				objects.set(key, { body, headers: kept });
				res.writeHead(200, { etag: `"${sha256(body).slice(0, 32)}"` }).end();
			} else if (req.method === "GET") {
				const o = objects.get(key);
				if (!o) return fail(res, 404, "NoSuchKey", refusals);
				if (!o.chunked) return res.writeHead(200, { "content-type": "application/octet-stream", "content-length": o.body.length }).end(o.body);
				res.writeHead(200, { "content-type": "application/octet-stream" });
				for (let i = 0; i < o.body.length; i += 1_000) res.write(o.body.subarray(i, i + 1_000));
				res.end();
			} else if (req.method === "DELETE") {
				objects.delete(key);
				res.writeHead(204).end();
			} else fail(res, 405, "MethodNotAllowed", refusals);
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		objects, wire, refusals, hang,
		close: async () => {
			server.closeAllConnections();
			await new Promise<void>(resolve => server.close(() => resolve()));
		},
	};
}

let s3: FakeS3;
let settings: S3StoreConfig;
/** Every error message a store gave in this file, checked at the end for the secret. */
const messages: string[] = [];

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
	await assert.rejects(p, (err: Error) => {
		messages.push(err.message);
		assert.match(err.message, pattern);
		return true;
	});
}

before(async () => {
	s3 = await fakeS3();
	settings = { endpoint: s3.url, bucket: BUCKET, region: REGION, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET, pathStyle: true, serverSideEncryption: null, kmsKeyId: null, timeoutMs: 5_000 };
});

after(async () => {
	await s3?.close();
});

const doc = (n = 3_000) => Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(n)]);

describe("S3-compatible document store", () => {
	it("configured by KYC_STORAGE=s3: put, get, delete, and get after delete is null; the encryption header is sent signed", async () => {
		const config = loadConfig({
			KYC_STORAGE: "s3", KYC_S3_ENDPOINT: s3.url, KYC_S3_BUCKET: BUCKET, KYC_S3_REGION: REGION, KYC_S3_PATH_STYLE: "true",
			KYC_S3_ACCESS_KEY_ID: ACCESS_KEY_ID, KYC_S3_SECRET_ACCESS_KEY: SECRET, KYC_S3_SSE: "AES256",
		});
		const store: DocumentStore = documentStoreFor(config.kyc);
		const key = randomUUID();
		const bytes = doc();
		await store.put(key, bytes);
		assert.deepEqual(s3.objects.get(key)?.body, bytes);
		assert.equal(s3.objects.get(key)?.headers["x-amz-server-side-encryption"], "AES256");
		assert.equal(s3.objects.get(key)?.headers["x-amz-content-sha256"], sha256(bytes));
		assert.deepEqual(await store.get(key), bytes);
		// Written again under the same key: the new bytes.
		const again = doc(10);
		await store.put(key, again);
		assert.deepEqual(await store.get(key), again);
		await store.delete(key);
		assert.equal(s3.objects.has(key), false);
		assert.equal(await store.get(key), null);
		// Deleting what is not there is no error (as rm -f in the directory store).
		await store.delete(key);
		assert.deepEqual(s3.refusals.filter(c => c !== "NoSuchKey"), [], "the test S3 refused a request of the right store");
	});

	it("a missing key is null; a missing bucket is an error, not a missing document", async () => {
		const store = s3Store(settings);
		assert.equal(await store.get(randomUUID()), null);
		const wrongBucket = s3Store({ ...settings, bucket: "paymesh-nobucket" });
		await rejects(wrongBucket.get(randomUUID()), /^S3 GET of document [0-9a-f-]{36} answered 404 NoSuchBucket$/);
		await rejects(wrongBucket.delete(randomUUID()), /answered 404 NoSuchBucket$/);
		await rejects(store.get("../etc/passwd"), /a document key must be a UUID/);
		// A server that is not S3 (a wrong endpoint) answering a bare 404 is an error too, not a missing document.
		const notS3 = createServer((_req, res) => res.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1>"));
		await new Promise<void>(r => notS3.listen(0, "127.0.0.1", r));
		try {
			const wrongEndpoint = s3Store({ ...settings, endpoint: `http://127.0.0.1:${(notS3.address() as AddressInfo).port}` });
			await rejects(wrongEndpoint.get(randomUUID()), /^S3 GET of document [0-9a-f-]{36} answered 404$/);
		} finally {
			await new Promise(r => notS3.close(r));
		}
	});

	it("a wrong secret: every call is refused (403 SignatureDoesNotMatch) and nothing is stored", async () => {
		const key = randomUUID();
		await s3Store(settings).put(key, doc());
		const wrong = s3Store({ ...settings, secretAccessKey: randomBytes(30).toString("base64url") });
		const before = s3.refusals.length;
		const other = randomUUID();
		await rejects(wrong.put(other, doc()), /^S3 PUT of document [0-9a-f-]{36} answered 403 SignatureDoesNotMatch$/);
		await rejects(wrong.get(key), /^S3 GET of document [0-9a-f-]{36} answered 403 SignatureDoesNotMatch$/);
		await rejects(wrong.delete(key), /^S3 DELETE of document [0-9a-f-]{36} answered 403 SignatureDoesNotMatch$/);
		assert.deepEqual(s3.refusals.slice(before), ["SignatureDoesNotMatch", "SignatureDoesNotMatch", "SignatureDoesNotMatch"]);
		assert.equal(s3.objects.has(other), false);
		assert.equal(s3.objects.has(key), true, "the refused delete deleted");
		// And a wrong access key id or region is refused as well.
		await rejects(s3Store({ ...settings, accessKeyId: "PAYMESHOTHERKEY9" }).get(key), /answered 403 InvalidAccessKeyId$/);
		await rejects(s3Store({ ...settings, region: "us-east-1" }).get(key), /answered 400 AuthorizationHeaderMalformed$/);
		// The signed time is checked too: a clock an hour behind is refused.
		await rejects(s3Store(settings, { now: () => new Date(Date.now() - 3_600_000) }).get(key), /answered 403 RequestTimeTooSkewed$/);
	});

	it("addresses the bucket as a host name unless path style, and signs that host", async () => {
		const seen: { url: string; headers: Headers }[] = [];
		const capture: typeof fetch = async (input, init) => {
			seen.push({ url: String(input), headers: new Headers(init?.headers) });
			return new Response(null, { status: 200 });
		};
		const key = randomUUID();
		const at = new Date("2026-03-01T10:00:00Z");
		await s3Store({ ...settings, endpoint: "https://s3.eu-central-1.amazonaws.com", pathStyle: false }, { fetch: capture, now: () => at }).put(key, doc());
		const [sent] = seen;
		assert.ok(sent);
		assert.equal(sent.url, `https://${BUCKET}.s3.eu-central-1.amazonaws.com/${key}`);
		const signed = /SignedHeaders=([a-z0-9;-]+)/.exec(sent.headers.get("authorization") ?? "")?.[1]?.split(";") ?? [];
		assert.deepEqual(signed, ["content-type", "host", "x-amz-content-sha256", "x-amz-date"]);
		const headers: Record<string, string> = { host: `${BUCKET}.s3.eu-central-1.amazonaws.com` };
		for (const h of signed) if (h !== "host") headers[h] = sent.headers.get(h) ?? "";
		const expected = aws4.sign({ method: "PUT", path: `/${key}`, service: "s3", region: REGION, headers }, { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET });
		assert.equal(sent.headers.get("authorization"), expected.headers?.["Authorization"]);
		assert.equal(sent.headers.get("x-amz-date"), "20260301T100000Z");
	});

	it("a body changed on the way is refused: against the signed x-amz-content-sha256, or, with that changed too, against the signature", async () => {
		const tamper = (alsoHash: boolean): typeof fetch => async (input, init) => {
			const original = init?.body;
			assert.ok(original instanceof Uint8Array);
			const body = Buffer.from(original);
			body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0xff;
			const headers = new Headers(init?.headers);
			if (alsoHash) headers.set("x-amz-content-sha256", sha256(body));
			return fetch(input, { ...init, body, headers });
		};
		for (const [alsoHash, code, status] of [[false, "XAmzContentSHA256Mismatch", 400], [true, "SignatureDoesNotMatch", 403]] as const) {
			const key = randomUUID();
			await rejects(s3Store(settings, { fetch: tamper(alsoHash) }).put(key, doc()), new RegExp(`^S3 PUT of document ${key} answered ${status} ${code}$`));
			assert.equal(s3.objects.has(key), false);
			assert.equal(s3.refusals.at(-1), code);
		}
	});

	it("sizes are bounded both ways, a silent server times out, a closed port fails; the secret is in no message, no request and no view of the store", async () => {
		const small = s3Store(settings, { bytesMax: 2_000 });
		const sent = s3.wire.length;
		await rejects(small.put(randomUUID(), doc(2_000)), /has 2009 bytes, more than the 2000 a document may have$/);
		assert.equal(s3.wire.length, sent, "an oversized document was sent");
		for (const chunked of [false, true]) {
			const key = randomUUID();
			s3.objects.set(key, { body: doc(5_000), headers: {}, chunked });
			await rejects(small.get(key), chunked ? /^S3 GET of document [0-9a-f-]{36} failed: the answer has more than the 2000 bytes a document may have$/ : /failed: the answer has 5009 bytes, more than the 2000 a document may have$/);
			assert.equal((await s3Store(settings).get(key))?.length, 5_009);
		}

		const silent = randomUUID();
		s3.hang.add(silent);
		await rejects(s3Store({ ...settings, timeoutMs: 200 }).get(silent), /^S3 GET of document [0-9a-f-]{36} failed: no answer within 200 ms$/);
		await rejects(s3Store({ ...settings, timeoutMs: 200 }).put(silent, doc()), /failed: no answer within 200 ms$/);

		const closed = createServer();
		await new Promise<void>(resolve => closed.listen(0, "127.0.0.1", resolve));
		const port = (closed.address() as AddressInfo).port;
		await new Promise<void>(resolve => closed.close(() => resolve()));
		await rejects(s3Store({ ...settings, endpoint: `http://127.0.0.1:${port}` }).get(randomUUID()), /^S3 GET of document [0-9a-f-]{36} failed: ECONNREFUSED$/);

		const store = s3Store(settings);
		const views = [inspect(store, { depth: 10, showHidden: true }), JSON.stringify(store) ?? "", String(store)];
		assert.ok(messages.length >= 15, `only ${messages.length} messages`);
		for (const text of [...messages, ...s3.wire, ...views]) assert.equal(text.includes(SECRET), false, `the secret in: ${text.slice(0, 200)}`);
	});
});
