/**
 * Issue 16, finding 1: admin by registration. ADMIN_EMAILS made whoever first registered a
 * listed address an admin. Now registration grants no role, the setting is refused at
 * start, and staff roles are granted out of band by `npm run admin -- grant <email> [role]`
 * (bin/admin.ts) straight in the database.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { byEmail, insertCredentials } from "../../services/auth/store.ts";
import { insertProfile } from "../../services/users/store.ts";
import { ConfigError, loadConfig } from "../../config/index.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";

const PASSWORD = "Correct-Horse-Battery-9";
const ROOT = new URL("../..", import.meta.url).pathname;

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

/** Runs `node bin/admin.ts …args` against the test database, as `npm run admin -- …args` does. */
function admin(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return run("bin/admin.ts", args, { DATABASE_URL: node.db.url });
}

function run(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [script, ...args], {
			cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", LOG_LEVEL: "warn", ...env }, stdio: ["ignore", "pipe", "pipe"],
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
		child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
		child.once("error", reject);
		child.once("exit", code => resolve({ code, stdout, stderr }));
	});
}

type Session = { user: { id: string; roles: string[] }; accessToken: string };

async function login(email: string): Promise<Session> {
	const r = await http<Session>("POST", "/api/v1/auth/login", { body: { email, password: PASSWORD } });
	assert.equal(r.status, 200, JSON.stringify(r.body));
	return r.body;
}

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
});

describe("finding 1: admin by registration", () => {
	it("refuses ADMIN_EMAILS at start, naming the out-of-band command", () => {
		assert.throws(() => loadConfig({ ADMIN_EMAILS: "boss@example.com" }), (err: unknown) => err instanceof ConfigError && /npm run admin -- grant/.test(err.message));
	});

	it("registers every address as a plain user, the boss's too", async () => {
		const r = await http<Session>("POST", "/api/v1/auth/register", { body: { email: "boss@example.com", password: PASSWORD, name: "Boss" } });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		assert.deepEqual(r.body.user.roles, ["user"]);
		assert.equal((await http("GET", "/api/v1/admin/reports/daily", { token: r.body.accessToken })).status, 403);
	});

	it("grants and revokes roles with `npm run admin`, effective from the next login", async () => {
		// Only to an address its owner has proven (issue 16, verified identity): the first to
		// register an address may not be its owner.
		const unproven = await admin("grant", "Boss@Example.com");
		assert.equal(unproven.code, 1);
		assert.match(unproven.stderr, /no user has verified the e-mail boss@example\.com/);
		assert.deepEqual((await login("boss@example.com")).user.roles, ["user"]);
		// The operator checked the address another way (or the boss entered the mailed code).
		const verified = await admin("verify", "Boss@Example.com");
		assert.equal(verified.code, 0, verified.stderr);
		assert.match(verified.stdout, /boss@example\.com .*: verified/);
		const granted = await admin("grant", "Boss@Example.com");
		assert.equal(granted.code, 0, granted.stderr);
		assert.match(granted.stdout, /boss@example\.com .*roles user, admin/);
		const boss = await login("boss@example.com");
		assert.deepEqual(boss.user.roles, ["user", "admin"]);
		assert.equal((await http("GET", "/api/v1/admin/reports/daily", { token: boss.accessToken })).status, 200);

		// Granting twice changes nothing; another role adds to the list.
		assert.equal((await admin("grant", "boss@example.com", "admin")).code, 0);
		assert.equal((await admin("grant", "boss@example.com", "auditor")).code, 0);
		assert.deepEqual((await login("boss@example.com")).user.roles, ["user", "admin", "auditor"]);

		const revoked = await admin("revoke", "boss@example.com", "admin");
		assert.equal(revoked.code, 0, revoked.stderr);
		assert.deepEqual((await login("boss@example.com")).user.roles, ["user", "auditor"]);
	});

	it("refuses unknown users, unknown roles and bad usage without touching anything", async () => {
		const nobody = await admin("grant", "nobody@example.com");
		assert.equal(nobody.code, 1);
		assert.match(nobody.stderr, /must register/);
		assert.equal((await admin("verify", "nobody@example.com")).code, 1);
		assert.equal((await admin("grant", "boss@example.com", "superuser")).code, 64);
		assert.equal((await admin("revoke", "boss@example.com", "user")).code, 64);
		assert.equal((await admin("revoke", "boss@example.com")).code, 64);
		assert.equal((await admin()).code, 64);
		assert.deepEqual((await login("boss@example.com")).user.roles, ["user", "auditor"]);
	});

	it("works on the embedded default's PGlite files (DATA_DIR) too, as npm run migrate does", async () => {
		const dataDir = mkdtempSync(join(tmpdir(), "paymesh-admin-"));
		const cfg = { databaseUrl: null, dataDir, dbPoolMax: 1 };
		try {
			const migrated = await run("bin/migrate.ts", [], { DATA_DIR: dataDir });
			assert.equal(migrated.code, 0, migrated.stderr);
			// A registered user (PGlite allows one process at a time: this one closes it before the command runs).
			let { knex } = acquireDb(cfg);
			const userId = uuidv7();
			await insertCredentials(knex, { userId, email: "embedded@example.com", passwordHash: "not-used-here", roles: ["user"] });
			assert.ok(await insertProfile(knex, { userId, email: "embedded@example.com", name: "Embedded" }));
			await releaseDb(cfg);
			const verified = await run("bin/admin.ts", ["verify", "embedded@example.com"], { DATA_DIR: dataDir });
			assert.equal(verified.code, 0, verified.stderr);
			const granted = await run("bin/admin.ts", ["grant", "embedded@example.com", "support"], { DATA_DIR: dataDir });
			assert.equal(granted.code, 0, granted.stderr);
			({ knex } = acquireDb(cfg));
			assert.deepEqual((await byEmail(knex, "embedded@example.com"))?.roles, ["user", "support"]);
		} finally {
			await releaseDb(cfg);
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});
