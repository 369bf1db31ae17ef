/**
 * For the nodes that check access tokens themselves (the gateway, realtime): at start, the
 * sessions revoked before they joined. Revocations reach running nodes as the
 * auth.session.revoked broadcast; a node that starts later reads the ones whose tokens may
 * still be alive from auth, so a logged-out, revoked or password-changed session's token
 * is refused there too.
 */
import { Errors, type Logger, type ServiceBroker } from "moleculer";
import { callDetached } from "../../lib/contract.ts";
import { auth } from "../../contracts/auth.ts";

/** A starting node asks this often, this many times, until an auth service answers. */
const RETRY_MS = 2_000;
const ATTEMPTS_MAX = 30;
const CALL_TIMEOUT_MS = 10_000;

const pause = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms).unref());

/** Adds the recently revoked sessions to `revoked` (session id -> when its last token expires). */
export async function catchUpRevocations(broker: ServiceBroker, revoked: Map<string, number>, logger: Logger): Promise<void> {
	for (let attempt = 1; ; attempt++) {
		try {
			const out = await callDetached(broker, auth.sessions.revokedRecently, {}, { timeout: CALL_TIMEOUT_MS, retries: 0 });
			const now = Date.now();
			for (const { sid, until } of out.items) if (until > now && (revoked.get(sid) ?? 0) < until) revoked.set(sid, until);
			if (!out.complete) logger.warn("more sessions were revoked recently than a starting node reads; the oldest are not refused until their tokens expire", { read: out.items.length });
			return;
		} catch (err) {
			// No auth service yet (a cluster starting): ask again a little later, unless this node is stopping.
			const notYet = err instanceof Errors.ServiceNotFoundError || err instanceof Errors.ServiceNotAvailableError;
			if (!notYet || attempt >= ATTEMPTS_MAX || broker.stopping) {
				// Revocations from now on still arrive by broadcast; only older ones are missed.
				logger.warn("could not read recently revoked sessions at start", { error: (err as Error).message });
				return;
			}
			await pause(RETRY_MS);
		}
	}
}
