/**
 * Waits for `p` at most `ms`, then rejects with "timed out after N ms". `p` itself goes on
 * (a promise cannot be cancelled); its outcome is then ignored, never reported unhandled.
 *
 * Measured so that a busy event loop (a node at its CPU cap) does not turn an answer that
 * came in time into a timeout, which Node's phase order would otherwise do twice over:
 * - the bound starts at the end of this turn (setImmediate), when what the caller started
 *   has left: ioredis's auto-pipelining writes a command at the end of the turn it was
 *   made in, which on a capped node can be hundreds of ms after it was made;
 * - when the timer fires, the rejection waits for setImmediate again, which runs after the
 *   loop's poll phase has read what is waiting on its sockets: timers run before that read.
 * Without both, a gateway at its cap took every rate-limit reply from Redis for an outage.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	let immediate: NodeJS.Immediate | undefined;
	try {
		return await Promise.race([
			p,
			new Promise<never>((_, reject) => {
				immediate = setImmediate(() => {
					timer = setTimeout(() => (immediate = setImmediate(() => reject(new Error(`timed out after ${ms} ms`)))), ms);
				});
			}),
		]);
	} finally {
		clearTimeout(timer);
		clearImmediate(immediate);
	}
}
