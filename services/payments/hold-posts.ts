/**
 * The post of a payment's hold: a payout's once its provider paid out, an approved reviewed P2P
 * payment's once support approved it. The ledger refuses it while an account of the hold is
 * frozen, and keeps that refusal under the post's key like any answer, so a post asked again
 * under the same key would answer ACCOUNT_FROZEN forever after the account is unfrozen. The
 * payment waits instead (processing; the hold keeps the money), the attempt moves on once the
 * refusal is stored, and the resume sweep posts under the next attempt's key
 * (`payment:<id>:post-<n>`) once both accounts of the hold are active, reading them first so
 * a still-frozen account is not asked again. A hold posts once whatever its keys: the ledger
 * refuses a second post (HOLD_NOT_PENDING).
 */
import { Errors, type ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { call, type ResultOf } from "../../lib/contract.ts";
import { attemptKey, STATE_REFUSALS } from "../../lib/idempotency.ts";
import { ledger } from "../../contracts/ledger.ts";
import { nextPostAttempt, waitedPayment, type PaymentRow } from "./store.ts";

export interface HoldPostHost {
	knex: Knex;
	broker: ServiceBroker;
	logger: { warn(msg: string, o: object): void };
}

/** The key of a payment's hold post in an attempt: attempt 0 keeps the key payments always used. */
export const postKey = (paymentId: string, attempt: number) => attemptKey(`payment:${paymentId}:post`, attempt);

/**
 * What a refused post means: a refusal for an account's state waits (`nextAttempt` once the
 * ledger stored it under this attempt's key); anything else is the caller's to handle.
 */
export function postRefusal(code: string | null): "wait" | "other" {
	return code !== null && STATE_REFUSALS.has(code) ? "wait" : "other";
}

/** Posts the payment's hold under its attempt's key: the ledger's answer, or "waiting" (an account of the hold is frozen). Other refusals are thrown. */
export async function postPaymentHold(host: HoldPostHost, p: Pick<PaymentRow, "id" | "hold_id" | "post_attempt">): Promise<ResultOf<typeof ledger.holds.post> | "waiting"> {
	const holdId = p.hold_id;
	if (!holdId) throw new Error(`payment ${p.id} is processing without a hold`);
	const attempt = p.post_attempt;
	if (attempt > 0) {
		const hold = await call(host.broker, ledger.holds.get, { id: holdId });
		const accounts = await Promise.all([hold.fromAccountId, hold.toAccountId].map(id => call(host.broker, ledger.accounts.get, { id })));
		// Still frozen: asking would only store another refusal under a new key.
		if (accounts.some(a => a.status !== "active") && hold.status === "pending") {
			await waitedPayment(host.knex, p.id);
			return "waiting";
		}
	}
	try {
		return await call(host.broker, ledger.holds.post, { idempotencyKey: postKey(p.id, attempt), holdId });
	} catch (err) {
		const code = err instanceof Errors.MoleculerClientError && typeof err.type === "string" ? err.type : null;
		if (postRefusal(code) === "other") throw err;
		await nextPostAttempt(host.knex, p.id, attempt);
		host.logger.warn("a payment's hold post was refused for an account's state; it waits, and the resume sweep posts it once the account is active", { paymentId: p.id, holdId, code, attempt });
		return "waiting";
	}
}
