/**
 * Keeps the Moleculer context of the action being run, across awaits, so code deep inside
 * a saga can call other services as part of the same request (same request id in the
 * logs, child spans in one trace) without passing ctx through every function.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context } from "moleculer";

const store = new AsyncLocalStorage<Context>();

/** Broker middleware: every local action runs with its context in the store. */
export const ContextStoreMiddleware = {
	name: "ContextStore",
	localAction(next: (ctx: Context) => Promise<unknown>) {
		return (ctx: Context) => store.run(ctx, () => next(ctx));
	},
};

/** The context of the action being run here, if any. */
export function runningContext(): Context | undefined {
	return store.getStore();
}
