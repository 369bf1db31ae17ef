/**
 * Ledger throughput. In one run on one fresh PostgreSQL database:
 *  - transfers through the `ledger.transfers.create` action (micro-batched), uniform over
 *    10,000 accounts and with one hot account on half the transfers;
 *  - the same transfers done naively, one SQL transaction each over a pg pool of the same
 *    size (lock both rows, update, insert the idempotency key, transfer, entries and an
 *    outbox row): the baseline.
 * Both write the same tables, so checkInvariants at the end covers both paths.
 */
import pg from "pg";
import { randomUUID } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { createTestDatabase } from "../test/support/db.ts";
import { seededRandom, startNode } from "../test/support/node.ts";
import type { InvariantReport } from "../services/ledger/invariants.ts";
import { measure, type BenchResult, type RunFigures } from "./stats.ts";

const ACCOUNTS = Number(process.env["BENCH_ACCOUNTS"] ?? 10_000);
const TRANSFERS = Number(process.env["BENCH_TRANSFERS"] ?? 20_000);
const CONCURRENCY = Number(process.env["BENCH_CONCURRENCY"] ?? 128);
const POOL_MAX = Number(process.env["DB_POOL_MAX"] ?? 10);
const WARMUP = Number(process.env["BENCH_WARMUP"] ?? 2_000);
const FUNDING = 1_000_000_000;

type Pair = { from: string; to: string; amount: number };

function pairs(ids: string[], hot: string | null, seed: number): Pair[] {
	const rnd = seededRandom(seed);
	const pick = () => ids[Math.floor(rnd() * ids.length)] as string;
	return Array.from({ length: TRANSFERS }, (_, i) => {
		const from = pick();
		let to = hot && i % 2 === 0 ? hot : pick();
		if (to === from) to = ids[(ids.indexOf(from) + 1) % ids.length] as string;
		return { from, to, amount: 1 + Math.floor(rnd() * 100) };
	});
}

async function naiveTransfer(pool: pg.Pool, p: Pair, key: string): Promise<void> {
	const client = await pool.connect();
	try {
		await client.query("BEGIN");
		const ordered = [p.from, p.to].sort();
		const locked = await client.query<{ id: string; posted: string }>(
			"SELECT id, posted FROM ledger.accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
			[ordered],
		);
		const from = locked.rows.find(r => r.id === p.from);
		if (!from || BigInt(from.posted) < BigInt(p.amount)) throw new Error("insufficient funds");
		await client.query("INSERT INTO ledger.idempotency (key, request_hash, result) VALUES ($1, 'naive', '{}'::jsonb)", [key]);
		const transferId = randomUUID();
		await client.query(
			"INSERT INTO ledger.transfers (id, idempotency_key, kind, from_account_id, to_account_id, amount, currency, created_at) VALUES ($1, $2, 'transfer', $3, $4, $5, 'USD', now())",
			[transferId, key, p.from, p.to, p.amount],
		);
		for (const [account, counterparty, delta] of [[p.from, p.to, -p.amount], [p.to, p.from, p.amount]] as const) {
			const upd = await client.query<{ posted: string; version: string }>(
				"UPDATE ledger.accounts SET posted = posted + $2, version = version + 1 WHERE id = $1 RETURNING posted, version",
				[account, delta],
			);
			const row = upd.rows[0];
			if (!row) throw new Error("account vanished");
			await client.query(
				"INSERT INTO ledger.entries (transfer_id, account_id, counterparty_account_id, amount, balance_after, account_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, now())",
				[transferId, account, counterparty, delta, row.posted, row.version],
			);
		}
		await client.query("INSERT INTO ledger.outbox (events, event_count) VALUES ($1::json, 1)", [
			JSON.stringify([{ event: "transfer.completed", partitionKey: p.from, payload: { transferId } }]),
		]);
		await client.query("COMMIT");
	} catch (err) {
		await client.query("ROLLBACK");
		throw err;
	} finally {
		client.release();
	}
}

async function openAccounts(broker: ServiceBroker): Promise<{ ids: string[]; systemId: string }> {
	const sys: { id: string } = await broker.call("ledger.accounts.open", { kind: "system", code: "external:bench:USD", currency: "USD" });
	const ids: string[] = [];
	await measure(ACCOUNTS, 32, async i => {
		const a: { id: string } = await broker.call("ledger.accounts.open", { ownerId: `bench-${i}`, currency: "USD" });
		ids.push(a.id);
	});
	const funded = await measure(ids.length, CONCURRENCY, i =>
		broker.call("ledger.transfers.create", { idempotencyKey: `fund-${i}`, fromAccountId: sys.id, toAccountId: ids[i], amount: FUNDING, currency: "USD" }),
	);
	if (funded.errors > 0) throw new Error(`funding failed for ${funded.errors} accounts`);
	return { ids, systemId: sys.id };
}

function log(line: string): void {
	process.stderr.write(`${line}\n`);
}

function describeRun(label: string, f: RunFigures): void {
	log(`  ${label}: ${f.count} ok, ${f.errors} errors, ${f.opsPerSec.toFixed(0)} ops/s, p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms`);
}

export async function runLedgerBench(): Promise<BenchResult[]> {
	const db = await createTestDatabase("paymesh_bench");
	// LEDGER_* settings from the environment reach the node, to compare batch settings.
	const ledgerEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("LEDGER_") && e[1] !== undefined));
	const { broker } = await startNode({ ...ledgerEnv, DATABASE_URL: db.url, SERVICES: "ledger", DB_POOL_MAX: String(POOL_MAX), METRICS_ENABLED: "true" });
	const pool = new pg.Pool({ connectionString: db.url, max: POOL_MAX });
	try {
		log(`ledger bench: ${ACCOUNTS} accounts, ${TRANSFERS} transfers per run, ${CONCURRENCY} callers in flight, pool ${POOL_MAX}`);
		const { ids } = await openAccounts(broker);
		const hot = ids[0] as string;
		const results: BenchResult[] = [];
		for (const [name, hotId, seed] of [["transfer uniform 10k accounts", null, 1], ["transfer hot account on half", hot, 2]] as const) {
			const work = pairs(ids, hotId, seed);
			const tag = randomUUID().slice(0, 8);
			// Warm both paths (connections, caches, JIT) on other transfers before timing.
			const warm = pairs(ids, hotId, seed + 100).slice(0, WARMUP);
			await measure(warm.length, CONCURRENCY, i => naiveTransfer(pool, warm[i] as Pair, `warm-naive-${tag}-${i}`));
			await measure(warm.length, CONCURRENCY, i => {
				const p = warm[i] as Pair;
				return broker.call("ledger.transfers.create", { idempotencyKey: `warm-${tag}-${i}`, fromAccountId: p.from, toAccountId: p.to, amount: p.amount, currency: "USD" });
			});
			const baseline = await measure(work.length, CONCURRENCY, i => naiveTransfer(pool, work[i] as Pair, `naive-${tag}-${i}`));
			describeRun(`${name} (baseline, one transaction each)`, baseline);
			const batched = await measure(work.length, CONCURRENCY, i => {
				const p = work[i] as Pair;
				return broker.call("ledger.transfers.create", { idempotencyKey: `bench-${tag}-${i}`, fromAccountId: p.from, toAccountId: p.to, amount: p.amount, currency: "USD" });
			});
			describeRun(`${name} (ledger action)`, batched);
			const bs: { recentBatchMs: { p50: number; p99: number; max: number } } = await broker.call("ledger.stats", {});
			log(`    last batches: p50 ${bs.recentBatchMs.p50} ms, p99 ${bs.recentBatchMs.p99} ms, max ${bs.recentBatchMs.max} ms`);
			if (batched.errors > 0 || baseline.errors > 0) throw new Error(`${name}: ${batched.errors} ledger and ${baseline.errors} baseline errors`);
			results.push({
				name, opsPerSec: batched.opsPerSec, p50Ms: batched.p50Ms, p99Ms: batched.p99Ms,
				baselineOpsPerSec: baseline.opsPerSec, baselineP50Ms: baseline.p50Ms, baselineP99Ms: baseline.p99Ms,
				transfers: work.length, concurrency: CONCURRENCY,
			});
		}
		const report: InvariantReport = await broker.call("ledger.checkInvariants", {}, { timeout: 120_000 });
		if (!report.ok) throw new Error(`invariants broken after the bench: ${JSON.stringify(report.violations.slice(0, 5))}`);
		const stats: { batchesRun: number; itemsRun: number } = await broker.call("ledger.stats", {});
		log(`  invariants clean over ${report.counts.transfers} transfers; ${stats.batchesRun} batches, ${(stats.itemsRun / stats.batchesRun).toFixed(1)} transfers per batch on average`);
		return results;
	} finally {
		await pool.end();
		await broker.stop();
		await db.drop();
	}
}
