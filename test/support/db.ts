/**
 * A fresh PostgreSQL database per test file, dropped afterwards. Tests talk to the real
 * server the machine runs (TEST_PG_URL, default the local trust-auth postgres).
 */
import pg from "pg";
import { randomBytes } from "node:crypto";

export const ADMIN_URL = process.env["TEST_PG_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const NATS_URL = process.env["TEST_NATS_URL"] ?? "nats://127.0.0.1:4222";
export const REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";

export interface TestDatabase {
	url: string;
	name: string;
	drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
	const c = new pg.Client({ connectionString: ADMIN_URL });
	await c.connect();
	try {
		return await fn(c);
	} finally {
		await c.end();
	}
}

export async function createTestDatabase(prefix = "paymesh_t"): Promise<TestDatabase> {
	const name = `${prefix}_${randomBytes(6).toString("hex")}`;
	await admin(c => c.query(`CREATE DATABASE ${name}`));
	const url = new URL(ADMIN_URL);
	url.pathname = `/${name}`;
	return {
		url: url.toString(),
		name,
		drop: () => admin(c => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
	};
}
