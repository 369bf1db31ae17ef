/**
 * `npm run admin -- grant <email> [role]` and `npm run admin -- revoke <email> <role>`:
 * the out-of-band way to give staff roles (admin by default), straight in the auth schema
 * of the database the node uses (DATABASE_URL, or the PGlite files under DATA_DIR; stop an
 * embedded node first, PGlite allows one process). Nothing at registration grants a role.
 * The user must have registered; the role reaches their tokens at their next login or
 * refresh. Exit codes: 0 done, 1 no such user, 64 usage.
 */
import { loadConfig } from "../config/index.ts";
import { acquireDb, releaseDb } from "../mixins/db.ts";
import { normalizeEmail } from "../lib/email.ts";
import { changeRoleByEmail } from "../services/auth/store.ts";
import { ROLES, type Role } from "../services/auth/tokens.ts";

const USAGE = `usage: npm run admin -- grant <email> [${ROLES.join("|")}]   (default admin)
       npm run admin -- revoke <email> <${ROLES.filter(r => r !== "user").join("|")}>
`;

function isRole(value: string): value is Role {
	return (ROLES as readonly string[]).includes(value);
}

function usage(message?: string): never {
	if (message) process.stderr.write(`${message}\n`);
	process.stderr.write(USAGE);
	process.exit(64);
}

const [command, emailArg, roleArg, ...extra] = process.argv.slice(2);
if ((command !== "grant" && command !== "revoke") || !emailArg || extra.length > 0) usage();
const role = roleArg ?? (command === "grant" ? "admin" : undefined);
if (role === undefined) usage("revoke needs a role");
if (!isRole(role)) usage(`unknown role ${JSON.stringify(role)}`);
if (command === "revoke" && role === "user") usage("the user role cannot be taken away");

const config = loadConfig();
const { knex } = acquireDb(config);
let found: Awaited<ReturnType<typeof changeRoleByEmail>> = null;
try {
	found = await changeRoleByEmail(knex, normalizeEmail(emailArg), role, command === "grant");
} finally {
	await releaseDb(config);
}
if (!found) {
	process.stderr.write(`no user with the e-mail ${normalizeEmail(emailArg)}: they must register first\n`);
	process.exit(1);
}
process.stdout.write(`${normalizeEmail(emailArg)} (${found.userId}): roles ${found.roles.join(", ")}\n`);
