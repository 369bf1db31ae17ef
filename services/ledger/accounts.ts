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
		const res = (await trx.raw("UPDATE ledger.accounts SET status = ?, updated_at = now() WHERE id = ? RETURNING *", [status, id])) as {
			rows: Parameters<typeof toAccount>[0][];
		};
		const row = res.rows[0];
		if (!row) return null;
		const account = toAccount(row);
		await insertOutbox(trx, "ledger", [{ event: "account.status_changed", partitionKey: id, payload: { accountId: id, ownerId: account.ownerId, status } }]);
		return account;
	});
}
