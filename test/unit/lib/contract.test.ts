/**
 * lib/contract.ts: a call through a contract is the call by name it replaces. From a
 * context or the broker inside an action it is a child of that action; callDetached is a
 * plain broker.call; assertParams refuses what the action itself would refuse, alike.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Errors, ServiceBroker, type Context } from "moleculer";
import { ContextStoreMiddleware } from "../../../lib/context-store.ts";
import { action, assertParams, call, callDetached, emit, event, payload, returns } from "../../../lib/contract.ts";
import { paramsSchema } from "../../../lib/schema.ts";
import { defineService } from "../../../lib/service.ts";

const echoParams = paramsSchema({ $$strict: true, n: { type: "number", integer: true, min: 0, convert: false }, tag: { type: "string", optional: true } });
interface Seen {
	n: number;
	parentID: string | null;
	requestID: string | null;
}
const echo = action("t.echo", echoParams, returns<Seen>());
const outer = action("t.outer", paramsSchema({ $$strict: true }), returns<{ id: string; viaCtx: Seen; viaBroker: Seen; detached: Seen }>());
const pinged = event("t.pinged", payload<{ n: number }>());

let broker: ServiceBroker;
const events: number[] = [];

before(async () => {
	broker = new ServiceBroker({ logger: false, middlewares: [ContextStoreMiddleware] });
	broker.createService(defineService<{ broker: ServiceBroker }>({
		name: "t",
		actions: {
			echo: {
				params: echo.params,
				handler(ctx: Context<{ n: number }>): Seen {
					return { n: ctx.params.n, parentID: ctx.parentID, requestID: ctx.requestID };
				},
			},
			outer: {
				params: outer.params,
				async handler(this: { broker: ServiceBroker }, ctx: Context) {
					return {
						id: ctx.id,
						viaCtx: await call(ctx, echo, { n: 1 }),
						viaBroker: await call(this.broker, echo, { n: 2 }),
						detached: await callDetached(this.broker, echo, { n: 3 }),
					};
				},
			},
		},
		events: {
			"t.pinged"(ctx: Context<{ n: number }>) {
				events.push(ctx.params.n);
			},
		},
	}));
	await broker.start();
});

after(async () => {
	await broker.stop();
});

test("a call through a contract reaches the named action with the params, and types its answer", async () => {
	const seen = await call(broker, echo, { n: 7, tag: "x" });
	assert.equal(seen.n, 7);
	// Outside any action: no parent.
	assert.equal(seen.parentID, null);
});

test("inside an action, a call from the context or the broker is the action's child; callDetached is not", async () => {
	const r = await call(broker, outer, {});
	assert.equal(r.viaCtx.parentID, r.id);
	assert.equal(r.viaBroker.parentID, r.id);
	assert.equal(r.detached.parentID, null);
	assert.notEqual(r.detached.requestID, r.viaCtx.requestID);
});

test("the action still validates: params outside the types are refused as before", async () => {
	const bad: Record<string, unknown> = { n: -1 };
	await assert.rejects(broker.call(echo.name, bad), (err: Error) => err instanceof Errors.ValidationError);
});

test("assertParams refuses what the action refuses, with the same error, and lets through what it takes", async () => {
	for (const bad of [{ n: -1 }, { n: "1" }, { n: 1, other: true }, {}] as Record<string, unknown>[]) {
		const byAction = await broker.call(echo.name, { ...bad }).then(() => null, (err: Errors.ValidationError) => err);
		assert.ok(byAction instanceof Errors.ValidationError, JSON.stringify(bad));
		assert.throws(() => assertParams(broker, echo, { ...bad }), (err: Error) => {
			assert.ok(err instanceof Errors.ValidationError);
			assert.equal(err.code, byAction.code);
			assert.equal(err.type, byAction.type);
			assert.deepEqual(err.data, byAction.data);
			return true;
		});
	}
	const good: Record<string, unknown> = { n: 4 };
	assertParams(broker, echo, good);
	// Typed from here on: good.n is a number.
	assert.equal((await call(broker, echo, good)).n, 4);
});

test("an event contract emits its name with the payload", async () => {
	await emit(broker, pinged, { n: 9 });
	assert.deepEqual(events, [9]);
});
