/**
 * The trace of a run: the ordered simulator decisions (packets dropped or duplicated,
 * faults injected, nodes crashed and restarted, operations issued) and the outcomes it
 * observed (answers, checker verdicts). Ids the services draw at random (uuidv7) are
 * replaced by names in order of first appearance, so the trace of a seed is the same text
 * on every run, and its hash is what "same replay" means.
 */
import { createHash } from "node:crypto";

export class Trace {
	readonly lines: string[] = [];
	private readonly names = new Map<string, string>();
	private readonly hash = createHash("sha256");
	tick = 0;
	/** Also every packet sent and delivered (long; for finding where two runs part). */
	verbose = false;

	/** A stable name for a random id: `<prefix><n>` in order of first appearance. */
	name(id: string, prefix: string): string {
		let n = this.names.get(id);
		if (!n) {
			n = `${prefix}${this.names.size + 1}`;
			this.names.set(id, n);
		}
		return n;
	}

	add(line: string): void {
		const l = `${this.tick} ${line}`;
		this.lines.push(l);
		this.hash.update(l).update("\n");
	}

	digest(): string {
		return this.hash.copy().digest("hex");
	}
}
