/**
 * Staff roles for tests, given the way an operator gives them: out of band, in the auth
 * schema, through the same store function `npm run admin -- grant` uses (bin/admin.ts).
 * Registration grants nothing. The role reaches tokens at the next login or refresh.
 */
import { acquireDb, releaseDb } from "../../mixins/db.ts";
import { normalizeEmail } from "../../lib/email.ts";
import { changeRoleByEmail } from "../../services/auth/store.ts";
import type { Role } from "../../services/auth/tokens.ts";

/** Where the node's database is: DATABASE_URL, or the PGlite DATA_DIR (shared with a node in this process). */
export type DatabaseAt = { databaseUrl: string; dataDir?: undefined } | { databaseUrl: null; dataDir: string };

export async function grantRole(at: DatabaseAt, email: string, role: Role = "admin"): Promise<Role[]> {
	const cfg = { databaseUrl: at.databaseUrl, dataDir: at.dataDir ?? "./data", dbPoolMax: 1 };
	const { knex } = acquireDb(cfg);
	try {
		const out = await changeRoleByEmail(knex, normalizeEmail(email), role, true);
		if (!out) throw new Error(`no user ${email} to grant ${role} to`);
		return out.roles;
	} finally {
		await releaseDb(cfg);
	}
}
