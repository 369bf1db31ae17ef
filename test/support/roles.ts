/**
 * Staff roles for tests, given the way an operator gives them: out of band, in the auth
 * schema, through the same store functions `npm run admin -- verify` and `grant` use
 * (bin/admin.ts). Registration grants nothing, and a role goes only to an account that has
 * verified its address, so grantRole verifies the address first (as an operator who
 * checked it another way would). The role reaches tokens at the next login or refresh.
 */
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { normalizeEmail } from "../../lib/email.ts";
import { changeRoleByEmail, verifyNewestByEmail } from "../../services/auth/store.ts";
import { markEmailVerified } from "../../services/users/store.ts";
import type { Role } from "../../services/auth/tokens.ts";

/** Where the node's database is: DATABASE_URL, or the PGlite DATA_DIR (shared with a node in this process). */
export type DatabaseAt = { databaseUrl: string; dataDir?: undefined } | { databaseUrl: null; dataDir: string };

function configOf(at: DatabaseAt) {
	return { databaseUrl: at.databaseUrl, dataDir: at.dataDir ?? "./data", dbPoolMax: 1 };
}

/** Marks the address's newest registration verified in auth and users, as `npm run admin -- verify` does; its user id. */
export async function verifyEmail(at: DatabaseAt, email: string): Promise<string> {
	const cfg = configOf(at);
	const { knex } = acquireDb(cfg);
	try {
		const e = normalizeEmail(email);
		const out = await verifyNewestByEmail(knex, e);
		if (!out) throw new Error(`no user ${email} to verify`);
		if ((await markEmailVerified(knex, out.userId, e)) !== "ok") throw new Error(`no profile of ${email} to verify`);
		return out.userId;
	} finally {
		await releaseDb(cfg);
	}
}

export async function grantRole(at: DatabaseAt, email: string, role: Role = "admin"): Promise<Role[]> {
	await verifyEmail(at, email);
	const cfg = configOf(at);
	const { knex } = acquireDb(cfg);
	try {
		const out = await changeRoleByEmail(knex, normalizeEmail(email), role, true);
		if (!out) throw new Error(`no user ${email} to grant ${role} to`);
		return out.roles;
	} finally {
		await releaseDb(cfg);
	}
}
