/** Polls `check` until it holds, or throws after `timeoutMs` naming `what` it waited for. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000, pollMs = 50): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise(r => setTimeout(r, pollMs));
	}
}
