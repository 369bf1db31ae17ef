/**
 * Simulated time. While a run is on, the global Date reads the simulator's clock: `new
 * Date()` and `Date.now()` in the services (batch time, hold expiry, the day of the
 * spending limits, token and quote expiry) see the simulated time, which moves only when
 * the simulator advances it. Timers are not simulated: the services' background timers are
 * configured far beyond a run's real duration and their work is driven by the simulator
 * (hold sweeps are calls it makes), so no real timer decides anything during a run.
 */
const RealDate = Date;

export class SimClock {
	private nowMs: number;

	constructor(startMs: number) {
		this.nowMs = startMs;
	}

	now(): number {
		return this.nowMs;
	}

	advance(ms: number): void {
		this.nowMs += ms;
	}
}

let installed: SimClock | null = null;

function simulatedDate(clock: SimClock): DateConstructor {
	class SimDate extends RealDate {
		constructor(...args: unknown[]) {
			if (args.length === 0) super(clock.now());
			else super(...(args as [string | number | Date]));
		}

		static override now(): number {
			return clock.now();
		}
	}
	return SimDate as DateConstructor;
}

/** Makes the global Date read `clock` until uninstallClock(). One clock at a time. */
export function installClock(clock: SimClock): void {
	if (installed) throw new Error("a simulated clock is already installed");
	installed = clock;
	globalThis.Date = simulatedDate(clock);
}

export function uninstallClock(): void {
	installed = null;
	globalThis.Date = RealDate;
}
