/**
 * Which merchant owners an event concerns, and the body a delivery carries (pure).
 */
export const WEBHOOK_EVENTS = ["transfer.completed", "payment.status_changed", "payment.refunded", "balance.updated", "hold.created", "hold.posted", "hold.voided", "hold.expired"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The users an event belongs to: both sides of a transfer or hold, an account's owner, a payment's user. */
export function ownersOf(p: Record<string, unknown>): string[] {
	const ids = [p["fromOwnerId"], p["toOwnerId"], p["ownerId"], p["userId"]].filter((v): v is string => typeof v === "string");
	return [...new Set(ids)];
}

/**
 * The delivery's JSON. A payment's risk decision (score and reasons, in `risk`) stays
 * inside: told to the payer's endpoint, the reasons would teach a fraudster the rules.
 */
export function deliveryBody(eventId: string, event: string, payload: Record<string, unknown>, createdAt: Date): string {
	const { risk: _risk, ...data } = payload;
	return JSON.stringify({ id: eventId, type: event, createdAt: createdAt.toISOString(), data });
}

/** Exponential backoff: the wait after the given failed attempt (1-based), capped. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
	return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), maxMs);
}
