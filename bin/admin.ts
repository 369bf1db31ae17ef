/**
 * `npm run admin -- gateway-key` prints a new Ed25519 key pair for the gateway's signed
 * caller identity (docs/identity.md): GATEWAY_SIGNING_KEY for the gateway nodes only,
 * GATEWAY_VERIFY_KEYS (the public key) for every node. It touches no database.
 *
 * `npm run admin -- grant <email> [role]` and `npm run admin -- revoke <email> <role>`:
 * the out-of-band way to give staff roles (admin by default), straight in the auth schema
 * of the database the node uses (DATABASE_URL, or the PGlite files under DATA_DIR; stop an
 * embedded node first, PGlite allows one process). Nothing at registration grants a role.
 * The user must have registered and verified the address (the code mailed to it), or an
 * operator who checked the address another way runs `npm run admin -- verify <email>`
 * first (the address's newest registration; for nodes without SMTP). The role reaches
 * their tokens at their next login or refresh. Exit codes: 0 done, 1 no such (verified)
 * user, 64 usage.
 *
 * `npm run admin -- outbox-pack on|off`: whether the ledger nodes pack their outbox events
 * (migrations/ledger/014_packed_outbox.ts). An installation upgraded past ledger/014 turns it
 * on once no ledger node of an earlier release is left (those read only json rows); every
 * node follows within seconds.
 *
 * `npm run admin -- outbox-drifts on|off`: whether ledger batches keep their accounts' drifts
 * in the outbox row and send it with the write (migrations/ledger/015_outbox_drifts.ts). An
 * installation upgraded past ledger/015 turns it on once no ledger node of an earlier
 * release is left (those hand such rows' balance events to consumers unsettled).
 */
import { loadConfig } from "../config/index.ts";
import { acquireDb, releaseDb } from "../mixins/db.ts";
import { normalizeEmail } from "../lib/email.ts";
import { changeRoleByEmail, verifyNewestByEmail } from "../services/auth/store.ts";
import { markEmailVerified } from "../services/users/store.ts";
import { ROLES, type Role } from "../services/auth/tokens.ts";
import { generateGatewayKey } from "../lib/caller-identity.ts";
import { setOutboxDrifts, setOutboxPacking } from "../services/ledger/store.ts";

const USAGE = `usage: npm run admin -- grant <email> [${ROLES.join("|")}]   (default admin)
       npm run admin -- revoke <email> <${ROLES.filter(r => r !== "user").join("|")}>
       npm run admin -- verify <email>   (the address was checked out of band)
       npm run admin -- gateway-key      (a new key pair for the gateway's signed caller identity)
       npm run admin -- outbox-pack on|off   (ledger nodes pack their outbox events; on once no node from before ledger/014 is left)
       npm run admin -- outbox-drifts on|off   (ledger batches keep drifts in the outbox row, one statement with the COMMIT; on once no node from before ledger/015 is left)
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
if (command === "gateway-key") {
	if (emailArg !== undefined) usage();
	const k = generateGatewayKey();
	// The settings on stdout (for a secret store or an .env file), what goes where on stderr.
	process.stderr.write(`key id ${k.kid}: GATEWAY_SIGNING_KEY on the gateway nodes only (a secret); the public key in GATEWAY_VERIFY_KEYS on every node, before any gateway signs with it\n`);
	process.stdout.write(`GATEWAY_SIGNING_KEY=${k.signingKey}\nGATEWAY_VERIFY_KEYS=${k.verifyKey}\n`);
	process.exit(0);
}
/** The ledger's outbox switches (ledger.outbox_format): each ledger node rereads them within seconds. */
const OUTBOX_SWITCHES = new Map<string, { what: string; set: typeof setOutboxPacking }>([
	["outbox-pack", { what: "packing", set: setOutboxPacking }],
	["outbox-drifts", { what: "drifts", set: setOutboxDrifts }],
]);
const outboxSwitch = command === undefined ? undefined : OUTBOX_SWITCHES.get(command);
if (outboxSwitch) {
	if ((emailArg !== "on" && emailArg !== "off") || roleArg !== undefined) usage();
	const config = loadConfig();
	const { knex } = acquireDb(config);
	try {
		const before = await outboxSwitch.set(knex, emailArg === "on");
		process.stdout.write(`ledger outbox ${outboxSwitch.what} ${emailArg} (it was ${before ? "on" : "off"}); ledger nodes follow within seconds\n`);
	} finally {
		await releaseDb(config);
	}
	process.exit(0);
}
if ((command !== "grant" && command !== "revoke" && command !== "verify") || !emailArg || extra.length > 0) usage();
const email = normalizeEmail(emailArg);
const config = loadConfig();

if (command === "verify") {
	if (roleArg !== undefined) usage();
	const { knex } = acquireDb(config);
	let verified: Awaited<ReturnType<typeof verifyNewestByEmail>> = null;
	try {
		verified = await verifyNewestByEmail(knex, email);
		// The profile too: it is what P2P by e-mail and tiers above 1 look at.
		if (verified && (await markEmailVerified(knex, verified.userId, email)) !== "ok") verified = null;
	} finally {
		await releaseDb(config);
	}
	if (!verified) {
		process.stderr.write(`no user with the e-mail ${email}: they must register first\n`);
		process.exit(1);
	}
	process.stdout.write(`${email} (${verified.userId}): ${verified.already ? "already verified" : "verified"}\n`);
	process.exit(0);
}

const role = roleArg ?? (command === "grant" ? "admin" : undefined);
if (role === undefined) usage("revoke needs a role");
if (!isRole(role)) usage(`unknown role ${JSON.stringify(role)}`);
if (command === "revoke" && role === "user") usage("the user role cannot be taken away");

const { knex } = acquireDb(config);
let found: Awaited<ReturnType<typeof changeRoleByEmail>> = null;
try {
	found = await changeRoleByEmail(knex, email, role, command === "grant");
} finally {
	await releaseDb(config);
}
if (!found) {
	process.stderr.write(command === "grant"
		? `no user has verified the e-mail ${email}: they must register and verify it (or: npm run admin -- verify ${email})\n`
		: `no user with the e-mail ${email}\n`);
	process.exit(1);
}
process.stdout.write(`${email} (${found.userId}): roles ${found.roles.join(", ")}\n`);
