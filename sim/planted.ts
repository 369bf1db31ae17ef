/**
 * Bugs planted on purpose, to show that each checker catches a real fault
 * (test/integration/simulate-planted.test.ts). All are off; only that test and
 * `npm run simulate -- --plant <name>` turn one on. None of them is in the service code, so
 * production code carries no switch: paymentKeyPerCall is a before hook put into the real
 * ledger service's schema, holdReleaseTwice edits what the database answers the ledger's
 * hold-locking read (sim/database.ts rewrite), eventTwice turns off the dedupe of the
 * simulator's consumer (sim/consumer.ts) while the real consumer mixin redelivers.
 */
import type { ServiceSchema } from "moleculer";

export type PlantedBug =
	/** The ledger keys a P2P payment by the call instead of the client's key: a retry after a lost commit answer is applied again. */
	| "paymentKeyPerCall"
	/** The batch reads a closed hold as pending (a stale read of its status), so a later void or expiry releases it again. */
	| "holdReleaseTwice"
	/** The consumer applies an event again when the log hands it over again (its dedupe by event id is off). */
	| "eventTwice";

export const PLANTED_BUGS: readonly PlantedBug[] = ["paymentKeyPerCall", "holdReleaseTwice", "eventTwice"];

interface CallContext {
	requestID?: string | null;
	id?: string;
	params: Record<string, unknown>;
}

/** The hold-locking read of the ledger's batch (services/ledger/store.ts lockHolds), whatever columns it names. */
const HOLD_LOCK_SQL = /^SELECT [^;]* FROM ledger\.holds WHERE id = ANY\([^;]*FOR UPDATE$/;

/** The database-side half of a planted bug: how it edits statements' answers, or null. */
export function plantedRewrite(bug: PlantedBug | null): ((sql: string, answer: { rows: unknown[] }) => void) | null {
	if (bug !== "holdReleaseTwice") return null;
	return (sql, answer) => {
		if (!HOLD_LOCK_SQL.test(sql)) return;
		for (const row of answer.rows) if (typeof row === "object" && row !== null && "status" in row) Object.assign(row, { status: "pending" });
	};
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
