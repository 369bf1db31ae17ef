/** The schedules service's actions: standing orders (scheduled and recurring payments), saved payees, and its durable event log. */
import { action, returns } from "../lib/contract.ts";
import { BY_OWNER, BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { eventsReadParams, type outboxLag, type readEvents } from "../mixins/event-log.ts";
import { CURRENCY_CODES } from "../config/currencies.ts";
import { FREQUENCIES, type OccurrenceStatus, type ScheduleStatus, type Frequency } from "../services/schedules/rules.ts";

export const SCHEDULES_PAGE_MAX = 100;
export const PAYEES_PAGE_MAX = 100;
export const DESCRIPTION_CHARS_MAX = 200;

const uuid = { type: "uuid" } as const;
const date = { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ } as const;
const amount = { type: "number", integer: true, positive: true, finite: true, max: Number.MAX_SAFE_INTEGER, convert: false } as const;
const page = (max: number) => ({ limit: { type: "number", integer: true, min: 1, max, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }) as const;

export const payeeAddParams = paramsSchema({
	$$strict: true, ownerId: uuid, name: { type: "string", min: 1, max: 100, pattern: /^[^\u0000-\u001f\u007f]+$/ },
	accountId: { type: "uuid", optional: true }, email: { type: "email", max: 254, optional: true },
});
export const payeeListParams = paramsSchema({ $$strict: true, ownerId: uuid, ...page(PAYEES_PAGE_MAX) });
export const byIdParams = paramsSchema({ $$strict: true, ownerId: uuid, id: uuid });
export const createParams = paramsSchema({
	$$strict: true, ownerId: uuid, idempotencyKey: { type: "string", min: 1, max: 200 },
	fromAccountId: uuid,
	/** The recipient: an account, a saved payee, or a verified e-mail (exactly one). */
	toAccountId: { type: "uuid", optional: true }, payeeId: { type: "uuid", optional: true }, toEmail: { type: "email", max: 254, optional: true },
	amount, currency: { type: "enum", values: CURRENCY_CODES },
	description: { type: "string", max: DESCRIPTION_CHARS_MAX, optional: true },
	frequency: { type: "enum", values: FREQUENCIES },
	startDate: date, endDate: { ...date, optional: true },
	dayOfMonth: { type: "number", integer: true, min: 1, max: 31, convert: false, optional: true },
});
export const listParams = paramsSchema({ $$strict: true, ownerId: uuid, ...page(SCHEDULES_PAGE_MAX) });
/** Changes for the occurrences not yet due. */
export const updateParams = paramsSchema({
	$$strict: true, ownerId: uuid, id: uuid, amount: { ...amount, optional: true }, description: { type: "string", max: DESCRIPTION_CHARS_MAX, optional: true },
	endDate: { ...date, optional: true }, noEnd: { type: "boolean", optional: true }, dayOfMonth: { type: "number", integer: true, min: 1, max: 31, convert: false, optional: true },
});
/** Erasure: other customers' orders to a person's accounts (their own left out), by id after `afterId`, a page at a time. */
export const ORDERS_TO_PAGE_MAX = 500;
export const ordersToParams = paramsSchema({
	$$strict: true, userId: uuid, accountIds: { type: "array", items: uuid, max: 200 }, afterId: { ...uuid, optional: true },
	limit: { type: "number", integer: true, min: 1, max: ORDERS_TO_PAGE_MAX, convert: false, optional: true },
});
/** `now` (ISO time) runs as of that time instead of the node's clock: for tests and operators, never exposed over HTTP. */
export const runDueParams = paramsSchema({ $$strict: true, now: { type: "string", max: 40, optional: true } });

export interface PayeeView {
	id: string;
	name: string;
	accountId: string | null;
	email: string | null;
	createdAt: string;
}

export interface ScheduleView {
	id: string;
	fromAccountId: string;
	toAccountId: string;
	payeeName: string;
	amount: number;
	currency: string;
	description: string;
	frequency: Frequency;
	dayOfMonth: number | null;
	startDate: string;
	endDate: string | null;
	status: ScheduleStatus;
	nextDue: string | null;
	createdAt: string;
	occurrences?: { dueDate: string; status: OccurrenceStatus; attempt: number; amount: number; paymentId: string | null; transferId: string | null; failureCode: string | null; nextAttemptAt: string | null }[];
}

export const schedules = {
	payees: {
		add: action("schedules.payees.add", payeeAddParams, returns<PayeeView>(), BY_OWNER),
		list: action("schedules.payees.list", payeeListParams, returns<{ items: PayeeView[]; nextCursor: string | null }>()),
		remove: action("schedules.payees.remove", byIdParams, returns<{ removed: true }>(), BY_OWNER),
	},
	create: action("schedules.create", createParams, returns<ScheduleView>(), BY_OWNER),
	get: action("schedules.get", byIdParams, returns<ScheduleView>()),
	list: action("schedules.list", listParams, returns<{ items: ScheduleView[]; nextCursor: string | null }>()),
	update: action("schedules.update", updateParams, returns<ScheduleView>(), BY_OWNER),
	pause: action("schedules.pause", byIdParams, returns<ScheduleView>(), BY_OWNER),
	resume: action("schedules.resume", byIdParams, returns<ScheduleView>(), BY_OWNER),
	cancel: action("schedules.cancel", byIdParams, returns<ScheduleView>(), BY_OWNER),
	/** Erasure on request: the ids of other customers' standing orders paying the person's accounts (their notices name the person). */
	ordersTo: action("schedules.ordersTo", ordersToParams, returns<{ ids: string[] }>()),
	/** Erasure on request: the person's orders cancelled and blanked, their payees deleted, others' orders and payees naming them pseudonymised. */
	erase: action("schedules.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	/** Writes the occurrences due and pays the ones whose attempt is due; each node's timer runs it. */
	runDue: action("schedules.runDue", runDueParams, returns<{ materialised: number; attempted: number; paid: number; refused: number }>()),
	events: {
		read: action("schedules.events.read", eventsReadParams, returns<Awaited<ReturnType<typeof readEvents>>>()),
	},
	outboxLag: action("schedules.outboxLag", paramsSchema({ $$strict: true }), returns<Awaited<ReturnType<typeof outboxLag>>>()),
};
