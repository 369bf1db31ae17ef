/**
 * What must hold in every run, checked against the database (read without faults) and
 * against what the simulated clients and the live feed saw:
 *
 * - `invariants`: the ledger's own checks (services/ledger/invariants.ts): every currency
 *   sums to zero, balances equal their entries and holds, no user account below zero...
 * - `exactlyOnce`: an operation answered ok did exactly one thing (one transfer or hold
 *   with its description), one answered with a refusal did nothing, and the answers given
 *   to the attempts of one key agree;
 * - `retryTwice`: no operation whose request was sent more than once did its thing twice;
 *   no hold is posted twice;
 * - `liveFeed`: a balance a client was shown live is one the ledger committed (its version
 *   exists, and where an entry made it, with the entry's balance), the same version never
 *   shows two balances, and a client applying the feed as the dashboard does
 *   (public/app.js: newer versions only) never goes backwards;
 * - `final`: once faults stop, every operation gets a final answer;
 * - `consumer`: the durable consumer caught up with the log and handled each event once.
 */
import type { Knex } from "knex";
import { checkInvariants } from "../services/ledger/invariants.ts";
import type { LogicalOp } from "./workload.ts";
import type { Trace } from "./trace.ts";

export interface Violation {
	checker: "invariants" | "exactlyOnce" | "retryTwice" | "liveFeed" | "final" | "consumer" | "ledgerError";
	detail: string;
}

async function rows<T>(knex: Knex, sql: string, bindings: unknown[] = []): Promise<T[]> {
	return ((await knex.raw(sql, bindings as never)) as { rows: T[] }).rows;
}

export async function checkLedgerInvariants(knex: Knex): Promise<Violation[]> {
	const report = await checkInvariants(knex);
	return report.violations.map(v => ({ checker: "invariants" as const, detail: `${v.check} ${v.id} ${v.detail}` }));
}

/** What each operation did in the database, found by its description `sim:<n>`. */
export async function checkOperations(knex: Knex, ops: readonly LogicalOp[], trace: Trace): Promise<Violation[]> {
	const out: Violation[] = [];
	const made = new Map<string, number>();
	for (const r of await rows<{ d: string; n: number }>(knex, `SELECT description AS d, count(*)::int AS n FROM ledger.transfers WHERE description LIKE 'sim:%' AND kind IN ('transfer', 'payment') GROUP BY 1`)) made.set(r.d, (made.get(r.d) ?? 0) + r.n);
	for (const r of await rows<{ d: string; n: number }>(knex, `SELECT description AS d, count(*)::int AS n FROM ledger.holds WHERE description LIKE 'sim:%' GROUP BY 1`)) made.set(r.d, (made.get(r.d) ?? 0) + r.n);
	for (const op of ops) {
		if (op.kind === "post" || op.kind === "void") continue;
		const n = made.get(`sim:${op.n}`) ?? 0;
		if (n > 1) {
			out.push({ checker: op.attempts > 1 ? "retryTwice" : "exactlyOnce", detail: `op${op.n} (${op.kind}, ${op.attempts} attempts) applied ${n} times` });
		}
		if (op.final?.ok && n === 0) out.push({ checker: "exactlyOnce", detail: `op${op.n} (${op.kind}) answered ok but applied 0 times` });
		if (op.final && !op.final.ok && n > 0) out.push({ checker: "exactlyOnce", detail: `op${op.n} (${op.kind}) answered ${op.final.code} but applied ${n} times` });
	}
	for (const op of ops) {
		const finals = new Set(op.answers.filter(a => a.final).map(a => a.text));
		if (finals.size > 1) out.push({ checker: op.attempts > 1 ? "retryTwice" : "exactlyOnce", detail: `op${op.n} got different answers for one key: ${[...finals].join(" | ")}` });
		const broken = op.answers.filter(a => /INVARIANT|InvariantViolation/i.test(a.code));
		if (broken.length > 0) out.push({ checker: "ledgerError", detail: `op${op.n} (${op.kind}) answered ${broken[0]?.code ?? ""} to ${broken.length} of its ${op.attempts} attempts (an invariant the ledger checks in its batch broke)` });
	}
	for (const r of await rows<{ h: string; n: number }>(knex, `SELECT hold_id::text AS h, count(*)::int AS n FROM ledger.transfers WHERE kind = 'hold_post' GROUP BY 1 HAVING count(*) > 1`)) {
		out.push({ checker: "retryTwice", detail: `hold ${trace.name(r.h, "id")} posted ${r.n} times` });
	}
	return out;
}

export interface LiveBalance {
	accountId: string;
	version: number;
	posted: number;
	pending: number;
}

/** The live feed as the simulator's observer received it, and a dashboard's view of it. */
export class LiveFeed {
	readonly seen: LiveBalance[] = [];
	private readonly shown = new Map<string, number>();
	readonly violations: Violation[] = [];
	events = 0;

	private readonly trace: Trace;

	constructor(trace: Trace) {
		this.trace = trace;
	}

	receive(events: { event: string; payload: Record<string, unknown> }[]): void {
		for (const e of events) {
			this.events += 1;
			if (e.event !== "balance.updated") continue;
			const p = e.payload;
			const b: LiveBalance = { accountId: String(p["accountId"]), version: Number(p["version"]), posted: Number(p["posted"]), pending: Number(p["pending"]) };
			this.seen.push(b);
			const shown = this.shown.get(b.accountId) ?? 0;
			// The dashboard's rule: an older or equal version is ignored.
			if (b.version <= shown) continue;
			this.shown.set(b.accountId, b.version);
		}
	}

	async check(knex: Knex): Promise<Violation[]> {
		const out: Violation[] = [...this.violations];
		const byKey = new Map<string, LiveBalance>();
		for (const b of this.seen) {
			const k = `${b.accountId}:${b.version}`;
			const prev = byKey.get(k);
			if (prev && (prev.posted !== b.posted || prev.pending !== b.pending)) {
				out.push({ checker: "liveFeed", detail: `account ${this.trace.name(b.accountId, "id")} version ${b.version} shown as ${prev.posted}/${prev.pending} and ${b.posted}/${b.pending}` });
			}
			byKey.set(k, b);
		}
		const accounts = new Map((await rows<{ id: string; version: bigint }>(knex, `SELECT id::text AS id, version FROM ledger.accounts`)).map(r => [r.id, Number(r.version)]));
		const entries = new Map((await rows<{ k: string; balance: bigint }>(knex, `SELECT account_id::text || ':' || account_version AS k, balance_after AS balance FROM ledger.entries`)).map(r => [r.k, Number(r.balance)]));
		for (const [k, b] of byKey) {
			const dbVersion = accounts.get(b.accountId);
			if (dbVersion === undefined || b.version > dbVersion) {
				out.push({ checker: "liveFeed", detail: `account ${this.trace.name(b.accountId, "id")} shown live at version ${b.version}, which the ledger never committed (it is at ${dbVersion ?? "none"})` });
				continue;
			}
			const committed = entries.get(k);
			if (committed !== undefined && committed !== b.posted) {
				out.push({ checker: "liveFeed", detail: `account ${this.trace.name(b.accountId, "id")} shown live at version ${b.version} with posted ${b.posted}, committed ${committed}` });
			}
		}
		return out;
	}
}
