import type { ServiceBroker } from "moleculer";
import pg from "pg";
import { loadConfig, type Config } from "../../config/index.ts";
import { createNode } from "../../bin/node.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

/** A started broker with the given services, configured only through environment-style settings. */
/** The key every test node shares, so tokens signed by one gateway verify on another. */
export const TEST_JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
/** The transit key every test node shares (TRANSIT_KEY is required with a transporter); a test may set its own. */
export const TEST_TRANSIT_KEY = "test-transit-9f3Kq7Zp2Lw8Xv5Rb1Nc6Hd4Mt0Gy";
/** The audit chain's key every test node shares (AUDIT_KEY is required on clustered audit nodes); a test may set its own. */
export const TEST_AUDIT_KEY = "test-audit-Q8w2Er5Ty7Ui1Op3As6Df9Gh4Jk0Lz";
/** The key-encryption key of secrets at rest every test node shares (SECRETS_KEY is required on clustered auth and webhooks nodes). */
export const TEST_SECRETS_KEY = "test-secrets-Z7x4Cv1Bn8Mq3Wp6Rt9Yk2Hs5Jd0";

/**
 * The test gateways' Ed25519 key pair (GATEWAY_SIGNING_KEY is required on clustered gateway
 * nodes, GATEWAY_VERIFY_KEYS on every clustered node); test/support/caller.ts signs with it
 * where a test calls a guarded action as the gateway would.
 */
export const TEST_GATEWAY_SIGNING_KEY = "tRdUIverj1JIyyhwk4h8lIiHtvn4CToaQb0tgQpLMz4";
export const TEST_GATEWAY_VERIFY_KEY = "3E6J_TY6U6Bp-A3wmTP6nKzNuhxIoPl-1RT6N76Fbp4";

/** The keys every test node gets unless the test sets its own. */
export const TEST_KEYS: Readonly<Record<string, string>> = {
	JWT_SECRET: TEST_JWT_SECRET, TRANSIT_KEY: TEST_TRANSIT_KEY, AUDIT_KEY: TEST_AUDIT_KEY, SECRETS_KEY: TEST_SECRETS_KEY,
	GATEWAY_SIGNING_KEY: TEST_GATEWAY_SIGNING_KEY, GATEWAY_VERIFY_KEYS: TEST_GATEWAY_VERIFY_KEY,
};

export async function startNode(env: Record<string, string>): Promise<{ broker: ServiceBroker; config: Config }> {
	const config = loadConfig({ LOG_LEVEL: "warn", METRICS_ENABLED: "false", ...TEST_KEYS, ...env });
	const broker = createNode(config);
	await broker.start();
	return { broker, config };
}

/** A started node on a fresh database of its own, and a plain client on that database for the test's own SQL. */
export interface NodeOnDatabase {
	db: TestDatabase;
	broker: ServiceBroker;
	config: Config;
	sql: pg.Client;
	/** Stops the node and drops the database. */
	stop(): Promise<void>;
}

export async function startNodeOnDatabase(env: Record<string, string>): Promise<NodeOnDatabase> {
	const db = await createTestDatabase();
	try {
		const { broker, config } = await startNode({ DATABASE_URL: db.url, ...env });
		const sql = new pg.Client({ connectionString: db.url });
		await sql.connect();
		return {
			db, broker, config, sql,
			async stop() {
				await sql.end();
				await broker.stop();
				await db.drop();
			},
		};
	} catch (err) {
		await db.drop();
		throw err;
	}
}

export { seededRandom } from "../../lib/random.ts";
