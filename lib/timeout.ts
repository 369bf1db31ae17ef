/**
 * Waits for `p` at most `ms`, then rejects with "timed out after N ms". `p` itself goes on
 * (a promise cannot be cancelled); its outcome is then ignored, never reported unhandled.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	try {
		return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]);
	} finally {
		clearTimeout(timer);
	}
}
