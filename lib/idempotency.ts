/**
 * The one request hash kept beside an idempotency key, for every service. It is taken over
 * a canonical form of the request: object keys sorted at every depth, bigints as decimal
 * text, `undefined` fields dropped. So an honest retry whose JSON lists the same fields in
 * another order hashes the same, and a retry with any field changed does not.
 */
import { createHash } from "node:crypto";

function canonical(value: unknown): unknown {
	if (typeof value === "bigint") return value.toString();
	if (Array.isArray(value)) return value.map(canonical);
	if (value instanceof Date) return value.toISOString();
	if (value !== null && typeof value === "object") {
		// Without a prototype: a field named __proto__ is a field like any other, hashed, never
		// the object's prototype (which JSON.stringify would leave out).
		const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
		for (const k of Object.keys(value).sort()) {
			const v = (value as Record<string, unknown>)[k];
			if (v !== undefined) out[k] = canonical(v);
		}
		return out;
	}
	return value;
}

/** SHA-256 (hex) of the request's canonical JSON, tagged with what kind of request it is. */
export function requestHash(kind: string, fields: object): string {
	return createHash("sha256").update(kind).update("\n").update(JSON.stringify(canonical(fields))).digest("hex");
}

/**
 * Refusals that hold only while an account is in a state an operator undoes: a frozen account
 * is unfrozen. The ledger stores them under their key like any other answer (a replay never
 * turns a refusal into a success), so a saga whose own ledger step is refused so does not fail
 * and is not stuck replaying it: it waits while the account is not active, then asks again
 * under the step's next attempt key (attemptKey), moved on only once the refusal is stored
 * (docs/ledger.md, Idempotency).
 */
export const STATE_REFUSALS: ReadonlySet<string> = new Set(["ACCOUNT_FROZEN"]);

/** A saga step's key in an attempt: attempt 0 keeps the key the step always had, later ones are numbered (`payment:<id>:post-2`). */
export function attemptKey(key: string, attempt: number): string {
	return attempt === 0 ? key : `${key}-${attempt}`;
}
