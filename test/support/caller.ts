/**
 * Calls of guarded actions as the gateway makes them (lib/caller-identity.ts): a test that
 * calls a money or staff action straight over a cluster's bus (where every such call must
 * carry the gateway's assertion) signs it with the test gateway's key, for the user or staff
 * member the call names.
 */
import type { CallingOptions, ServiceBroker } from "moleculer";
import { call, type ActionContract, type ParamsSchema } from "../../lib/contract.ts";
import { CallerSigner, guardOf, META_USER, STAFF_ROLES, type CallerIdentity } from "../../lib/caller-identity.ts";
import type { Infer } from "../../lib/schema.ts";
import { TEST_GATEWAY_SIGNING_KEY } from "./node.ts";

const signer = new CallerSigner(TEST_GATEWAY_SIGNING_KEY);

/** A user or staff member, as the gateway authenticated them. */
export function caller(id: string, roles: readonly string[] = ["user"]): CallerIdentity {
	return { id, roles, sid: `test-${id}` };
}

/** Calling options whose meta carries `who`'s assertion for `action` with exactly `params` (one per item of a batch). */
export function signedAs(who: CallerIdentity, action: string, params: object, opts: CallingOptions = {}): CallingOptions {
	const each = guardOf(action)?.each;
	const items: unknown = each ? Reflect.get(params, each) : undefined;
	const signed = Array.isArray(items)
		? { callerAssertions: items.map((item: object) => signer.sign(who, action, item)) }
		: { callerAssertion: signer.sign(who, action, params) };
	return { ...opts, meta: { ...opts.meta, ...signed } };
}

/** Who the params of a guarded action name: its staff member (with the staff roles it needs), or its user. */
function namedIn(action: string, params: object): CallerIdentity {
	const guard = guardOf(action);
	if (!guard) throw new Error(`${action} is not guarded`);
	const staffId: unknown = guard.staff ? Reflect.get(params, guard.staff) : undefined;
	if (typeof staffId === "string") return caller(staffId, ["user", ...(guard.roles ?? STAFF_ROLES)]);
	const userId: unknown = guard.user && guard.user !== META_USER ? Reflect.get(params, guard.user) : undefined;
	if (typeof userId !== "string") throw new Error(`${action}: the params name nobody to sign for`);
	return caller(userId);
}

/** Calling options signed for whoever the params name (each item's own for a batch). */
export function signedForNamed(action: string, params: object, opts: CallingOptions = {}): CallingOptions {
	const each = guardOf(action)?.each;
	const items: unknown = each ? Reflect.get(params, each) : undefined;
	if (!Array.isArray(items)) return signedAs(namedIn(action, params), action, params, opts);
	return { ...opts, meta: { ...opts.meta, callerAssertions: items.map((item: object) => signer.sign(namedIn(action, item), action, item)) } };
}

/** A contract's call as the gateway would make it for whoever the params name. */
export function callSigned<S extends ParamsSchema, R>(broker: ServiceBroker, contract: ActionContract<S, R>, params: Infer<S>, opts: CallingOptions = {}): Promise<R> {
	return call(broker, contract, params, signedForNamed(contract.name, params, opts));
}

/** broker.call by the action's name, signed for whoever the params name (a guarded action's call as the gateway would make it). */
export function signedCall<T>(broker: ServiceBroker, action: string, params: object, opts: CallingOptions = {}): Promise<T> {
	return broker.call<T, object>(action, params, signedForNamed(action, params, opts));
}
