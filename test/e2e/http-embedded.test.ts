/**
 * The HTTP contract against the embedded default: every service in one process on PGlite,
 * no transporter, in-memory rate limits. Logs of the whole run are captured and checked
 * for passwords, tokens and secrets.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceBroker } from "moleculer";
import { startNode, TEST_JWT_SECRET } from "../support/node.ts";
import { gatewayPort } from "../support/http.ts";
import { httpContractSuite } from "./http-contract.ts";
import { grantRole, verifyEmail } from "../support/roles.ts";

const dataDir = mkdtempSync(join(tmpdir(), "paymesh-http-"));
let broker: ServiceBroker;
let base = "";
const captured: string[] = [];
const originalWrite = process.stdout.write.bind(process.stdout);
const originalErr = process.stderr.write.bind(process.stderr);

before(async () => {
	// Everything the node logs (debug level, so the check is meaningful) is kept for the last test.
	process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
		captured.push(String(chunk));
		return originalWrite(chunk as string, ...(rest as []));
	}) as typeof process.stdout.write;
	process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
		captured.push(String(chunk));
		return originalErr(chunk as string, ...(rest as []));
	}) as typeof process.stderr.write;
	({ broker } = await startNode({ DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug", LOG_FORMAT: "json" }));
	base = `http://127.0.0.1:${gatewayPort(broker)}`;
});

after(async () => {
	process.stdout.write = originalWrite;
	process.stderr.write = originalErr;
	await broker?.stop();
	rmSync(dataDir, { recursive: true, force: true });
});

httpContractSuite("embedded, PGlite", () => ({
	base,
	broker: () => broker,
	adminEmail: "root@example.com",
	grantRole: async (email, role) => void (await grantRole({ databaseUrl: null, dataDir }, email, role)),
	verifyEmail: async email => void (await verifyEmail({ databaseUrl: null, dataDir }, email)),
	readPasswordHash: async email => {
		const { acquireDb, releaseDb } = await import("../../mixins/db.ts");
		const cfg = { databaseUrl: null, dataDir, dbPoolMax: 1 };
		const { knex } = acquireDb(cfg);
		try {
			const r = (await knex.raw("SELECT password_hash FROM auth.credentials WHERE email = ?", [email])) as { rows: { password_hash: string }[] };
			return r.rows[0]?.password_hash ?? "";
		} finally {
			await releaseDb(cfg);
		}
	},
}));

it("logged no password, token or secret during the suite", () => {
	// Only the node's own log lines (JSON format); the test reporter shares this stdout.
	const logs = captured.join("").split("\n").filter(l => l.includes('"level":')).join("\n");
	assert.ok(logs.length > 1_000, "the suite produced logs to check");
	for (const secret of ["Correct-Horse-Battery-9", TEST_JWT_SECRET, "eyJhbGciOi", "refreshToken\":\""]) {
		assert.ok(!logs.includes(secret), `logs contain ${secret.slice(0, 12)}…`);
	}
	assert.ok(!/\$argon2id\$/.test(logs), "logs contain a password hash");
});
