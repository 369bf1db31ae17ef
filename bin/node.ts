/**
 * Builds a broker with the services named in the config. Used by `npm start`, the REPL,
 * the tests and the benchmarks, so all of them run the same wiring.
 */
import { ServiceBroker } from "moleculer";
import type { Config } from "../config/index.ts";
import { brokerOptions } from "../moleculer.config.ts";
import { SERVICE_FACTORIES } from "../services/index.ts";

export function createNode(config: Config): ServiceBroker {
	const broker = new ServiceBroker(brokerOptions(config));
	for (const name of config.services) broker.createService(SERVICE_FACTORIES[name](config));
	return broker;
}
