export interface BenchResult {
	name: string;
	opsPerSec: number;
	p50Ms: number;
	p99Ms: number;
	baselineOpsPerSec: number;
	baselineP50Ms?: number;
	baselineP99Ms?: number;
	[extra: string]: unknown;
}

export interface RunFigures {
	opsPerSec: number;
	p50Ms: number;
	p99Ms: number;
	count: number;
	errors: number;
}

export function percentile(sorted: number[], p: number): number {
	if (sorted.length === 0) return 0;
	const idx = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
	return sorted[Math.max(0, idx)] ?? 0;
}

/**
 * Runs `total` operations with `concurrency` callers in flight and times each call; `op`
 * gets the operation's index and its caller's (0 to concurrency - 1, each caller one
 * operation at a time). Errors are counted, not hidden: a run with errors is reported as
 * such. With `untilMs` (a performance.now() instant) no operation starts after it: a run of
 * a fixed duration.
 */
export async function measure(total: number, concurrency: number, op: (i: number, caller: number) => Promise<unknown>, untilMs = Number.POSITIVE_INFINITY): Promise<RunFigures> {
	const latencies: number[] = [];
	let next = 0;
	let errors = 0;
	const started = performance.now();
	async function worker(caller: number): Promise<void> {
		while (next < total && performance.now() < untilMs) {
			const i = next++;
			const t0 = performance.now();
			try {
				await op(i, caller);
				latencies.push(performance.now() - t0);
			} catch {
				errors += 1;
			}
		}
	}
	await Promise.all(Array.from({ length: concurrency }, (_, caller) => worker(caller)));
	const elapsedS = (performance.now() - started) / 1000;
	latencies.sort((a, b) => a - b);
	return { opsPerSec: latencies.length / elapsedS, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), count: latencies.length, errors };
}

/** Two-sided 95% critical values of Student's t for 1..10 degrees of freedom (beyond: 10's, slightly wide). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/**
 * Mean of a few independent estimates and the half-width of its 95% confidence interval
 * (Student's t); null half-width with fewer than two values.
 */
export function meanCi95(values: readonly number[]): { mean: number; halfWidth: number | null } {
	const n = values.length;
	if (n === 0) throw new Error("meanCi95: no values");
	const mean = values.reduce((a, b) => a + b, 0) / n;
	if (n < 2) return { mean, halfWidth: null };
	const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
	const t = T95[Math.min(n - 1, T95.length) - 1] as number;
	return { mean, halfWidth: t * Math.sqrt(variance / n) };
}
