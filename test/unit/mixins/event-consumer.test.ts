/**
 * mixins/event-consumer.ts calls its own methods through `this`, so a service that defines
 * one of them again (Moleculer lets the service's method win without a word) would break
 * consumption silently. The mixin refuses such a service when it is created.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServiceBroker } from "moleculer";
import { eventConsumer } from "../../../mixins/event-consumer.ts";

const broker = new ServiceBroker({ logger: false, metrics: false });
after(() => broker.stop());

const consumer = () => eventConsumer({ schema: "probe", sources: ["ledger"], events: ["transfer.completed"] });

describe("event consumer mixin", () => {
	for (const name of ["deliver", "pump", "recordPruned", "startConsumer", "stopConsumer"]) {
		it(`refuses a service that defines its own "${name}"`, () => {
			assert.throws(
				() => broker.createService({ name: `clash-${name}`, mixins: [consumer()], methods: { [name]() {} } }),
				new RegExp(`defines a method "${name}", which the event consumer mixin uses itself`),
			);
		});
	}

	it("accepts a service with its own handler and other methods", () => {
		const svc = broker.createService({ name: "fine", mixins: [consumer()], methods: { handleEvent: async () => undefined, attemptDelivery() {} } });
		assert.equal(svc.name, "fine");
	});
});
