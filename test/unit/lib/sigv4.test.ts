/**
 * lib/sigv4.ts against AWS's published Signature Version 4 examples: the test suite's
 * get-vanilla (canonical request, its hash, the string to sign, the Authorization header)
 * and the two header-signed examples of the S3 documentation (GET with a Range, PUT with a
 * body and a storage class); then against the aws4 package, an implementation of its own,
 * on generated requests.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import aws4 from "aws4";
import fc from "fast-check";
import { amzDate, canonicalRequest, credentialScope, EMPTY_SHA256, sha256Hex, sigV4Signer, stringToSign, uriEncode } from "../../../lib/sigv4.ts";

// The AWS test suite's credentials (its secret contains "EXAMPLE": config would refuse it as a placeholder).
const SUITE = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service" };
// The S3 documentation's (note "/bPxR" where the suite has "+bPxR").
const S3_DOCS = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "s3" };

describe("AWS Signature Version 4", () => {
	it("reproduces the test suite's get-vanilla step by step", () => {
		const date = amzDate(new Date("2015-08-30T12:36:00Z"));
		assert.equal(date, "20150830T123600Z");
		const req = { method: "GET", path: "/", headers: { Host: "example.amazonaws.com", "X-Amz-Date": date }, payloadHash: sha256Hex("") };
		assert.equal(req.payloadHash, EMPTY_SHA256);
		const { canonical, signedHeaders } = canonicalRequest(req);
		// get-vanilla.creq
		assert.equal(canonical, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		assert.equal(signedHeaders, "host;x-amz-date");
		assert.equal(sha256Hex(canonical), "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
		// get-vanilla.sts
		const scope = credentialScope(date, SUITE.region, SUITE.service);
		assert.equal(stringToSign(date, scope, canonical), "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
		// get-vanilla.authz
		assert.equal(
			sigV4Signer(SUITE)(req, date),
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		);
	});

	it("reproduces the S3 documentation's GET object example", () => {
		const date = "20130524T000000Z";
		const auth = sigV4Signer(S3_DOCS)({
			method: "GET", path: "/test.txt", payloadHash: EMPTY_SHA256,
			headers: { host: "examplebucket.s3.amazonaws.com", range: "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": date },
		}, date);
		assert.equal(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	});

	it("reproduces the S3 documentation's PUT object example (a body, an encoded key)", () => {
		const date = "20130524T000000Z";
		const payloadHash = sha256Hex("Welcome to Amazon S3.");
		assert.equal(payloadHash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
		const req = {
			method: "PUT", path: `/${uriEncode("test$file.text")}`, payloadHash,
			headers: { Host: "examplebucket.s3.amazonaws.com", Date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-content-sha256": payloadHash, "x-amz-date": date, "x-amz-storage-class": "REDUCED_REDUNDANCY" },
		};
		assert.equal(req.path, "/test%24file.text");
		const { canonical } = canonicalRequest(req);
		assert.equal(stringToSign(date, credentialScope(date, "us-east-1", "s3"), canonical), "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
		assert.equal(sigV4Signer(S3_DOCS)(req, date), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	});

	it("refuses a header named twice and a malformed time", () => {
		const sign = sigV4Signer(SUITE);
		assert.throws(() => sign({ method: "GET", path: "/", headers: { Host: "a", host: "b" }, payloadHash: EMPTY_SHA256 }, "20150830T123600Z"), /header host is given twice/);
		assert.throws(() => sign({ method: "GET", path: "/", headers: { host: "a" }, payloadHash: EMPTY_SHA256 }, "2015-08-30T12:36:00Z"), /yyyymmddThhmmssZ/);
	});

	it("agrees with the aws4 package on generated requests (path, query, headers, body, time)", () => {
		const unreserved = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);
		const text = fc.stringMatching(/^[ -~]{0,20}$/);
		const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,12}$/).filter(n => n !== "x-amz-date");
		fc.assert(fc.property(
			fc.array(unreserved, { minLength: 1, maxLength: 4 }),
			// Not `__proto__`: aws4 parses the query into a plain object and loses that name (the
			// request it signs is another one); ours keeps it, as the case below shows.
			fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z0-9._~ !$'()*,;:@/+-]{1,10}$/).filter(k => k !== "__proto__"), text), { maxLength: 4 }),
			fc.uniqueArray(fc.tuple(headerName, text), { selector: ([n]) => n, maxLength: 4 }),
			fc.uint8Array({ maxLength: 64 }),
			fc.date({ min: new Date("2001-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }),
			fc.constantFrom("GET", "PUT", "DELETE"),
			(segments, query, extra, body, at, method) => {
				const date = amzDate(at);
				const path = `/${segments.map(uriEncode).join("/")}`;
				const payloadHash = sha256Hex(body);
				const headers: Record<string, string> = { host: "bucket.example.test:9000", "x-amz-date": date, "x-amz-content-sha256": payloadHash };
				for (const [n, v] of extra) headers[n] = v;
				const ours = sigV4Signer({ ...SUITE, service: "s3" })({ method, path, query, headers, payloadHash }, date);
				// aws4 reads the query from the path (and, for s3, keeps the first value of a repeated name).
				const firstOnly = query.filter(([k], i) => query.findIndex(([k2]) => k2 === k) === i);
				const qs = firstOnly.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
				const theirs = aws4.sign({ method, path: qs ? `${path}?${qs}` : path, service: "s3", region: SUITE.region, headers: { ...headers } }, SUITE);
				const ours2 = sigV4Signer({ ...SUITE, service: "s3" })({ method, path, query: firstOnly, headers, payloadHash }, date);
				assert.equal(ours2, theirs.headers?.["Authorization"]);
				// Without repeated names both readings are the same request.
				if (firstOnly.length === query.length) assert.equal(ours, ours2);
			},
		), { numRuns: 300, seed: 20261203 });
	});

	it("signs a query name that is an object key elsewhere (__proto__) as any other name", () => {
		const date = "20010101T000000Z";
		const sign = (query: [string, string][]) => sigV4Signer({ ...SUITE, service: "s3" })({ method: "GET", path: "/a", query, headers: { host: "h", "x-amz-date": date, "x-amz-content-sha256": EMPTY_SHA256 }, payloadHash: EMPTY_SHA256 }, date);
		assert.notEqual(sign([["__proto__", ""]]), sign([]));
		assert.notEqual(sign([["__proto__", ""]]), sign([["__proto_", ""]]));
	});
});
