/**
 * Issue 16 (KYC documents): a user uploads an identity document (type by its content, size
 * bounded, SHA-256 kept, stored behind the document store: a directory here), support
 * reviews it, an approval raises the tier (four eyes, a verified address needed), and
 * every decision is in the audit log with who made it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort, type HttpResult } from "../support/http.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const BYTES_MAX = 100_000;
const dir = mkdtempSync(join(tmpdir(), "paymesh-kyc-"));
type Session = { user: { id: string }; accessToken: string };
type Doc = { id: string; status: string; sha256: string; sizeBytes: number; requestedTier: number; content?: string };

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1", KYC_STORAGE_DIR: dir, KYC_DOCUMENT_BYTES_MAX: String(BYTES_MAX) });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
	rmSync(dir, { recursive: true, force: true });
});

function expectError(r: HttpResult, status: number, code: string): void {
	assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(r.body)?.slice(0, 300)}`);
	assert.equal((r.body as unknown as { error: { code: string } }).error.code, code);
}

async function register(email: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: email } });
	assert.equal(r.status, 201);
	return r.body;
}

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(2_000)]);
const PDF = Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(1_000)]);

const upload = (s: Session, content: Buffer, contentType = "image/png", requestedTier = 2) =>
	http<Doc>("POST", "/api/v1/kyc/documents", { token: s.accessToken, body: { kind: "passport", requestedTier, contentType, content: content.toString("base64") } });

describe("KYC documents", () => {
	it("uploads within limits, reviews with four eyes, raises the tier and audits every decision", async () => {
		const ann = await register("kyc-ann@example.com");
		await register("kyc-sue@example.com");
		await grantRole({ databaseUrl: node.db.url }, "kyc-sue@example.com", "support");
		const sue = (await http<Session>("POST", "/api/v1/auth/login", { body: { email: "kyc-sue@example.com", password: PASSWORD } })).body;

		// The type by the content, whatever is declared; the size bounded; the route's own body limit.
		expectError(await upload(ann, PDF, "image/png"), 415, "UNSUPPORTED_DOCUMENT");
		expectError(await upload(ann, randomBytes(500), "image/jpeg"), 415, "UNSUPPORTED_DOCUMENT");
		expectError(await upload(ann, Buffer.concat([PNG, randomBytes(BYTES_MAX)])), 413, "DOCUMENT_TOO_LARGE");
		expectError(await http("POST", "/api/v1/kyc/documents", { token: ann.accessToken, rawBody: JSON.stringify({ kind: "passport", requestedTier: 2, contentType: "image/png", content: "A".repeat(BYTES_MAX * 2) }), headers: { "content-type": "application/json" } }), 413, "PAYLOAD_TOO_LARGE");
		// Every other route keeps its 64 KiB limit.
		expectError(await http("POST", "/api/v1/accounts", { token: ann.accessToken, rawBody: JSON.stringify({ currency: "USD", label: "x".repeat(70_000) }), headers: { "content-type": "application/json" } }), 413, "PAYLOAD_TOO_LARGE");

		const up = await upload(ann, PNG);
		assert.equal(up.status, 201, JSON.stringify(up.body));
		assert.deepEqual([up.body.status, up.body.sizeBytes, up.body.sha256], ["pending", PNG.length, createHash("sha256").update(PNG).digest("hex")]);
		// Stored by the document store: the bytes as uploaded, readable by the node's user only.
		assert.deepEqual(readFileSync(join(dir, up.body.id)), PNG);
		assert.equal(statSync(join(dir, up.body.id)).mode & 0o077, 0);
		const mine = await http<{ items: Doc[] }>("GET", "/api/v1/kyc/documents", { token: ann.accessToken });
		assert.deepEqual(mine.body.items.map(d => [d.id, d.status]), [[up.body.id, "pending"]]);

		// Support only; with the content, checked.
		expectError(await http("GET", "/api/v1/admin/kyc/documents", { token: ann.accessToken }), 403, "FORBIDDEN");
		const queue = await http<{ items: Doc[] }>("GET", "/api/v1/admin/kyc/documents", { token: sue.accessToken });
		assert.deepEqual(queue.body.items.map(d => d.id), [up.body.id]);
		const content = await http<Doc>("GET", `/api/v1/admin/kyc/documents/${up.body.id}/content`, { token: sue.accessToken });
		assert.equal(Buffer.from(content.body.content ?? "", "base64").equals(PNG), true);

		// A tier above 1 needs a verified address: the approval is refused and the document waits.
		expectError(await http("POST", `/api/v1/admin/kyc/documents/${up.body.id}/approve`, { token: sue.accessToken, body: { note: "passport matches" } }), 409, "EMAIL_NOT_VERIFIED");
		await verifyEmail({ databaseUrl: node.db.url }, "kyc-ann@example.com");
		const approved = await http<Doc>("POST", `/api/v1/admin/kyc/documents/${up.body.id}/approve`, { token: sue.accessToken, body: { note: "passport matches" } });
		assert.equal(approved.status, 200, JSON.stringify(approved.body));
		assert.equal(approved.body.status, "approved");
		assert.equal((await http<{ kycTier: number }>("GET", "/api/v1/me", { token: ann.accessToken })).body.kycTier, 2);
		expectError(await http("POST", `/api/v1/admin/kyc/documents/${up.body.id}/reject`, { token: sue.accessToken }), 409, "ILLEGAL_TRANSITION");

		// Four eyes: support does not decide their own documents.
		const own = await upload(sue, PDF, "application/pdf", 3);
		assert.equal(own.status, 201);
		expectError(await http("POST", `/api/v1/admin/kyc/documents/${own.body.id}/approve`, { token: sue.accessToken }), 403, "FORBIDDEN");
		// Another document rejected.
		const second = await upload(ann, PDF, "application/pdf", 3);
		const rejected = await http<Doc>("POST", `/api/v1/admin/kyc/documents/${second.body.id}/reject`, { token: sue.accessToken, body: { note: "blurred" } });
		assert.deepEqual([rejected.status, rejected.body.status], [200, "rejected"]);

		// Every decision in the audit log, with who made it (the refused approval too).
		const log: { items: { event: string; payload: { actor?: string; details?: { outcome?: string } } }[] } = await node.broker.call("audit.list", { limit: 500 });
		const decisions = log.items.filter(e => e.event.startsWith("admin.kyc.document.")).map(e => [e.event.slice("admin.".length), e.payload.actor, e.payload.details?.outcome]);
		assert.deepEqual(decisions.filter(d => d[2] === "done"), [["kyc.document.approve", sue.user.id, "done"], ["kyc.document.reject", sue.user.id, "done"]]);
		assert.ok(decisions.some(d => d[0] === "kyc.document.approve" && d[2] === "refused"));

		// A document changed in storage is not shown as the uploaded one.
		writeFileSync(join(dir, second.body.id), PNG);
		assert.equal((await http("GET", `/api/v1/admin/kyc/documents/${second.body.id}/content`, { token: sue.accessToken })).status, 500);
	});
});
