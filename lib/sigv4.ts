/**
 * AWS Signature Version 4 for requests signed in the Authorization header, with node:crypto
 * only (no SDK): what the S3-compatible document store (lib/document-store.ts) signs with.
 * The steps are AWS's: a canonical request (method, path, query, the signed headers, the
 * body's SHA-256), a string to sign naming the time and the credential scope
 * (day/region/service/aws4_request), and an HMAC chain from the secret key through the day,
 * region and service. Checked against AWS's published examples and the aws4 package
 * (test/unit/lib/sigv4.test.ts).
 *
 * The secret key stays inside the signer's closure: a signer is a function, so logging or
 * inspecting one shows nothing of it, and no error here names it.
 */
import { createHash, createHmac } from "node:crypto";

export const ALGORITHM = "AWS4-HMAC-SHA256";
/** SHA-256 of no bytes: the payload hash of a request without a body. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export function sha256Hex(data: string | Uint8Array): string {
	return createHash("sha256").update(data).digest("hex");
}

/** RFC 3986 percent-encoding of one path segment or query part: everything but A-Z a-z 0-9 - . _ ~. */
export function uriEncode(s: string): string {
	return encodeURIComponent(s).replace(/[!'()*]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `20150830T123600Z`: the request time of x-amz-date and the string to sign. */
export function amzDate(at: Date): string {
	return at.toISOString().replace(/[-:]|\.\d{3}/g, "");
}

export interface SigV4Request {
	method: string;
	/** The path as sent, each segment already encoded (uriEncode); S3 signs it as it is, not encoded twice. */
	path: string;
	/** Query parameters, not encoded; none by default. */
	query?: readonly (readonly [string, string])[];
	/** Every header to sign (host among them), names in any case; each name once. */
	headers: Readonly<Record<string, string>>;
	/** Hex SHA-256 of the body (S3 also wants it sent as x-amz-content-sha256). */
	payloadHash: string;
}

/** The canonical request of AWS's step 1, and the signed-header list it names. */
export function canonicalRequest(req: SigV4Request): { canonical: string; signedHeaders: string } {
	const headers = new Map<string, string>();
	for (const [name, value] of Object.entries(req.headers)) {
		const lower = name.toLowerCase();
		if (headers.has(lower)) throw new Error(`header ${lower} is given twice`);
		// Values trimmed, inner runs of white space one space.
		headers.set(lower, value.trim().replace(/\s+/g, " "));
	}
	const names = [...headers.keys()].sort();
	const query = (req.query ?? [])
		.map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
		.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
		.map(([k, v]) => `${k}=${v}`)
		.join("&");
	const signedHeaders = names.join(";");
	const canonical = [
		req.method.toUpperCase(),
		req.path === "" ? "/" : req.path,
		query,
		names.map(n => `${n}:${headers.get(n)}\n`).join(""),
		signedHeaders,
		req.payloadHash,
	].join("\n");
	return { canonical, signedHeaders };
}

/** `<day>/<region>/<service>/aws4_request`. */
export function credentialScope(date: string, region: string, service: string): string {
	return `${date.slice(0, 8)}/${region}/${service}/aws4_request`;
}

/** AWS's step 2. */
export function stringToSign(date: string, scope: string, canonical: string): string {
	return [ALGORITHM, date, scope, sha256Hex(canonical)].join("\n");
}

function hmac(key: string | Buffer, data: string): Buffer {
	return createHmac("sha256", key).update(data, "utf8").digest();
}

/** AWS's step 3: the key of one day, region and service, derived from the secret. */
export function signingKey(secretAccessKey: string, day: string, region: string, service: string): Buffer {
	return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), "aws4_request");
}

export interface SigV4Credentials {
	accessKeyId: string;
	secretAccessKey: string;
	region: string;
	service: string;
}

/**
 * A signer for one set of credentials: given a request and its time (the x-amz-date it
 * carries), the Authorization header. The day's signing key is kept, not the work of each call.
 */
export function sigV4Signer(credentials: SigV4Credentials): (req: SigV4Request, date: string) => string {
	const { accessKeyId, secretAccessKey, region, service } = credentials;
	let keyDay = "";
	let key: Buffer | null = null;
	return (req, date) => {
		if (!/^\d{8}T\d{6}Z$/.test(date)) throw new Error("the request time must be given as yyyymmddThhmmssZ");
		const day = date.slice(0, 8);
		if (key === null || keyDay !== day) {
			key = signingKey(secretAccessKey, day, region, service);
			keyDay = day;
		}
		const scope = credentialScope(date, region, service);
		const { canonical, signedHeaders } = canonicalRequest(req);
		const signature = createHmac("sha256", key).update(stringToSign(date, scope, canonical), "utf8").digest("hex");
		return `${ALGORITHM} Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
	};
}
