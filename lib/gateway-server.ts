import { Server } from "node:http";
import type { ServiceBroker } from "moleculer";

/** The HTTP server of this node's gateway (the `api` service), once it listens here; undefined without one. */
export function gatewayServer(broker: ServiceBroker): Server | undefined {
	const api = broker.getLocalService("api");
	return api && "server" in api && api.server instanceof Server ? api.server : undefined;
}
