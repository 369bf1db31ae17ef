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
	const namesOp = (l: string) => [...l.matchAll(/\bop(\d+)\b/g)].some(m => ops.has(`op${m[1]}`));
	// The holds those operations made or acted on, and the other operations on those holds.
	const holds = new Set<string>();
	for (const l of lines.filter(namesOp)) for (const m of l.matchAll(/\b(?:hold|id)=(id\d+)\b/g)) if (m[1]) holds.add(m[1]);
	for (const v of r.violations) for (const m of v.detail.matchAll(/\bhold (id\d+)\b/g)) if (m[1]) holds.add(m[1]);
	const namesHold = (l: string) => [...l.matchAll(/\b(?:hold|id)=(id\d+)\b/g)].some(m => m[1] !== undefined && holds.has(m[1]) && /\bhold\b|pending|post|void/.test(l));
	// Operations on those holds join the story with all their lines.
	for (const l of lines.filter(namesHold)) for (const m of l.matchAll(/\bop(\d+)\b/g)) ops.add(`op${m[1]}`);
	const mentions = (l: string) => namesOp(l) || namesHold(l);
	const about = lines.filter(mentions);
	const first = about.length > 0 ? tickOf(about[0] ?? "0") : 0;
	const last = about.length > 0 ? tickOf(about[about.length - 1] ?? "0") : Number.MAX_SAFE_INTEGER;
	const fault = /^\d+ (db |node |net partition|net heal|calm|seed )/;
	return lines.filter(l => mentions(l) || l.includes("VIOLATION") || (fault.test(l) && ((tickOf(l) >= first && tickOf(l) <= last) || l.includes(" seed "))));
}
