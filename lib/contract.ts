/**
 * Typed contracts between services (contracts/<service>.ts). An action contract is the
 * action's full name, its strict params schema (the same object the service's action
 * validates with) and, as a type only, its answer. `call` takes a contract instead of a
 * string, so a caller's params are checked against the schema's type and its answer is
 * typed without each caller declaring it by hand; event contracts do the same for
 * emit and broadcast.
 */
import { Errors, ServiceBroker, type CallingOptions, type Context } from "moleculer";
import { runningContext } from "./context-store.ts";
import { dropCallerMeta, intentMeta, registerGuard, type CallerGuard, type CallerIdentity } from "./caller-identity.ts";
import type { Infer } from "./schema.ts";

declare const RESULT: unique symbol;
declare const PAYLOAD: unique symbol;

/** A params schema as paramsSchema (lib/schema.ts) builds it. */
export type ParamsSchema = { readonly $$strict: true };

/** The answer's type, carried by the contract's type only (nothing at run time). */
export interface Returns<R> {
	readonly [RESULT]?: R;
}

export interface ActionContract<S extends ParamsSchema = ParamsSchema, R = unknown> extends Returns<R> {
	/** The full action name, e.g. `ledger.payments.p2p`. */
	readonly name: string;
	/** The schema the action validates with; its type is the params' type. */
	readonly params: S;
	/**
	 * A guarded action (money or staff): every call carries the caller's identity signed by the
	 * gateway, and the verified caller must be the user or staff member the params name
	 * (lib/caller-identity.ts).
	 */
	readonly caller?: CallerGuard;
}

/** Marks the answer's type of an action contract: `action("x.y", schema, returns<Answer>())`. */
export function returns<R>(): Returns<R> {
	return {};
}

/** `caller`: the action is guarded (see ActionContract.caller); its guard is registered by name for the nodes that run it. */
export function action<const S extends ParamsSchema, R>(name: string, params: S, _result: Returns<R>, caller?: CallerGuard): ActionContract<S, R> {
	if (!caller) return { name, params };
	registerGuard(name, caller);
	return { name, params, caller };
}

export type ParamsOf<A> = A extends ActionContract<infer S, unknown> ? Infer<S> : never;
export type ResultOf<A> = A extends ActionContract<ParamsSchema, infer R> ? R : never;

/** Who calls: an action's context (the call is its child), or the broker (then the running action's context, if any, is the parent). */
export type Caller = Context | ServiceBroker;

/**
 * Calls the action of a contract: params typed by its schema, the answer by its result type.
 * On a gateway node, a guarded action called for the request's authenticated user carries
 * that user's identity for exactly this call: in this process as an intent, signed where it
 * goes to another node (lib/caller-identity.ts).
 */
export function call<S extends ParamsSchema, R>(caller: Caller, contract: ActionContract<S, R>, params: Infer<S>, opts: CallingOptions = {}): Promise<R> {
	if (!(caller instanceof ServiceBroker)) {
		if (contract.caller) {
			const intent = intentMeta(caller.broker, contract.name, caller.meta, params);
			if (intent) return caller.call<R, Infer<S>>(contract.name, params, { ...opts, meta: { ...opts.meta, ...intent } }).finally(() => dropCallerMeta(caller.meta));
		}
		return caller.call<R, Infer<S>>(contract.name, params, opts);
	}
	const parent = runningContext();
	return caller.call<R, Infer<S>>(contract.name, params, parent && !opts.parentCtx ? { ...opts, parentCtx: parent } : opts);
}

/**
 * broker.call through a contract, exactly: no parent taken from the running action (for
 * calls that are not part of it, such as a consumer's pull or a health check).
 */
export function callDetached<S extends ParamsSchema, R>(broker: ServiceBroker, contract: ActionContract<S, R>, params: Infer<S>, opts: CallingOptions = {}): Promise<R> {
	return broker.call<R, Infer<S>>(contract.name, params, opts);
}

const checkers = new WeakMap<object, (params: Record<string, unknown>) => unknown>();

/**
 * Checks params that come from outside (a provider's callback body) against the contract's
 * schema with the broker's own validator, at the edge, as the action will: the same
 * ValidationError when they do not fit. Afterwards they have the params' type.
 */
export function assertParams<S extends ParamsSchema>(broker: ServiceBroker, contract: ActionContract<S, unknown>, params: Record<string, unknown>): asserts params is Infer<S> {
	let check = checkers.get(contract.params);
	if (!check) {
		if (!broker.validator) throw new Error("the broker has no validator");
		check = broker.validator.compile(contract.params);
		checkers.set(contract.params, check);
	}
	const res = check(params);
	if (res === true) return;
	// fastest-validator answers the list of what failed; Moleculer's validator sends it as the data, each marked with the node and action.
	const failed: unknown[] = Array.isArray(res) ? res : [];
	throw new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", failed.map(d => ({ ...(typeof d === "object" ? d : {}), nodeID: broker.nodeID, action: contract.name })));
}

export interface EventContract<P> {
	readonly name: string;
	/** Phantom: the payload's type. */
	readonly [PAYLOAD]?: P;
}

/** Marks an event's payload type: `event("user.registered", payload<{ userId: string }>())`. */
export function payload<P>(): { readonly [PAYLOAD]?: P } {
	return {};
}

export function event<P>(name: string, _payload: { readonly [PAYLOAD]?: P }): EventContract<P> {
	return { name };
}

export type PayloadOf<E> = E extends EventContract<infer P> ? P : never;

/** Emits an event of a contract to one instance of each subscribed service group. */
export function emit<P>(caller: Caller, e: EventContract<P>, data: P): Promise<void> {
	return caller instanceof ServiceBroker ? caller.emit<P>(e.name, data) : caller.emit<P>(e.name, data);
}

/** Broadcasts an event of a contract to every subscribed instance. */
export function broadcast<P>(caller: Caller, e: EventContract<P>, data: P): Promise<void> {
	return caller instanceof ServiceBroker ? caller.broadcast<P>(e.name, data) : caller.broadcast<P>(e.name, data);
}
