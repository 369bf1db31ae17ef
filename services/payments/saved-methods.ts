/**
 * Top-ups from a saved card and payouts to a saved bank account (services/methods). The
 * payment keeps `method:<id>` as its destination, never the token: the token is asked of
 * the methods service when the provider is called (also when the resume sweep calls it
 * again), and leaves this node only in that call.
 */
import type { Context, ServiceBroker } from "moleculer";
import type { Knex } from "knex";
import { call } from "../../lib/contract.ts";
import { toClientError } from "../../lib/errors.ts";
import { methods } from "../../contracts/methods.ts";
import { paymentKeyTaken } from "./store.ts";
import type { PaymentRow } from "./store.ts";

const PREFIX = "method:";

/**
 * A top-up or payout request with its saved method checked and put in as the destination.
 * Foreign, unknown and removed methods answer PAYMENT_METHOD_NOT_FOUND before anything is
 * written; a key used before is a replay, answered by the payment made then (also when the
 * method has been removed since).
 */
export async function withSavedMethod<P extends { userId: string; idempotencyKey: string; provider: string; paymentMethodId?: string | null; destination?: string | null }>(
	ctx: Context, knex: Knex, use: "topup" | "payout", p: P,
): Promise<Omit<P, "destination"> & { destination?: string }> {
	const { destination, ...rest } = p;
	if (p.paymentMethodId == null) {
		if (use === "payout" && destination == null) throw toClientError({ code: "VALIDATION_ERROR", message: "a payout needs a destination or a paymentMethodId", details: { fields: ["destination", "paymentMethodId"] } });
		return destination == null ? rest : { ...rest, destination };
	}
	if (destination != null) throw toClientError({ code: "VALIDATION_ERROR", message: "give a destination or a paymentMethodId, not both", details: { fields: ["destination", "paymentMethodId"] } });
	if (!(await paymentKeyTaken(knex, p.idempotencyKey))) {
		const m = await call(ctx, methods.resolve, { userId: p.userId, id: p.paymentMethodId, use });
		if (m.provider !== p.provider) throw toClientError({ code: "PAYMENT_METHOD_UNUSABLE", message: `this payment method is kept by the ${m.provider} provider` });
	}
	return { ...rest, destination: `${PREFIX}${p.paymentMethodId}` };
}

/** The token of the payment's saved method (null for a payment made without one), for the provider call. */
export async function savedInstrument(broker: ServiceBroker, p: PaymentRow, op: "charge" | "payout"): Promise<string | null> {
	if (!p.destination?.startsWith(PREFIX)) return null;
	const m = await call(broker, methods.resolve, { userId: p.user_id, id: p.destination.slice(PREFIX.length), use: op === "charge" ? "topup" : "payout", inFlight: true });
	return m.token;
}
