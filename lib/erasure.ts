/**
 * Erasure on request (docs/identity.md, "Your data"): what every service's `erase` action
 * takes, and the pure rewriting they share. The gateway's erasure flow reads the person once
 * (id, name and address as the profile has them, their accounts) and hands the same
 * description to each service, which pseudonymises or deletes its own rows in its store.
 *
 * A mention is a piece of text naming the person (their name, their address) and what it
 * becomes (the pseudonym). Mentions are replaced as whole words, case-insensitively, so a
 * name inside a longer word is left alone.
 */
import { paramsSchema } from "./schema.ts";
import { erasedAddress } from "./email.ts";

/** The name an erased person is shown by, in their own profile and in other people's records. */
export const ERASED_NAME = "Erased user";

/**
 * Most account ids one erase call carries: a person with more accounts is handed to each
 * service once per slice of them (every erase action can run again, finding done what is done).
 */
export const ERASURE_ACCOUNTS_PER_CALL_MAX = 200;

/** The person to erase, as every service's erase action takes it. */
export const erasureParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	/** The name and address the profile has now (already the pseudonyms when an erasure is asked for again). */
	name: { type: "string", max: 200 },
	email: { type: "string", max: 320 },
	/**
	 * Whether the person verified the address. Only a verified address is theirs alone
	 * (registration takes an address someone else verified): other people's rows are never
	 * matched by an unverified one.
	 */
	emailVerified: { type: "boolean" },
	/** The person's ledger accounts (others' records name them by account); all of them, over several calls when they are more. */
	accountIds: { type: "array", items: { type: "uuid" }, max: ERASURE_ACCOUNTS_PER_CALL_MAX },
});

export interface ErasureSubject {
	userId: string;
	name: string;
	email: string;
	emailVerified: boolean;
	accountIds: string[];
}

export interface Mention {
	text: string;
	replacement: string;
}

/** Shorter texts are not looked for: a one-letter name would match every such word. */
const MENTION_CHARS_MIN = 2;

/**
 * What names the person (the profile's name and address, and any `more` names a service's
 * rows kept), with the pseudonyms. With `parts`, each word of the name on its own too ("Mr
 * Erasmus", "gil-erasmus-receipt.txt"): for free text people wrote about the person, where a
 * word of the name names them; not for text about anyone else, where it may name a namesake.
 */
export function mentionsOf(s: Pick<ErasureSubject, "userId" | "name" | "email">, more: readonly string[] = [], opts: { parts?: boolean } = {}): Mention[] {
	const out: Mention[] = [];
	const seen = new Set<string>();
	const add = (text: string, replacement: string) => {
		const t = text.trim();
		const key = t.toLowerCase();
		if (t.length < MENTION_CHARS_MIN || key === replacement.toLowerCase() || seen.has(key)) return;
		seen.add(key);
		out.push({ text: t, replacement });
	};
	add(s.email, erasedAddress(s.userId));
	add(s.name, ERASED_NAME);
	for (const n of more) add(n, ERASED_NAME);
	if (opts.parts) for (const n of [s.name, ...more]) for (const w of n.match(/[\p{L}\p{N}]+/gu) ?? []) add(w, ERASED_NAME);
	// The longest first, so a name inside a longer mention is not replaced before it.
	return out.sort((a, b) => b.text.length - a.text.length);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * `text` with every whole-word mention replaced, in one pass (a pseudonym is never looked
 * through again), the longest mention first where several start at one place; cut to
 * `charsMax` when the pseudonyms made it longer.
 */
export function replaceMentions(text: string, mentions: readonly Mention[], charsMax = Number.POSITIVE_INFINITY): string {
	if (mentions.length === 0) return text;
	const longestFirst = [...mentions].sort((a, b) => b.text.length - a.text.length);
	const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${longestFirst.map(m => `(${escapeRegExp(m.text)})`).join("|")})(?![\\p{L}\\p{N}])`, "giu");
	const out = text.replace(re, (...args: unknown[]) => {
		// The groups follow the match: the one that took part names the mention.
		const at = args.slice(1, 1 + longestFirst.length).findIndex(g => g !== undefined);
		return longestFirst[at]?.replacement ?? String(args[0]);
	});
	return out.length > charsMax ? out.slice(0, charsMax) : out;
}

/** Whether `value` holds one of `refs` as a whole string anywhere (ids the person's records carry). */
export function refersTo(value: unknown, refs: ReadonlySet<string>): boolean {
	if (typeof value === "string") return refs.has(value);
	if (Array.isArray(value)) return value.some(v => refersTo(v, refs));
	if (value !== null && typeof value === "object") return Object.values(value).some(v => refersTo(v, refs));
	return false;
}

/**
 * The keys of logged events whose values are words people wrote or were called by: names,
 * labels, descriptions and notes, addresses. Only these are rewritten; codes, ids,
 * currencies, statuses, providers' reasons and everything else stay as they are, whatever
 * the person's name (a person named "USD" leaves `currency: "USD"` alone).
 */
export const FREE_TEXT_KEYS: ReadonlySet<string> = new Set([
	"name", "payeeName", "payerName", "requesterName", "counterpartyName", "holderName",
	"description", "note", "decisionNote", "nickname", "label", "accountLabel", "why", "fileName",
	"email", "payerEmail", "toEmail",
]);

/**
 * `value` with the mentions replaced in every string held under a free-text key
 * (FREE_TEXT_KEYS; an array's items count as its key's), and such a string that is exactly
 * one of `blank` (the person's own free text a service blanked in its rows) emptied. Keys
 * and every other value are left as they are.
 */
export function scrubValue(value: unknown, mentions: readonly Mention[], blank: ReadonlySet<string> = new Set(), key: string | null = null): unknown {
	if (typeof value === "string") {
		if (key === null || !FREE_TEXT_KEYS.has(key)) return value;
		return blank.has(value) ? "" : replaceMentions(value, mentions);
	}
	if (Array.isArray(value)) return value.map(v => scrubValue(v, mentions, blank, key));
	if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubValue(v, mentions, blank, k)]));
	return value;
}

/** One event's payload scrubbed if it refers to the person (by one of `refs`); null when nothing changed. */
export function scrubPayload(payload: Record<string, unknown>, refs: ReadonlySet<string>, mentions: readonly Mention[], blank: ReadonlySet<string> = new Set()): Record<string, unknown> | null {
	if (!refersTo(payload, refs)) return null;
	const out = scrubValue(payload, mentions, blank) as Record<string, unknown>;
	return JSON.stringify(out) === JSON.stringify(payload) ? null : out;
}

/** An outbox row's events with each payload that refers to the person scrubbed; null when none changed. */
export function scrubEvents<E extends { payload: Record<string, unknown> }>(events: readonly E[], refs: ReadonlySet<string>, mentions: readonly Mention[], blank: ReadonlySet<string> = new Set()): E[] | null {
	let changed = false;
	const out = events.map(e => {
		const p = scrubPayload(e.payload, refs, mentions, blank);
		if (!p) return e;
		changed = true;
		return { ...e, payload: p };
	});
	return changed ? out : null;
}
