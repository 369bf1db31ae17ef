/**
 * The ledger's invariants, checked in SQL over a consistent snapshot. The tests call
 * this after every scenario, and operators call it from the REPL.
 */
import type { Knex } from "knex";

export interface Violation {
	check: string;
	id: string;
	detail: string;
}

export interface InvariantReport {
	ok: boolean;
	checkedAt: string;
	currencies: { currency: string; accounts: number; sum: string }[];
	counts: { accounts: number; transfers: number; entries: number; pendingHolds: number };
	violations: Violation[];
}

const VIOLATIONS_MAX = 100;

const CHECKS: { check: string; sql: string }[] = [
	{
		check: "currency_sum",
		sql: `SELECT currency AS id, sum(posted)::text AS detail FROM ledger.accounts GROUP BY currency HAVING sum(posted) <> 0`,
	},
	{
		check: "posted_equals_entries",
		sql: `SELECT a.id::text AS id, a.posted::text || ' <> ' || coalesce(e.s, 0)::text AS detail
		      FROM ledger.accounts a LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger.entries GROUP BY account_id) e ON e.account_id = a.id
		      WHERE a.posted <> coalesce(e.s, 0)`,
	},
	{
		check: "pending_equals_holds",
		sql: `SELECT a.id::text AS id, a.pending_debits::text || '/' || a.pending_credits::text AS detail
		      FROM ledger.accounts a
		      LEFT JOIN (SELECT from_account_id, sum(amount) AS s FROM ledger.holds WHERE status = 'pending' GROUP BY 1) d ON d.from_account_id = a.id
		      LEFT JOIN (SELECT to_account_id, sum(amount) AS s FROM ledger.holds WHERE status = 'pending' GROUP BY 1) c ON c.to_account_id = a.id
		      WHERE a.pending_debits <> coalesce(d.s, 0) OR a.pending_credits <> coalesce(c.s, 0)`,
	},
	{
		check: "floor",
		sql: `SELECT id::text AS id, (posted - pending_debits)::text AS detail FROM ledger.accounts WHERE kind = 'user' AND posted - pending_debits < 0`,
	},
	{
		check: "transfer_balanced",
		sql: `SELECT t.id::text AS id, coalesce(e.n, 0)::text || ' entries, sum ' || coalesce(e.s, 0)::text AS detail
		      FROM ledger.transfers t LEFT JOIN (
		        SELECT en.transfer_id, count(*) AS n, sum(en.amount) AS s,
		               sum(CASE WHEN en.amount < 0 THEN -en.amount ELSE 0 END) AS d,
		               bool_and((en.amount < 0) = (en.account_id = tr.from_account_id)) AS sides
		        FROM ledger.entries en JOIN ledger.transfers tr ON tr.id = en.transfer_id GROUP BY en.transfer_id
		      ) e ON e.transfer_id = t.id
		      WHERE coalesce(e.n, 0) <> 2 OR e.s <> 0 OR e.d <> t.amount OR NOT e.sides`,
	},
	{
		check: "references",
		sql: `SELECT t.id::text AS id, 'transfer account missing' AS detail FROM ledger.transfers t
		      WHERE NOT EXISTS (SELECT 1 FROM ledger.accounts a WHERE a.id = t.from_account_id)
		         OR NOT EXISTS (SELECT 1 FROM ledger.accounts a WHERE a.id = t.to_account_id)
		      UNION ALL
		      SELECT e.account_id::text || ':' || e.account_version::text, 'entry without its transfer or account' FROM ledger.entries e
		      WHERE NOT EXISTS (SELECT 1 FROM ledger.transfers t WHERE t.id = e.transfer_id)
		         OR NOT EXISTS (SELECT 1 FROM ledger.accounts a WHERE a.id = e.account_id)`,
	},
	{
		check: "running_balance",
		sql: `SELECT account_id::text AS id, 'version ' || account_version::text AS detail FROM (
		        SELECT account_id, account_version, balance_after,
		               sum(amount) OVER (PARTITION BY account_id ORDER BY account_version) AS running
		        FROM ledger.entries) x WHERE running <> balance_after`,
	},
	{
		check: "last_balance",
		sql: `SELECT a.id::text AS id, 'last entry ' || l.balance_after::text AS detail FROM ledger.accounts a
		      JOIN (SELECT DISTINCT ON (account_id) account_id, balance_after, account_version FROM ledger.entries ORDER BY account_id, account_version DESC) l
		        ON l.account_id = a.id
		      WHERE l.balance_after <> a.posted OR l.account_version > a.version`,
	},
];

/** The check reads every entry: a large ledger takes longer than a request's statement timeout. */
const CHECK_STATEMENT_TIMEOUT_MS = 600_000;

export async function checkInvariants(knex: Knex): Promise<InvariantReport> {
	return knex.transaction(
		async trx => {
			await trx.raw(`SET LOCAL statement_timeout = ${CHECK_STATEMENT_TIMEOUT_MS}`);
			const violations: Violation[] = [];
			for (const c of CHECKS) {
				const res = (await trx.raw(`${c.sql} LIMIT ${VIOLATIONS_MAX}`)) as { rows: { id: string; detail: string }[] };
				for (const r of res.rows) violations.push({ check: c.check, id: r.id, detail: r.detail });
			}
			const currencies = (await trx.raw(
				"SELECT currency, count(*)::int AS accounts, sum(posted)::text AS sum FROM ledger.accounts GROUP BY currency ORDER BY currency",
			)) as { rows: InvariantReport["currencies"] };
			const counts = (await trx.raw(`SELECT
				(SELECT count(*) FROM ledger.accounts)::int AS accounts,
				(SELECT count(*) FROM ledger.transfers)::int AS transfers,
				(SELECT count(*) FROM ledger.entries)::int AS entries,
				(SELECT count(*) FROM ledger.holds WHERE status = 'pending')::int AS "pendingHolds"`)) as { rows: InvariantReport["counts"][] };
			return {
				ok: violations.length === 0,
				checkedAt: new Date().toISOString(),
				currencies: currencies.rows,
				counts: counts.rows[0] ?? { accounts: 0, transfers: 0, entries: 0, pendingHolds: 0 },
				violations: violations.slice(0, VIOLATIONS_MAX),
			};
		},
		{ isolationLevel: "repeatable read", readOnly: true },
	);
}
