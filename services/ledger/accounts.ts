/**
 * Opening accounts and changing their status. Both write an outbox event in the same
 * transaction as the row. Status changes are a conditional UPDATE of one row, which
 * takes that row's lock and so waits for any batch that holds it.
 */
import type { Knex } from "knex";
import { refusal, type Refusal } from "../../lib/errors.ts";
import { toSafeNumber } from "../../lib/money.ts";
import { balanceView } from "./rules.ts";
import { toAccount, type AccountRecord } from "./store.ts";
import { insertOutbox } from "../../mixins/event-log.ts";

export interface OpenAccount {
	id: string;
	ownerId: string | null;
	currency: string;
	label: string;
	kind: "user" | "system";
	code: string | null;
}

export function accountView(a: AccountRecord) {
	return {
		id: a.id, ownerId: a.ownerId, code: a.code, currency: a.currency, label: a.label, kind: a.kind, status: a.status,
		balance: balanceView(a), version: toSafeNumber(a.version), createdAt: a.createdAt.toISOString(),
	};
}

/**
 * Opens an account. A system account is identified by its code (for example
 * `external:bank:USD`), so opening it again returns the existing one.
 */
export async function openAccount(knex: Knex, a: OpenAccount): Promise<AccountRecord | Refusal> {
	return knex.transaction(async trx => {
		const inserted = (await trx.raw(
			`INSERT INTO ledger.accounts (id, code, owner_id, currency, label, kind) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (code) DO NOTHING RETURNING *`,
			[a.id, a.code, a.ownerId, a.currency, a.label, a.kind],
		)) as { rows: Parameters<typeof toAccount>[0][] };
		const row = inserted.rows[0];
		if (row) {
			const account = toAccount(row);
			await insertOutbox(trx, "ledger", [{ event: "account.opened", partitionKey: account.id, payload: accountView(account) }]);
			return account;
		}
		const existing = (await trx.raw("SELECT * FROM ledger.accounts WHERE code = ?", [a.code])) as { rows: Parameters<typeof toAccount>[0][] };
		const found = existing.rows[0];
		if (!found || found.currency !== a.currency) {
			return refusal("ACCOUNT_CODE_CONFLICT", `account code ${a.code} exists with another currency`);
		}
		return toAccount(found);
	});
}

export async function setStatus(knex: Knex, id: string, status: "active" | "frozen"): Promise<AccountRecord | null> {
	return knex.transaction(async trx => {
		// A closed account stays frozen: nobody unfreezes it back into use.
		const res = (await trx.raw(
			"UPDATE ledger.accounts SET status = ?, updated_at = now() WHERE id = ? AND (? = 'frozen' OR NOT EXISTS (SELECT 1 FROM ledger.account_closures c WHERE c.account_id = ?)) RETURNING *",
			[status, id, status, id],
		)) as {
			rows: Parameters<typeof toAccount>[0][];
		};
		const row = res.rows[0];
		if (!row) return null;
		const account = toAccount(row);
		await insertOutbox(trx, "ledger", [{ event: "account.status_changed", partitionKey: id, payload: { accountId: id, ownerId: account.ownerId, status } }]);
		return account;
	});
}

type Row = Parameters<typeof toAccount>[0];

/** Renames one of the owner's accounts; null when it is not theirs (or does not exist). */
export async function renameAccount(knex: Knex, id: string, ownerId: string, label: string): Promise<AccountRecord | null> {
	return knex.transaction(async trx => {
		const res = (await trx.raw("UPDATE ledger.accounts SET label = ?, updated_at = now() WHERE id = ? AND owner_id = ? RETURNING *", [label, id, ownerId])) as { rows: Row[] };
		const row = res.rows[0];
		if (!row) return null;
		const account = toAccount(row);
		await insertOutbox(trx, "ledger", [{ event: "account.renamed", partitionKey: id, payload: { accountId: id, ownerId, label } }]);
		return account;
	});
}

/**
 * Closes one of the owner's accounts: only at a zero balance with no pending holds in
 * either direction, and not while an administrator has it frozen. The row's lock is
 * taken first, so a transfer in flight either commits before (and the balance is seen) or
 * waits and is then refused as the account is frozen. Closing a closed account answers
 * it again. The history stays.
 */
export async function closeAccount(knex: Knex, id: string, ownerId: string): Promise<AccountRecord | Refusal> {
	return knex.transaction(async trx => {
		const res = (await trx.raw("SELECT * FROM ledger.accounts WHERE id = ? AND owner_id = ? FOR UPDATE", [id, ownerId])) as { rows: Row[] };
		const row = res.rows[0];
		if (!row) return refusal("ACCOUNT_NOT_FOUND", "account not found");
		const account = toAccount(row);
		const closed = (await trx.raw("SELECT 1 FROM ledger.account_closures WHERE account_id = ?", [id])) as { rows: unknown[] };
		if (closed.rows.length > 0) return account;
		if (account.status === "frozen") return refusal("ACCOUNT_FROZEN", "the account is frozen; support can tell you why", { accountId: id });
		if (account.pendingDebits !== 0n || account.pendingCredits !== 0n) {
			return refusal("ACCOUNT_HAS_PENDING", "the account has payments in progress; close it when they are done", { accountId: id, pendingDebitsMinor: toSafeNumber(account.pendingDebits), pendingCreditsMinor: toSafeNumber(account.pendingCredits) });
		}
		if (account.posted !== 0n) {
			return refusal("ACCOUNT_NOT_EMPTY", "move the money out before closing the account", { accountId: id, balanceMinor: toSafeNumber(account.posted) });
		}
		const upd = (await trx.raw("UPDATE ledger.accounts SET status = 'frozen', updated_at = now() WHERE id = ? RETURNING *", [id])) as { rows: Row[] };
		await trx.raw("INSERT INTO ledger.account_closures (account_id, closed_by) VALUES (?, ?)", [id, ownerId]);
		await insertOutbox(trx, "ledger", [
			{ event: "account.closed", partitionKey: id, payload: { accountId: id, ownerId } },
			{ event: "account.status_changed", partitionKey: id, payload: { accountId: id, ownerId, status: "frozen" } },
		]);
		return toAccount(upd.rows[0] as Row);
	});
}

/** An account as its owner's list shows it: a closed account (frozen for good, see closeAccount) says "closed". */
export function ownerAccountView(a: AccountRecord, closed: boolean) {
	const v = accountView(a);
	return closed ? { ...v, status: "closed" as const } : v;
}

/** Which of these accounts were closed (their view says "closed" instead of "frozen"). */
export async function closedAmong(knex: Knex, ids: readonly string[]): Promise<Set<string>> {
	if (ids.length === 0) return new Set();
	const res = (await knex.raw("SELECT account_id FROM ledger.account_closures WHERE account_id = ANY(?::uuid[])", [[...ids]])) as { rows: { account_id: string }[] };
	return new Set(res.rows.map(r => r.account_id));
}
