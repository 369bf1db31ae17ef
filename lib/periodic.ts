/**
 * A background task run every `everyMs`, never two runs at once (a slow run makes the
 * next tick skip), and awaited on stop so a service does not close its database under it.
 */
export class Periodic {
	private readonly task: () => Promise<unknown>;
	private readonly everyMs: number;
	private readonly onError: (err: Error) => void;
	private timer: NodeJS.Timeout | null = null;
	private running = false;

	constructor(task: () => Promise<unknown>, everyMs: number, onError: (err: Error) => void) {
		this.task = task;
		this.everyMs = everyMs;
		this.onError = onError;
	}

	start(): void {
		this.timer = setInterval(() => {
			if (this.running) return;
			this.running = true;
			this.task()
				.catch((err: Error) => this.onError(err))
				.finally(() => (this.running = false));
		}, this.everyMs);
		this.timer.unref();
	}

	async stop(): Promise<void> {
		if (this.timer) clearInterval(this.timer);
		this.timer = null;
		while (this.running) await new Promise(r => setTimeout(r, 10));
	}
}
