/**
 * The simulator's random source: lib/random.ts's seeded PRNG, split into independent
 * streams (network, database, workload, nodes) so that one subsystem drawing one more
 * number does not shift every other subsystem's choices.
 */
import { seededRandom } from "../lib/random.ts";

export class Rng {
	private readonly next: () => number;

	constructor(seed: number) {
		this.next = seededRandom(seed);
	}

	/** A stream of its own, derived from this seed and a label. */
	static stream(seed: number, label: string): Rng {
		let h = 2166136261 ^ (seed >>> 0);
		for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 16777619);
		return new Rng(h >>> 0);
	}

	float(): number {
		return this.next();
	}

	/** An integer in [0, n). */
	int(n: number): number {
		return Math.floor(this.next() * n);
	}

	/** An integer in [lo, hi]. */
	between(lo: number, hi: number): number {
		return lo + this.int(hi - lo + 1);
	}

	chance(p: number): boolean {
		return p > 0 && this.next() < p;
	}

	pick<T>(items: readonly T[]): T {
		const item = items[this.int(items.length)];
		if (item === undefined) throw new Error("Rng.pick: empty list");
		return item;
	}
}
