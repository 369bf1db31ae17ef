/** A node in a child process (`bin/start.ts`), for tests that kill it with SIGKILL. */
import { spawn, type ChildProcess } from "node:child_process";
import type { ServiceBroker } from "moleculer";
import { NODE_FLAGS } from "../../bin/node-flags.ts";
import { TEST_AUDIT_KEY, TEST_GATEWAY_SIGNING_KEY, TEST_GATEWAY_VERIFY_KEY, TEST_SECRETS_KEY, TEST_TRANSIT_KEY } from "./node.ts";

/** How a caller may wrap the node's command (test/support/cgroup.ts starts it inside a CPU group). */
export type CommandWrap = (node: { command: string; args: string[] }) => { command: string; args: string[] };

/** A node process running bin/start.ts with `env`, started as `npm start` starts one (NODE_FLAGS); `nodeArgs` go before the script (V8 flags that NODE_OPTIONS does not take). */
export function startChildNode(env: Record<string, string>, wrap: CommandWrap = c => c, nodeArgs: readonly string[] = []): ChildProcess {
	const { command, args } = wrap({ command: process.execPath, args: [...NODE_FLAGS, ...nodeArgs, "bin/start.ts"] });
	return spawn(command, args, {
		cwd: new URL("../..", import.meta.url).pathname,
		env: {
			PATH: process.env["PATH"] ?? "", TRANSIT_KEY: TEST_TRANSIT_KEY, AUDIT_KEY: TEST_AUDIT_KEY, SECRETS_KEY: TEST_SECRETS_KEY,
			GATEWAY_SIGNING_KEY: TEST_GATEWAY_SIGNING_KEY, GATEWAY_VERIFY_KEYS: TEST_GATEWAY_VERIFY_KEY, ...env,
		},
		stdio: ["ignore", "ignore", "inherit"],
	});
}

export async function exited(proc: ChildProcess): Promise<void> {
	if (proc.exitCode !== null || proc.signalCode !== null) return;
	await new Promise(resolve => proc.once("exit", resolve));
}

/**
 * Waits until `action` answers. After a restart the registry may still list the killed
 * instance for a heartbeat timeout, so a real answer is the only proof the node is back.
 */
export async function untilAnswering(broker: ServiceBroker, action: string, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			await broker.call(action, {}, { timeout: 1_000, retries: 0 });
			return;
		} catch (err) {
			if (Date.now() > deadline) throw err;
			await new Promise(r => setTimeout(r, 200));
		}
	}
}

/**
 * Waits until this broker has marked `nodeId` unavailable (its heartbeat timed out, or it
 * said goodbye). A killed node restarted under the same id before that can lose its new
 * registration when the old instance times out a moment later, leaving its actions "not
 * available" until its next heartbeat; restarting after this wait avoids that race.
 */
export async function untilNodeGone(broker: ServiceBroker, nodeId: string, timeoutMs = 30_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (broker.registry.nodes.get(nodeId)?.available) {
		if (Date.now() > deadline) throw new Error(`node ${nodeId} still listed as available after ${timeoutMs} ms`);
		await new Promise(r => setTimeout(r, 50));
	}
}

/**
 * A client's retry with the same key, and every read after a restart: while the node is
 * unavailable again (a retryable error), wait until `action` answers and try again. The
 * restarted node keeps its node id, so under the full suite's load the caller can time out
 * the killed instance after the new one has registered and drop the node for a moment,
 * until its next heartbeat.
 */
export async function retried<T>(broker: ServiceBroker, call: () => Promise<T>, action = "ledger.health", deadlineMs = 60_000): Promise<T> {
	const deadline = Date.now() + deadlineMs;
	for (;;) {
		try {
			return await call();
		} catch (err) {
			if ((err as { retryable?: boolean }).retryable !== true || Date.now() > deadline) throw err;
			await untilAnswering(broker, action, Math.max(1_000, deadline - Date.now()));
		}
	}
}
