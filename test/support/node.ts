import type { ServiceBroker } from "moleculer";
import { loadConfig, type Config } from "../../config/index.ts";
import { createNode } from "../../bin/node.ts";

/** A started broker with the given services, configured only through environment-style settings. */
/** The key every test node shares, so tokens signed by one gateway verify on another. */
export const TEST_JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

export async function startNode(env: Record<string, string>): Promise<{ broker: ServiceBroker; config: Config }> {
	const config = loadConfig({ LOG_LEVEL: "warn", METRICS_ENABLED: "false", JWT_SECRET: TEST_JWT_SECRET, ...env });
	const broker = createNode(config);
	await broker.start();
	return { broker, config };
}

export { seededRandom } from "../../lib/random.ts";
