/**
 * Saved payment methods (issue 18 item 6), merged into the /api/v1 route table by v1.ts: a
 * customer saves a card (for top-ups) or a bank account (for payouts) once, lists them,
 * and removes them. The card's number and code go to the provider through the methods
 * service and are kept nowhere; a top-up then names `paymentMethodId` instead.
 *
 * Each action adds the caller, so a foreign id answers 404 like a missing one.
 */
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { bankAccountRule, cardRule, labelRule, methods } from "../../contracts/methods.ts";
import { created, stripNulls, user, type Ctx } from "./caller.ts";

export const methodRouteParams = {
	add: paramsSchema({ $$strict: true, card: { ...cardRule, optional: true }, bankAccount: { ...bankAccountRule, optional: true }, label: labelRule }),
	list: paramsSchema({ $$strict: true }),
	byId: paramsSchema({ $$strict: true, id: { type: "uuid" } }),
};

type M<K extends keyof typeof methodRouteParams> = Infer<(typeof methodRouteParams)[K]>;

export const methodActions = {
	addPaymentMethod: {
		params: methodRouteParams.add,
		async handler(ctx: Ctx<M<"add">>) {
			const { created: isNew, ...m } = await call(ctx, methods.add, { ...stripNulls(ctx.params), userId: user(ctx).id });
			// The same card or account again answers the saved method (200), refreshed.
			if (isNew) created(ctx, `/api/v1/payment-methods/${m.id}`);
			return m;
		},
	},
	listPaymentMethods: {
		params: methodRouteParams.list,
		async handler(ctx: Ctx<M<"list">>) {
			return call(ctx, methods.list, { userId: user(ctx).id });
		},
	},
	getPaymentMethod: {
		params: methodRouteParams.byId,
		async handler(ctx: Ctx<M<"byId">>) {
			return call(ctx, methods.get, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	removePaymentMethod: {
		params: methodRouteParams.byId,
		async handler(ctx: Ctx<M<"byId">>) {
			return call(ctx, methods.remove, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
};

export const METHOD_ALIASES = {
	"POST /payment-methods": "api.addPaymentMethod",
	"GET /payment-methods": "api.listPaymentMethods",
	"GET /payment-methods/:id": "api.getPaymentMethod",
	"DELETE /payment-methods/:id": "api.removePaymentMethod",
};
