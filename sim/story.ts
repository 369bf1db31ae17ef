/**
 * The short story of a failing run: from its trace, the lines about the operations a
 * violation names and the faults (database, nodes, partitions) injected while they were in
 * flight, up to the first violation. Not a minimised schedule: the shortest excerpt of the
 * seed's own trace that shows what happened to the operations that went wrong.
 */
import type { RunResult } from "./run.ts";

export function storyOf(r: RunResult): string[] {
	const ops = new Set<string>();
	for (const v of r.violations) for (const m of v.detail.matchAll(/\bop(\d+)\b/g)) ops.add(`op${m[1]}`);
	const lines = r.trace;
	const tickOf = (l: string) => Number(l.slice(0, l.indexOf(" ")));
	const mentions = (l: string) => [...l.matchAll(/\bop(\d+)\b/g)].some(m => ops.has(`op${m[1]}`));
	const about = lines.filter(mentions);
	const first = about.length > 0 ? tickOf(about[0] ?? "0") : 0;
	const last = about.length > 0 ? tickOf(about[about.length - 1] ?? "0") : Number.MAX_SAFE_INTEGER;
	const fault = /^\d+ (db |node |net partition|net heal|calm|seed )/;
	return lines.filter(l => mentions(l) || l.includes("VIOLATION") || (fault.test(l) && ((tickOf(l) >= first && tickOf(l) <= last) || l.includes(" seed "))));
}
