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

/** A small seeded PRNG (mulberry32) so randomized tests replay exactly from their seed. */
export function seededRandom(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
