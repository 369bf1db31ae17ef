/**
 * The balancer of every action without a strategy of its own (the ledger's owner-routed
 * actions keep Shard): of two nodes drawn at random, the one with fewer of this broker's
 * calls still unanswered ("power of two choices" over outstanding requests).
 *
 * Round robin gives each node the same share of the calls whatever its pace, so a node
 * slowed by a long garbage collection, a busy host or a cold start keeps receiving its share
 * and collects the callers' requests until they time out: with equal shares, a tier serves
 * at most its node count times its slowest node's pace. Counting what each node still owes
 * this broker sends such a node less as soon as its answers lag, and sends a node that has
 * just joined its share once it answers. Only this broker's own calls count: no state is
 * shared between nodes, and nothing about it travels on the bus.
 */
import type { Context, Endpoint, ServiceBroker } from "moleculer";
import { Strategies } from "moleculer";

/** Of two entries drawn at random (distinct), the one with fewer in flight; the first drawn on a tie. */
export function leastLoaded<T>(list: readonly T[], inFlight: (e: T) => number, random: () => number): T | undefined {
	if (list.length <= 1) return list[0];
	const i = Math.floor(random() * list.length);
	let j = Math.floor(random() * (list.length - 1));
	if (j >= i) j += 1;
	const first = list[i];
	const second = list[j];
	if (first === undefined || second === undefined) return first ?? second;
	return inFlight(second) < inFlight(first) ? second : first;
}

/** Calls each broker has sent to each node and not yet had answered, by node id. */
const inFlightOf = new WeakMap<ServiceBroker, Map<string, number>>();

function countsOf(broker: ServiceBroker): Map<string, number> {
	let counts = inFlightOf.get(broker);
	if (!counts) inFlightOf.set(broker, (counts = new Map()));
	return counts;
}

/** This broker's calls to `nodeID` not yet answered (failed or timed out calls are answered). */
export function inFlightTo(broker: ServiceBroker, nodeID: string): number {
	return inFlightOf.get(broker)?.get(nodeID) ?? 0;
}

/** Broker middleware: counts each remote call from its sending to its answer, per node. */
export const InFlightMiddleware = {
	name: "InFlight",
	remoteAction(next: (ctx: Context) => Promise<unknown>) {
		return (ctx: Context) => {
			const nodeID = ctx.nodeID;
			if (nodeID == null) return next(ctx);
			const counts = countsOf(ctx.broker);
			counts.set(nodeID, (counts.get(nodeID) ?? 0) + 1);
			const done = () => {
				const left = (counts.get(nodeID) ?? 1) - 1;
				if (left > 0) counts.set(nodeID, left);
				else counts.delete(nodeID);
			};
			return next(ctx).finally(done);
		};
	},
};

/** The registry's strategy (moleculer.config.ts): leastLoaded over this broker's calls in flight. */
export class LeastRequestsStrategy extends Strategies.Base {
	select(list: Endpoint[]): Endpoint {
		const picked = leastLoaded(list, e => inFlightTo(this.broker, e.id), Math.random);
		// The registry never asks with an empty list.
		if (!picked) throw new Error("LeastRequestsStrategy: no endpoint to choose from");
		return picked;
	}
}
