/**
 * Bugs planted on purpose, to show that each checker catches a real fault
 * (test/integration/simulate-planted.test.ts). All are off; only that test and
 * `npm run simulate -- --plant <name>` turn one on. None of them is in the service code:
 * each is put into the real ledger service's schema (or the simulator's consumer) when the
 * simulator builds a node, so production code carries no switch.
 */
import type { ServiceSchema } from "moleculer";

export type PlantedBug =
	/** The ledger keys a P2P payment by the call instead of the client's key: a retry after a lost commit answer is applied again. */
	| "paymentKeyPerCall"
	/** A hold already voided or expired is released again by a later void (the rules' pending check skipped). */
	| "holdReleaseTwice"
	/** The consumer applies an event again when the log hands it over again (its dedupe by event id is off). */
	| "eventTwice";

export const PLANTED_BUGS: readonly PlantedBug[] = ["paymentKeyPerCall", "holdReleaseTwice", "eventTwice"];

interface CallContext {
	requestID?: string | null;
	id?: string;
	params: Record<string, unknown>;
}

/** The ledger schema with the planted bug, if it is one of the ledger's. */
export function plantInLedger(schema: ServiceSchema, bug: PlantedBug | null): ServiceSchema {
	if (bug === "paymentKeyPerCall") {
		const before = { ...(schema.hooks?.before ?? {}) };
		before["payments.p2p"] = (ctx: CallContext) => {
			ctx.params["idempotencyKey"] = `${String(ctx.params["idempotencyKey"])}:${ctx.id ?? ""}`;
		};
		return { ...schema, hooks: { ...schema.hooks, before } };
	}
	return schema;
}
