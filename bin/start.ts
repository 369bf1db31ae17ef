/**
 * `npm start`: one node with the services of SERVICES (all by default). With nothing
 * configured it is the embedded default: no transporter, PGlite under DATA_DIR.
 */
import { ConfigError, loadConfig, type Config } from "../config/index.ts";
import { createNode } from "./node.ts";
import { startOpsServer } from "./ops-server.ts";

function configOrExit(): Config {
	try {
		return loadConfig();
	} catch (err) {
		if (err instanceof ConfigError) {
			process.stderr.write(`paymesh: configuration error: ${err.message}\n`);
			process.exit(78);
		}
		throw err;
	}
}

const config = configOrExit();
const broker = createNode(config);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
	if (stopping) return;
	stopping = true;
	broker.logger.info("shutting down", { signal });
	try {
		await broker.stop();
		process.exit(0);
	} catch (err) {
		broker.logger.error("shutdown failed", { error: (err as Error).message });
		process.exit(1);
	}
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

try {
	await broker.start();
	if (config.opsPort !== null) startOpsServer(broker, config.opsPort, config.host);
	broker.logger.info("paymesh node started", {
		nodeId: broker.nodeID, services: config.services, port: config.services.includes("api") ? config.port : null,
		database: config.databaseUrl ? "postgres" : `pglite:${config.dataDir}`, transporter: config.transporter ? "nats" : "none",
	});
} catch (err) {
	process.stderr.write(`paymesh: start-up failed: ${(err as Error).stack ?? String(err)}\n`);
	process.exit(1);
}
