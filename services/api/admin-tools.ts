/**
 * Staff repair and reconciliation routes (issue 17 items 5 and 6), merged into the /api/v1
 * route table by v1.ts: dead letters of the durable consumers (list, re-send, discard with
 * a reason), stuck payments (re-query, compensate) and reconciliation breaks (list, propose
 * a resolution, approve it: four eyes). Each service records the action in the audit chain
 * with the staff id as its actor.
 */
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { payments } from "../../contracts/payments.ts";
import { CONSUMERS, deadLetters, reasonRule } from "../../contracts/repair.ts";
import { recon, BREAK_STATUSES, RESOLUTIONS } from "../../contracts/recon.ts";
import { PROVIDERS } from "../payments/providers.ts";
import { requireRole, stripNulls, type Ctx } from "./caller.ts";

const uuid = { type: "uuid" } as const;
const letterId = { type: "number", integer: true, min: 1, max: Number.MAX_SAFE_INTEGER, convert: true } as const;
const dayRule = { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ } as const;

export const adminToolParams = {
	deadLetters: paramsSchema({
		$$strict: true, consumer: { type: "enum", values: CONSUMERS, optional: true },
		limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true },
		beforeId: { ...letterId, optional: true },
	}),
	deadLetter: paramsSchema({ $$strict: true, consumer: { type: "enum", values: CONSUMERS }, id: letterId }),
	deadLettersAll: paramsSchema({ $$strict: true, consumer: { type: "enum", values: CONSUMERS }, limit: { type: "number", integer: true, min: 1, max: 500, convert: true, optional: true } }),
	deadLetterDiscard: paramsSchema({ $$strict: true, consumer: { type: "enum", values: CONSUMERS }, id: letterId, reason: reasonRule }),
	byId: paramsSchema({ $$strict: true, id: uuid }),
	compensate: paramsSchema({ $$strict: true, id: uuid, reason: reasonRule }),
	stuck: paramsSchema({ $$strict: true, olderThanS: { type: "number", integer: true, min: 0, max: 30 * 86_400, convert: true, optional: true } }),
	breaks: paramsSchema({
		$$strict: true, status: { type: "enum", values: BREAK_STATUSES, optional: true }, provider: { type: "enum", values: PROVIDERS, optional: true },
		day: { ...dayRule, optional: true }, limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true },
		afterId: { ...letterId, optional: true },
	}),
	breakId: paramsSchema({ $$strict: true, id: letterId }),
	propose: paramsSchema({ $$strict: true, id: letterId, resolution: { type: "enum", values: RESOLUTIONS }, note: reasonRule }),
	reconRun: paramsSchema({ $$strict: true, provider: { type: "enum", values: PROVIDERS }, day: dayRule }),
};

type V<K extends keyof typeof adminToolParams> = Infer<(typeof adminToolParams)[K]>;

export const adminToolActions = {
	/** Every consumer's dead letters (or one consumer's), newest first; a consumer not running in this cluster shows as unavailable. */
	adminDeadLetters: {
		params: adminToolParams.deadLetters,
		async handler(ctx: Ctx<V<"deadLetters">>) {
			requireRole(ctx, ["admin"]);
			const { consumer, ...page } = stripNulls(ctx.params);
			const names = consumer ? [consumer] : [...CONSUMERS];
			const consumers = await Promise.all(names.map(async name => {
				try {
					return { available: true, ...(await call(ctx, deadLetters[name].list, page)) };
				} catch (err) {
					if (consumer) throw err;
					return { consumer: name, available: false, items: [], nextBeforeId: null };
				}
			}));
			return { consumers };
		},
	},
	adminDeadLetter: {
		params: adminToolParams.deadLetter,
		async handler(ctx: Ctx<V<"deadLetter">>) {
			requireRole(ctx, ["admin"]);
			return call(ctx, deadLetters[ctx.params.consumer].get, { id: ctx.params.id });
		},
	},
	adminRedeliverDeadLetter: {
		params: adminToolParams.deadLetter,
		async handler(ctx: Ctx<V<"deadLetter">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, deadLetters[ctx.params.consumer].redeliver, { id: ctx.params.id, actor: staff.id });
		},
	},
	adminRedeliverDeadLetters: {
		params: adminToolParams.deadLettersAll,
		async handler(ctx: Ctx<V<"deadLettersAll">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, deadLetters[ctx.params.consumer].redeliver, { ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}), actor: staff.id });
		},
	},
	adminDiscardDeadLetter: {
		params: adminToolParams.deadLetterDiscard,
		async handler(ctx: Ctx<V<"deadLetterDiscard">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, deadLetters[ctx.params.consumer].discard, { id: ctx.params.id, reason: ctx.params.reason, actor: staff.id });
		},
	},
	/** Top-ups, payouts and reviews not final for longer than olderThanS (default 300), oldest first, at most 100. */
	adminStuckPayments: {
		params: adminToolParams.stuck,
		async handler(ctx: Ctx<V<"stuck">>) {
			requireRole(ctx, ["support", "admin"]);
			return call(ctx, payments.stuck, { olderThanS: ctx.params.olderThanS ?? 300 });
		},
	},
	adminRequeryPayment: {
		params: adminToolParams.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			const staff = requireRole(ctx, ["support", "admin"]);
			return call(ctx, payments.repair.requery, { id: ctx.params.id, actor: staff.id, staffId: staff.id });
		},
	},
	adminCompensatePayment: {
		params: adminToolParams.compensate,
		async handler(ctx: Ctx<V<"compensate">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, payments.repair.compensate, { id: ctx.params.id, reason: ctx.params.reason, actor: staff.id, staffId: staff.id });
		},
	},
	adminReconBreaks: {
		params: adminToolParams.breaks,
		async handler(ctx: Ctx<V<"breaks">>) {
			requireRole(ctx, ["admin", "support", "auditor"]);
			return call(ctx, recon.breaks.list, stripNulls(ctx.params));
		},
	},
	adminReconPropose: {
		params: adminToolParams.propose,
		async handler(ctx: Ctx<V<"propose">>) {
			const staff = requireRole(ctx, ["admin", "support"]);
			return call(ctx, recon.breaks.propose, { ...ctx.params, staffId: staff.id });
		},
	},
	adminReconApprove: {
		params: adminToolParams.breakId,
		async handler(ctx: Ctx<V<"breakId">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, recon.breaks.approve, { id: ctx.params.id, staffId: staff.id });
		},
	},
	adminReconRun: {
		params: adminToolParams.reconRun,
		async handler(ctx: Ctx<V<"reconRun">>) {
			requireRole(ctx, ["admin"]);
			return call(ctx, recon.run, ctx.params, { timeout: 120_000 });
		},
	},
};

export const ADMIN_TOOL_ALIASES = {
	"GET /admin/dead-letters": "api.adminDeadLetters",
	"GET /admin/dead-letters/:consumer/:id": "api.adminDeadLetter",
	"POST /admin/dead-letters/:consumer/redeliver": "api.adminRedeliverDeadLetters",
	"POST /admin/dead-letters/:consumer/:id/redeliver": "api.adminRedeliverDeadLetter",
	"POST /admin/dead-letters/:consumer/:id/discard": "api.adminDiscardDeadLetter",
	"GET /admin/payments/stuck": "api.adminStuckPayments",
	"POST /admin/payments/:id/requery": "api.adminRequeryPayment",
	"POST /admin/payments/:id/compensate": "api.adminCompensatePayment",
	"GET /admin/recon/breaks": "api.adminReconBreaks",
	"POST /admin/recon/breaks/:id/propose": "api.adminReconPropose",
	"POST /admin/recon/breaks/:id/approve": "api.adminReconApprove",
	"POST /admin/recon/runs": "api.adminReconRun",
};
