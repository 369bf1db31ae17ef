/**
 * Work that is woken by kicks and coalesces them: the outbox relay and each source of an
 * event consumer run on one of these. A kick while a round runs makes the loop go round
 * once more when it ends, so nothing waits for the next poll; rounds start at least
 * `gapMs()` apart, also when kicks come one by one between rounds (a kick too soon after
 * the last round's start sets one timer for the rest of the gap), so under load the kicks
 * of many writes share one round instead of each paying for its own, and a quiet source
 * is still served at once. A round that answers `true` (a full page: more is waiting) is
 * followed at once by the next. `stop()` resolves once the round in progress, if any, has
 * ended, without waiting out a gap; no round starts after it is called.
 */
export class CoalescingLoop {
	private readonly round: () => Promise<boolean>;
	private readonly gapMs: () => number;
	private readonly onError: (err: Error) => void;
	/** The loop while it runs. */
	private running: Promise<void> | null = null;
	private again = false;
	private stopping = false;
	/** A kick waiting for the gap to end. */
	private delayed: NodeJS.Timeout | null = null;
	/** The loop's own wait for the gap to end, which stop() cuts short. */
	private resting: { timer: NodeJS.Timeout; wake: () => void } | null = null;
	private lastStartMs = Number.NEGATIVE_INFINITY;

	/** `onError`: a round failed; the loop ends, and the next kick (a poll's, say) starts it again. */
	constructor(round: () => Promise<boolean>, gapMs: () => number, onError: (err: Error) => void) {
		this.round = round;
		this.gapMs = gapMs;
		this.onError = onError;
	}

	get isRunning(): boolean {
		return this.running !== null;
	}

	kick(): void {
		if (this.stopping || this.delayed) return;
		if (this.running) {
			this.again = true;
			return;
		}
		const restMs = this.lastStartMs + this.gapMs() - performance.now();
		if (restMs > 0) {
			this.delayed = setTimeout(() => {
				this.delayed = null;
				this.kick();
			}, restMs);
			this.delayed.unref();
			return;
		}
		// Marked running before the first round starts, so a kick from inside it only asks for another.
		let done = () => {};
		this.running = new Promise<void>(resolve => (done = resolve));
		void this.loop().finally(() => {
			this.running = null;
			done();
		});
	}

	async stop(): Promise<void> {
		this.stopping = true;
		if (this.delayed) clearTimeout(this.delayed);
		this.delayed = null;
		if (this.resting) {
			clearTimeout(this.resting.timer);
			this.resting.wake();
		}
		await this.running;
	}

	private async loop(): Promise<void> {
		try {
			do {
				// Each round clears the kicks it covers and starts the gap: a chain of full pages
				// ends with the gap counted from its last round.
				let full: boolean;
				do {
					this.again = false;
					this.lastStartMs = performance.now();
					full = await this.round();
				} while (full && !this.stopping);
				const restMs = this.gapMs() - (performance.now() - this.lastStartMs);
				if (this.again && restMs > 0 && !this.stopping) await this.rest(restMs);
			} while (this.again && !this.stopping);
		} catch (err) {
			try {
				this.onError(err as Error);
			} catch {
				// A failing error report must not leave the loop's promise rejected for stop() to throw.
			}
		}
	}

	private rest(ms: number): Promise<void> {
		return new Promise<void>(resolve => {
			const wake = () => {
				this.resting = null;
				resolve();
			};
			this.resting = { timer: setTimeout(wake, ms), wake };
		});
	}
}
