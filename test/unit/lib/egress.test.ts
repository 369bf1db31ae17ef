import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { checkPublicUrl, EgressRefused, isPublicAddress, postOnce, publicOnlyLookup } from "../../../lib/egress.ts";

describe("egress: which addresses count as public", () => {
	it("refuses loopback, private, link-local (cloud metadata), shared, reserved and multicast ranges, at their edges", () => {
		for (const a of ["127.0.0.1", "127.255.255.255", "10.0.0.0", "10.255.255.255", "172.16.0.0", "172.31.255.255", "192.168.1.1", "169.254.169.254",
			"100.64.0.0", "100.127.255.255", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.2.1",
			"::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"]) {
			assert.equal(isPublicAddress(a), false, a);
		}
	});

	it("accepts public addresses just outside those ranges", () => {
		for (const a of ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "11.0.0.0", "169.253.255.255",
			"2606:4700::1111", "::ffff:8.8.8.8"]) {
			assert.equal(isPublicAddress(a), true, a);
		}
	});

	it("treats anything that is not an IP address as not public", () => {
		for (const a of ["", "localhost", "example.com", "999.1.1.1", "1.2.3", "::g"]) assert.equal(isPublicAddress(a), false, a);
	});

	it("checks URLs by their host: IP literals and localhost are refused before any connection", () => {
		for (const u of ["http://127.0.0.1:8080/hook", "http://[::1]/x", "https://10.1.2.3/", "http://localhost:3000/", "http://LOCALHOST./", "http://api.localhost/", "http://169.254.169.254/latest/meta-data"]) {
			assert.throws(() => checkPublicUrl(u), EgressRefused, u);
		}
		for (const u of ["https://example.com/hook", "http://8.8.8.8/", "https://[2606:4700::1111]/"]) assert.doesNotThrow(() => checkPublicUrl(u), u);
	});
});

describe("egress: postOnce", () => {
	let server: Server;
	let port = 0;
	const received: string[] = [];

	before(async () => {
		server = createServer((req, res) => {
			let body = "";
			req.on("data", c => (body += c));
			req.on("end", () => {
				received.push(body);
				res.writeHead(req.url === "/fail" ? 500 : 204).end(req.url === "/fail" ? "x".repeat(1_000) : "");
			});
		});
		await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
		port = (server.address() as AddressInfo).port;
	});
	after(() => new Promise<void>(r => server.close(() => r())));

	it("posts when private addresses are allowed, reading at most the given number of characters back", async () => {
		const ok = await postOnce(`http://127.0.0.1:${port}/ok`, "{\"a\":1}", { "Content-Type": "application/json" }, { timeoutMs: 2_000, publicOnly: false, responseCharsMax: 100 });
		assert.equal(ok.status, 204);
		const failed = await postOnce(`http://127.0.0.1:${port}/fail`, "{}", {}, { timeoutMs: 2_000, publicOnly: false, responseCharsMax: 100 });
		assert.deepEqual([failed.status, failed.text.length], [500, 100]);
		assert.deepEqual(received.splice(0), ["{\"a\":1}", "{}"]);
	});

	it("refuses at connect time a name that resolves to loopback (the check a renamed host cannot dodge)", async () => {
		const looked = await new Promise<Error | null>(resolve => publicOnlyLookup("localhost", {}, err => resolve(err)));
		assert.ok(looked instanceof EgressRefused, String(looked));
		await assert.rejects(postOnce(`http://localhost:${port}/ok`, "{}", {}, { timeoutMs: 2_000, publicOnly: true, responseCharsMax: 100 }), EgressRefused);
		await assert.rejects(postOnce(`http://127.0.0.1:${port}/ok`, "{}", {}, { timeoutMs: 2_000, publicOnly: true, responseCharsMax: 100 }), EgressRefused);
		assert.deepEqual(received, [], "nothing reached the server");
	});
});
