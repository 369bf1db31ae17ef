/** The requests service's actions: payment requests between users, and their durable event log. */
import { action, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { eventsReadParams, type outboxLag, type readEvents } from "../mixins/event-log.ts";
import { CURRENCY_CODES } from "../config/currencies.ts";
import { EXPIRY_S_MAX, EXPIRY_S_MIN, REQUEST_STATUSES, type requestView } from "../services/requests/rules.ts";

/** Most requests a page lists. */
export const REQUESTS_PAGE_MAX = 100;
export const NOTE_CHARS_MAX = 280;

const uuid = { type: "uuid" } as const;
const key = { type: "string", min: 1, max: 200 } as const;

export const createParams = paramsSchema({
	$$strict: true,
	requesterId: uuid,
	idempotencyKey: key,
	/** The requester's account the money goes to; its currency is the request's. */
	toAccountId: uuid,
	amount: { type: "number", integer: true, positive: true, finite: true, max: Number.MAX_SAFE_INTEGER, convert: false },
	currency: { type: "enum", values: CURRENCY_CODES },
	/** Whom to ask: a user id, or a verified e-mail address (one of the two). */
	payerId: { type: "uuid", optional: true },
	payerEmail: { type: "email", max: 254, optional: true },
	note: { type: "string", max: NOTE_CHARS_MAX, optional: true },
	expiresInS: { type: "number", integer: true, min: EXPIRY_S_MIN, max: EXPIRY_S_MAX, convert: false, optional: true },
});
export const byIdParams = paramsSchema({ $$strict: true, userId: uuid, id: uuid });
export const acceptParams = paramsSchema({ $$strict: true, userId: uuid, id: uuid, fromAccountId: uuid });
export const listParams = paramsSchema({
	$$strict: true, userId: uuid, role: { type: "enum", values: ["incoming", "outgoing"] as const },
	status: { type: "enum", values: REQUEST_STATUSES, optional: true },
	limit: { type: "number", integer: true, min: 1, max: REQUESTS_PAGE_MAX, convert: true, optional: true },
	cursor: { type: "string", max: 80, optional: true },
});
export const sweepParams = paramsSchema({ $$strict: true });

export type RequestView = ReturnType<typeof requestView>;

export const requests = {
	create: action("requests.create", createParams, returns<RequestView>()),
	get: action("requests.get", byIdParams, returns<RequestView>()),
	list: action("requests.list", listParams, returns<{ items: RequestView[]; nextCursor: string | null }>()),
	/** Pays the request through the P2P path from the payer's account; idempotent by the request (one payment per attempt). */
	accept: action("requests.accept", acceptParams, returns<RequestView>(), BY_USER),
	decline: action("requests.decline", byIdParams, returns<RequestView>()),
	cancel: action("requests.cancel", byIdParams, returns<RequestView>()),
	/** Erasure on request: the person's name in every request replaced by the pseudonym, their pending requests cancelled or declined. */
	erase: action("requests.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	/** Expires pending requests past their deadline and resumes payments left half-way; run by each node's timer. */
	sweep: action("requests.sweep", sweepParams, returns<{ expired: number; resumed: number }>()),
	events: {
		read: action("requests.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	outboxLag: action("requests.outboxLag", sweepParams, returns<Awaited<ReturnType<typeof outboxLag>>>()),
};
