/**
 * Which node an action's strategy would send a call to, asked before calling: a caller that
 * batches per destination (the gateway's payments, per owning ledger node) groups its
 * items by the same Shard ring the action routes by, so every item still reaches the node
 * that owns it.
 */
import type { ServiceBroker } from "moleculer";

interface Picker {
	next(ctx: { params: object; meta: object }): unknown;
}

function isPicker(v: unknown): v is Picker {
	return typeof v === "object" && v !== null && "next" in v && typeof v.next === "function";
}

/** The node the action's strategy picks for these params, and whether it is this process; null when none is known. */
export function routeOf(broker: ServiceBroker, action: string, params: object): { nodeID: string; local: boolean } | null {
	const list: unknown = broker.registry.getActionEndpoints(action);
	if (!isPicker(list)) return null;
	const ep: unknown = list.next({ params, meta: {} });
	if (typeof ep !== "object" || ep === null || !("id" in ep) || typeof ep.id !== "string") return null;
	return { nodeID: ep.id, local: "local" in ep && ep.local === true };
}
