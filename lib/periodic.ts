/**
 * A background task run every `everyMs`, never two runs at once (a slow run makes the
 * next tick skip), and awaited on stop so a service does not close its database under it.
 * Every sweep of the services (hold expiry, payment resume, FX refresh, session list, …)
 * runs on one of these.
 */
export class Periodic {
	private readonly task: () => Promise<unknown>;
	private readonly everyMs: number;
	private readonly onError: (err: Error) => void;
	private timer: NodeJS.Timeout | null = null;
	private running: Promise<void> | null = null;

	constructor(task: () => Promise<unknown>, everyMs: number, onError: (err: Error) => void) {
		this.task = task;
		this.everyMs = everyMs;
		this.onError = onError;
	}

	start(): void {
		this.timer = setInterval(() => {
			if (this.running) return;
			this.running = this.task()
				.then(
					() => undefined,
					(err: Error) => this.onError(err),
				)
				.finally(() => (this.running = null));
		}, this.everyMs);
		this.timer.unref();
	}

	async stop(): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		this.timer = null;
		await this.running;
	}
}
