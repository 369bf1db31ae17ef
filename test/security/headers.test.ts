/**
 * Issue 16, finding 12: gateway responses had no Content-Security-Policy, framing
 * protection, X-Content-Type-Options or Referrer-Policy. Every response carries them now:
 * API answers and errors, health and metrics, the dashboard's files, 404s, and what
 * Socket.IO serves on the same server. The gateway has no TLS setting (TLS ends at the proxy
 * in front), so it sends no Strict-Transport-Security; the proxy does.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";

const PUBLIC = new URL("../../public/", import.meta.url).pathname;

let node: NodeOnDatabase;
let base = "";

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1" });
	base = `http://127.0.0.1:${gatewayPort(node.broker)}`;
});

after(async () => {
	await node?.stop();
});

/** The policy's directives by name. */
function directives(csp: string | null): Map<string, string> {
	return new Map((csp ?? "").split(";").map(d => d.trim()).filter(Boolean).map(d => {
		const [name = "", ...values] = d.split(/\s+/);
		return [name.toLowerCase(), values.join(" ")];
	}));
}

describe("finding 12: security headers on every gateway response", () => {
	const requests: [string, string, RequestInit?][] = [
		["dashboard", "/"], ["dashboard script", "/app.js"], ["dashboard style", "/app.css"], ["Socket.IO client", "/socket.io/socket.io.esm.min.js"],
		["Socket.IO polling", "/socket.io/?EIO=4&transport=polling"], ["OpenAPI", "/api/v1/openapi.json"], ["liveness", "/health/live"], ["readiness", "/health/ready"],
		["metrics", "/metrics"], ["unknown path", "/nothing-here"], ["no token", "/api/v1/me"],
		["bad input", "/api/v1/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: "{" }],
		["refusal", "/api/v1/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: "no@example.com", password: "Wrong-Password-1" }) }],
		["provider callback", "/api/v1/providers/bank/callbacks", { method: "POST", body: "{}" }],
	];
	for (const [what, path, init] of requests) {
		it(`${what} (${init?.method ?? "GET"} ${path})`, async () => {
			const res = await fetch(base + path, init);
			await res.arrayBuffer();
			const csp = directives(res.headers.get("content-security-policy"));
			assert.equal(csp.get("default-src"), "'none'", `${path}: ${res.headers.get("content-security-policy")}`);
			assert.equal(csp.get("script-src"), "'self'");
			assert.equal(csp.get("style-src"), "'self'");
			assert.equal(csp.get("frame-ancestors"), "'none'");
			assert.equal(csp.get("base-uri"), "'none'");
			assert.ok(!(res.headers.get("content-security-policy") ?? "").includes("unsafe"), "no unsafe-inline or unsafe-eval");
			assert.equal(res.headers.get("x-frame-options"), "DENY");
			assert.equal(res.headers.get("x-content-type-options"), "nosniff");
			assert.equal(res.headers.get("referrer-policy"), "no-referrer");
			assert.equal(res.headers.get("strict-transport-security"), null, "no HSTS without TLS on the gateway");
		});
	}

	it("the dashboard needs nothing the policy forbids: no inline script, style or handler, no style attribute set from script", () => {
		for (const file of readdirSync(PUBLIC)) {
			const text = readFileSync(`${PUBLIC}${file}`, "utf8");
			if (file.endsWith(".html")) {
				for (const m of text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
					assert.match(m[1] ?? "", /\bsrc="\/[^"]+"/, `${file}: a script without src`);
					assert.equal((m[2] ?? "").trim(), "", `${file}: an inline script`);
				}
				assert.doesNotMatch(text, /<style\b/i, `${file}: an inline style element`);
				assert.doesNotMatch(text, /\sstyle\s*=/i, `${file}: a style attribute`);
				assert.doesNotMatch(text, /\son[a-z]+\s*=/i, `${file}: an inline event handler`);
				assert.doesNotMatch(text, /(src|href)\s*=\s*"(https?:)?\/\/(?!\/)/i, `${file}: a resource from another origin`);
			}
			if (file.endsWith(".js")) {
				assert.doesNotMatch(text, /setAttribute\(\s*["']style["']/, `${file}: sets a style attribute`);
				assert.doesNotMatch(text, /\.innerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(/, `${file}: builds HTML or code from strings`);
			}
		}
	});
});
