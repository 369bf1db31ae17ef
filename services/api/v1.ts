/**
 * The /api/v1 contract: the gateway's own actions, one per route, each with a strict
 * params schema for the public body. They add what the caller is (ctx.meta.user), check
 * ownership (a foreign id answers 404) and roles, and call the domain services.
 */
import type { Context, ServiceBroker } from "moleculer";
import { Errors } from "moleculer";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call, callDetached, type ParamsOf, type ResultOf } from "../../lib/contract.ts";
import { KeyedBatchers, MicroBatcher } from "../../lib/batcher.ts";
import { toClientError, unavailable } from "../../lib/errors.ts";
import { routeOf } from "../../lib/routing.ts";
import { authenticatedUser, batchAssertionMeta, signerOf, takesBatchAssertion, type CallerIdentity } from "../../lib/caller-identity.ts";
import { audit } from "../../contracts/audit.ts";
import { auth } from "../../contracts/auth.ts";
import { fx } from "../../contracts/fx.ts";
import { ledger } from "../../contracts/ledger.ts";
import { notifications } from "../../contracts/notifications.ts";
import { payments } from "../../contracts/payments.ts";
import { reports, statementPageRules } from "../../contracts/reports.ts";
import { users } from "../../contracts/users.ts";
import { webhooks } from "../../contracts/webhooks.ts";
import { amountRule, currencyRule, priceVersionRule } from "../ledger/params.ts";
import { PROVIDERS } from "../payments/providers.ts";
import { isTier, limitsFor } from "../users/limits.ts";
import { toSafeNumber } from "../../lib/money.ts";
import type { CurrencyCode } from "../../config/currencies.ts";
import { isCurrencyCode } from "../../lib/amount.ts";
import { WEBHOOK_EVENTS } from "../webhooks/routing.ts";
import { identityActions, IDENTITY_ALIASES, IDENTITY_PUBLIC_ALIASES } from "./identity.ts";
import type { SessionUser } from "../auth/auth.service.ts";
import { created, idempotencyKey, requireRole, stripNulls, user, type Ctx } from "./caller.ts";
import { walletActions, WALLET_ALIASES } from "./wallet.ts";
import { adminToolActions, ADMIN_TOOL_ALIASES } from "./admin-tools.ts";
import { afterPaymentActions, AFTER_PAYMENT_ALIASES } from "./after-payment.ts";
import { billActions, BILL_ALIASES } from "./bills.ts";
import { methodActions, METHOD_ALIASES } from "./methods.ts";

export type { GatewayMeta } from "./caller.ts";

const uuid = { type: "uuid" } as const;

type PaymentParams = ParamsOf<typeof ledger.payments.p2p>;
type PaymentOutcome = ResultOf<typeof ledger.payments.p2pMany>["items"][number];

const PAYMENT_BATCH_CONCURRENCY_MAX = 2;
const PAYMENT_BATCH_WAIT_MS = 1;
const PAYMENT_QUEUE_LENGTH_MAX = 20_000;
/** Ledger nodes a gateway keeps a batcher for at most. */
const PAYMENT_NODES_MAX = 64;
/**
 * A payment waiting for its batch, with the request it came from (the batch's call continues
 * the first one's trace) and the payer that request authenticated: the batch's assertion
 * names each item's payer (lib/caller-identity.ts).
 */
type Queued = { ctx: Ctx<unknown>; params: PaymentParams; who: CallerIdentity | null };
const paymentBatchers = new WeakMap<ServiceBroker, KeyedBatchers<Queued, PaymentOutcome>>();

function batchersOf(broker: ServiceBroker): KeyedBatchers<Queued, PaymentOutcome> {
	let b = paymentBatchers.get(broker);
	if (!b) {
		const overloaded = () => new Errors.MoleculerRetryableError("the gateway's payment queue is full, retry later", 503, "GATEWAY_OVERLOADED");
		b = new KeyedBatchers<Queued, PaymentOutcome>({
			keysMax: PAYMENT_NODES_MAX, overloaded,
			make: nodeID => new MicroBatcher<Queued, PaymentOutcome>({
				batchSizeMax: ledger.payments.p2pMany.params.items.max, concurrencyMax: PAYMENT_BATCH_CONCURRENCY_MAX, waitMs: PAYMENT_BATCH_WAIT_MS,
				queueLengthMax: PAYMENT_QUEUE_LENGTH_MAX, sizeOf: () => 1, overloaded,
				run: async queued => {
					const items = queued.map(q => q.params);
					const first = queued[0];
					// A call of its own, not a child of one request: no caller's meta travels with the
					// others' payments. It continues the first request's trace: its id, and its span as
					// the parent (with the tracer on), so the ledger's span hangs under that request's.
					const span = first?.ctx.span;
					const trace = span ? { parentSpan: { id: span.id, traceID: span.traceID, sampled: span.sampled } } : first ? { requestID: first.ctx.requestID ?? undefined } : {};
					// Each payment is bound to its own payer: one signature for the call naming each item's
					// payer, or one per item for a ledger node of an earlier release.
					const signed = batchAssertionMeta(broker, ledger.payments.p2pMany.name, queued.map(q => q.who), { items }, takesBatchAssertion(broker, "ledger", nodeID));
					const out = await callDetached(broker, ledger.payments.p2pMany, { items }, { nodeID, ...trace, ...(signed ? { meta: signed } : {}) });
					if (out.items.length !== items.length) throw new Error(`ledger.payments.p2pMany answered ${out.items.length} of ${items.length} items`);
					return out.items;
				},
			}),
		});
		paymentBatchers.set(broker, b);
	}
	return b;
}

/**
 * The payer a gathered payment is signed for: the user this gateway authenticated for the
 * request. A gateway that signs refuses a payment without one here (401), alone, instead of
 * sending its batch unsigned, which the ledger would refuse whole.
 */
function payerOf(ctx: Ctx<unknown>): CallerIdentity | null {
	const who = authenticatedUser(ctx.meta);
	if (!who && signerOf(ctx.broker)) throw new Errors.MoleculerClientError("the payment has no authenticated payer", 401, "UNAUTHORIZED");
	return who;
}

/**
 * Sends a payment to the ledger node that owns its source account, through the guarded
 * ledger.payments.p2pMany (the caller's signed identity for each payment). To a node in
 * another process, the payments of concurrent requests for that node leave together, one
 * call per batch (one round trip over the bus for many requests, and batches the ledger can
 * fill); each keeps its own key, assertion and answer. In this process it is a plain local
 * call of one item.
 */
async function sendPayment(ctx: Ctx<unknown>, params: PaymentParams): Promise<ResultOf<typeof ledger.payments.p2p>> {
	const route = routeOf(ctx.broker, ledger.payments.p2pMany.name, { items: [params] });
	const out = !route || route.local
		? (await call(ctx, ledger.payments.p2pMany, { items: [params] })).items[0]
		: await batchersOf(ctx.broker).submit(route.nodeID, {
			ctx, params, who: payerOf(ctx),
		});
	if (!out) throw unavailable("LEDGER_UNAVAILABLE", "no result for the payment");
	if (out.ok) return out.payment;
	if ("unavailable" in out) throw unavailable(out.unavailable.code, out.unavailable.message);
	throw toClientError(out.error);
}

/** A staff action's reason, when one was given. */
const reasonOf = (p: { reason?: string | null }) => (p.reason ? { reason: p.reason } : {});

/** Four eyes: staff change other people's tier and roles, never their own. */
function notSelf(staff: SessionUser, userId: string, what: string): void {
	if (staff.id === userId) throw new Errors.MoleculerClientError(`nobody changes their own ${what}`, 403, "FORBIDDEN");
}

function transferView(t: Record<string, unknown>): Record<string, unknown> {
	return {
		id: t["id"], status: t["status"], amount: t["amount"], currency: t["currency"], fromAccountId: t["fromAccountId"],
		toAccountId: t["toAccountId"], description: t["description"], kind: t["kind"], createdAt: t["createdAt"],
	};
}

/** The currency of the tiers' limits (config `limits.baseCurrency`), from the gateway's settings (api.service.ts). */
function limitsCurrencyOf(ctx: Ctx<unknown>): CurrencyCode {
	const settings: object = ctx.service?.settings ?? {};
	const c = "limitsBaseCurrency" in settings ? settings.limitsBaseCurrency : undefined;
	if (typeof c !== "string" || !isCurrencyCode(c)) throw new Error("the gateway has no limitsBaseCurrency setting");
	return c;
}

/**
 * The caller as GET and PATCH /me answer: the profile, the token's roles, and the tier's
 * limits in minor units of the currency every payment's amount is converted to for them.
 */
function meView(p: ResultOf<typeof users.get>, u: SessionUser, limitsCurrency: CurrencyCode) {
	const l = isTier(p.kycTier) ? limitsFor(p.kycTier, limitsCurrency) : { perTransferMinor: 0n, perDayMinor: 0n };
	return {
		id: p.id, email: p.email, name: p.name, roles: u.roles, kycTier: p.kycTier, emailVerified: p.emailVerified, preferences: p.preferences,
		limits: { currency: limitsCurrency, perTransferMinor: toSafeNumber(l.perTransferMinor), perDayMinor: toSafeNumber(l.perDayMinor) },
	};
}

export const v1Params = {
	register: paramsSchema({ $$strict: true, email: { type: "string", max: 1_000 }, password: { type: "string", max: 1_024 }, name: { type: "string", max: 1_000 } }),
	login: paramsSchema({ $$strict: true, email: { type: "string", max: 1_000 }, password: { type: "string", max: 1_024 }, otp: { type: "string", max: 16, optional: true } }),
	refresh: paramsSchema({ $$strict: true, refreshToken: { type: "string", max: 1_000 } }),
	otp: paramsSchema({ $$strict: true, otp: { type: "string", max: 16 } }),
	mfaSetup: paramsSchema({ $$strict: true, password: { type: "string", max: 1_024 }, otp: { type: "string", max: 16, optional: true } }),
	empty: paramsSchema({ $$strict: true }),
	updateMe: paramsSchema({
		$$strict: true,
		name: { type: "string", min: 1, max: 200, optional: true },
		preferences: { type: "object", optional: true, strict: true, props: {
			language: { type: "string", max: 10, optional: true }, notifyEmail: { type: "boolean", optional: true },
			notifySms: { type: "boolean", optional: true }, notifyInApp: { type: "boolean", optional: true },
			phone: { type: "string", max: 16, optional: true },
		} },
	}),
	openAccount: paramsSchema({ $$strict: true, currency: currencyRule, label: { type: "string", max: 200, optional: true } }),
	byId: paramsSchema({ $$strict: true, id: uuid }),
	/** A staff action on one thing, with why (it goes into the audit log with who). */
	staffById: paramsSchema({ $$strict: true, id: uuid, reason: { type: "string", max: 500, optional: true } }),
	history: paramsSchema({
		$$strict: true, id: uuid,
		limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true },
		cursor: { type: "string", max: 18, pattern: /^[0-9]+$/, optional: true },
	}),
	transfer: paramsSchema({
		$$strict: true, fromAccountId: uuid, toAccountId: uuid, amount: amountRule, currency: currencyRule,
		description: { type: "string", max: 500, optional: true },
		/** The price list of the quote the payer saw (GET /fees/quote); absent: today's. */
		priceVersion: { type: "number", integer: true, min: 1, max: 2_147_483_647, optional: true, convert: false },
	}),
	/** `paymentMethodId`: a saved card (GET /payment-methods) the top-up takes the money from. `priceVersion`: the quote's (GET /fees/quote?type=topup); absent: today's. */
	topup: paramsSchema({
		$$strict: true, accountId: uuid, amount: amountRule, currency: currencyRule, provider: { type: "enum", values: PROVIDERS },
		paymentMethodId: { type: "uuid", optional: true }, priceVersion: priceVersionRule,
	}),
	/** A destination, or `paymentMethodId`: a saved bank account (one of the two). `priceVersion`: the quote's (GET /fees/quote?type=payout). */
	payout: paramsSchema({
		$$strict: true, accountId: uuid, amount: amountRule, currency: currencyRule, provider: { type: "enum", values: PROVIDERS },
		destination: { type: "string", min: 3, max: 200, pattern: /^[\x20-\x7e]+$/, optional: true }, paymentMethodId: { type: "uuid", optional: true },
		priceVersion: priceVersionRule,
	}),
	p2p: paramsSchema({
		$$strict: true, accountId: uuid, amount: amountRule, currency: currencyRule,
		toAccountId: { type: "uuid", optional: true }, toEmail: { type: "email", max: 254, optional: true }, description: { type: "string", max: 500, optional: true },
	}),
	payments: paramsSchema({ $$strict: true, limit: { type: "number", integer: true, min: 1, max: 100, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }),
	notifications: paramsSchema({
		$$strict: true, limit: { type: "number", integer: true, min: 1, max: 100, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true },
		unreadOnly: { type: "boolean", convert: true, optional: true },
	}),
	webhookCreate: paramsSchema({ $$strict: true, url: { type: "string", min: 1, max: 2_000, pattern: /^https?:\/\/[\x21-\x7e]+$/ }, events: { type: "array", min: 1, max: 3, unique: true, items: { type: "enum", values: WEBHOOK_EVENTS }, optional: true } }),
	webhookDeliveries: paramsSchema({ $$strict: true, id: uuid, limit: { type: "number", integer: true, min: 1, max: 100, convert: true, optional: true }, cursor: { type: "string", max: 80, optional: true } }),
	audit: paramsSchema({ $$strict: true, afterSeq: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: true, optional: true }, limit: { type: "number", integer: true, min: 1, max: 500, convert: true, optional: true } }),
	statement: paramsSchema({
		$$strict: true, accountId: uuid, from: { type: "date", convert: true, optional: true }, to: { type: "date", convert: true, optional: true },
		format: { type: "enum", values: ["json", "csv"], optional: true }, ...statementPageRules,
	}),
	summary: paramsSchema({ $$strict: true, accountId: uuid, year: { type: "number", integer: true, min: 2000, max: 2100, convert: true, optional: true } }),
	daily: paramsSchema({ $$strict: true, from: { type: "date", convert: true, optional: true }, to: { type: "date", convert: true, optional: true } }),
	fxQuote: paramsSchema({ $$strict: true, from: currencyRule, to: currencyRule, amount: amountRule }),
	fxConvert: paramsSchema({ $$strict: true, quoteId: uuid, fromAccountId: uuid, toAccountId: uuid }),
	adminAccounts: paramsSchema({ $$strict: true, ownerId: uuid, limit: { type: "number", integer: true, min: 1, max: 200, convert: true, optional: true } }),
	setTier: paramsSchema({ $$strict: true, id: uuid, tier: { type: "number", integer: true, min: 0, max: 3, convert: false }, reason: { type: "string", max: 500, optional: true } }),
	setRoles: paramsSchema({ $$strict: true, id: uuid, roles: { type: "array", min: 1, max: 4, items: { type: "enum", values: ["user", "admin", "support", "auditor"] as const } }, reason: { type: "string", max: 500, optional: true } }),
};

type V<K extends keyof typeof v1Params> = Infer<(typeof v1Params)[K]>;

/** Gateway actions; `aliases` below maps the routes onto them. */
export const v1Actions = {
	...identityActions,
	notifications: {
		params: v1Params.notifications,
		async handler(ctx: Ctx<V<"notifications">>) {
			return call(ctx, notifications.list, { ...stripNulls(ctx.params), userId: user(ctx).id });
		},
	},
	notificationRead: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, notifications.markRead, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	notificationsReadAll: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, notifications.markAllRead, { userId: user(ctx).id });
		},
	},
	webhookCreate: {
		params: v1Params.webhookCreate,
		async handler(ctx: Ctx<V<"webhookCreate">>) {
			const out = await call(ctx, webhooks.register, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
			created(ctx, `/api/v1/webhooks/${out.id}`);
			return out;
		},
	},
	webhookList: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, webhooks.list, { ownerId: user(ctx).id });
		},
	},
	webhookDeliveries: {
		params: v1Params.webhookDeliveries,
		async handler(ctx: Ctx<V<"webhookDeliveries">>) {
			return call(ctx, webhooks.deliveries, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	webhookDisable: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, webhooks.disable, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	webhookRotate: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, webhooks.rotate, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	auditList: {
		params: v1Params.audit,
		async handler(ctx: Ctx<V<"audit">>) {
			requireRole(ctx, ["auditor", "admin"]);
			return call(ctx, audit.list, stripNulls(ctx.params));
		},
	},
	auditVerify: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			requireRole(ctx, ["auditor", "admin"]);
			return call(ctx, audit.verify, {});
		},
	},
	statement: {
		params: v1Params.statement,
		async handler(ctx: Ctx<V<"statement">>) {
			return call(ctx, reports.statement, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	summary: {
		params: v1Params.summary,
		async handler(ctx: Ctx<V<"summary">>) {
			return call(ctx, reports.summary, { ...stripNulls(ctx.params), ownerId: user(ctx).id });
		},
	},
	adminDaily: {
		params: v1Params.daily,
		async handler(ctx: Ctx<V<"daily">>) {
			requireRole(ctx, ["admin", "support", "auditor"]);
			return call(ctx, reports.daily, stripNulls(ctx.params));
		},
	},
	register: {
		params: v1Params.register,
		async handler(ctx: Ctx<V<"register">>) {
			const out = await call(ctx, auth.register, ctx.params);
			created(ctx, "/api/v1/me");
			return out;
		},
	},
	login: {
		params: v1Params.login,
		async handler(ctx: Ctx<V<"login">>) {
			return call(ctx, auth.login, ctx.params.otp == null ? { email: ctx.params.email, password: ctx.params.password } : ctx.params);
		},
	},
	refresh: {
		params: v1Params.refresh,
		async handler(ctx: Ctx<V<"refresh">>) {
			return call(ctx, auth.refresh, ctx.params);
		},
	},
	logout: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			user(ctx);
			await call(ctx, auth.logout, {});
			ctx.meta.$statusCode = 204;
			return null;
		},
	},
	mfaSetup: {
		params: v1Params.mfaSetup,
		async handler(ctx: Ctx<V<"mfaSetup">>) {
			user(ctx);
			return call(ctx, auth.mfa.setup, stripNulls(ctx.params));
		},
	},
	mfaVerify: {
		params: v1Params.otp,
		async handler(ctx: Ctx<V<"otp">>) {
			user(ctx);
			return call(ctx, auth.mfa.verify, ctx.params);
		},
	},
	me: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			const u = user(ctx);
			return meView(await call(ctx, users.get, { id: u.id }), u, limitsCurrencyOf(ctx));
		},
	},
	updateMe: {
		params: v1Params.updateMe,
		async handler(ctx: Ctx<V<"updateMe">>) {
			const u = user(ctx);
			return meView(await call(ctx, users.update, { id: u.id, ...ctx.params }), u, limitsCurrencyOf(ctx));
		},
	},
	openAccount: {
		params: v1Params.openAccount,
		async handler(ctx: Ctx<V<"openAccount">>) {
			const u = user(ctx);
			const a = await call(ctx, ledger.accounts.open, { ownerId: u.id, currency: ctx.params.currency, label: ctx.params.label ?? "" });
			created(ctx, `/api/v1/accounts/${a.id}`);
			return a;
		},
	},
	listAccounts: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, ledger.accounts.list, { ownerId: user(ctx).id });
		},
	},
	getAccount: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, ledger.accounts.get, { id: ctx.params.id, ownerId: user(ctx).id });
		},
	},
	accountTransactions: {
		params: v1Params.history,
		async handler(ctx: Ctx<V<"history">>) {
			const p = ctx.params;
			return call(ctx, ledger.accounts.history, {
				accountId: p.id, ownerId: user(ctx).id, ...(p.limit != null ? { limit: p.limit } : {}), ...(p.cursor != null ? { cursor: p.cursor } : {}),
			});
		},
	},
	createTransfer: {
		params: v1Params.transfer,
		async handler(ctx: Ctx<V<"transfer">>) {
			const u = user(ctx);
			const p = ctx.params;
			// A transfer is a P2P payment, decided and written in one commit by the ledger node
			// that owns the source account: the owner check (a foreign source answers
			// ACCOUNT_NOT_FOUND), the ledger's refusals, the tier's limits, then the fraud rules.
			// Refusals arrive as errors; a payment held for review answers 202 with its payment id.
			const pay = await sendPayment(ctx, {
				idempotencyKey: idempotencyKey(ctx, u.id), ownerId: u.id, fromAccountId: p.fromAccountId, toAccountId: p.toAccountId, amount: p.amount, currency: p.currency,
				...(p.description != null ? { description: p.description } : {}), ...(p.priceVersion != null ? { priceVersion: p.priceVersion } : {}),
			});
			const view = {
				id: pay.transferId, paymentId: pay.id, status: pay.status, amount: pay.amount, currency: pay.currency,
				fromAccountId: p.fromAccountId, toAccountId: p.toAccountId, description: p.description ?? "", createdAt: pay.createdAt,
				...("fee" in pay ? { fee: pay.fee } : {}),
			};
			if (pay.status === "completed" && pay.transferId) {
				created(ctx, `/api/v1/transfers/${pay.transferId}`);
			} else {
				ctx.meta.$statusCode = 202;
				ctx.meta.$location = `/api/v1/payments/${pay.id}`;
			}
			return view;
		},
	},
	topup: {
		params: v1Params.topup,
		async handler(ctx: Ctx<V<"topup">>) {
			const u = user(ctx);
			const p = await call(ctx, payments.topup, { ...ctx.params, userId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/payments/${p.id}`);
			return p;
		},
	},
	payout: {
		params: v1Params.payout,
		async handler(ctx: Ctx<V<"payout">>) {
			const u = user(ctx);
			const p = await call(ctx, payments.payout, { ...ctx.params, userId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/payments/${p.id}`);
			return p;
		},
	},
	p2p: {
		params: v1Params.p2p,
		async handler(ctx: Ctx<V<"p2p">>) {
			const u = user(ctx);
			const p = await call(ctx, payments.p2p, { ...ctx.params, userId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			created(ctx, `/api/v1/payments/${p.id}`);
			return p;
		},
	},
	cancelPayment: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, payments.cancel, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	getPayment: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return call(ctx, payments.get, { id: ctx.params.id, userId: user(ctx).id });
		},
	},
	fxRates: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			user(ctx);
			return call(ctx, fx.rates, {});
		},
	},
	fxQuote: {
		params: v1Params.fxQuote,
		async handler(ctx: Ctx<V<"fxQuote">>) {
			const q = await call(ctx, fx.quote, { ...ctx.params, userId: user(ctx).id });
			created(ctx, `/api/v1/fx/quotes/${q.id}`);
			return q;
		},
	},
	fxConvert: {
		params: v1Params.fxConvert,
		async handler(ctx: Ctx<V<"fxConvert">>) {
			const u = user(ctx);
			// The key claims the quote: the same request again replays the conversion, another is QUOTE_USED.
			const out = await call(ctx, fx.convert, { ...ctx.params, userId: u.id, idempotencyKey: idempotencyKey(ctx, u.id) });
			ctx.meta.$statusCode = 201;
			return out;
		},
	},
	getTransfer: {
		params: v1Params.byId,
		async handler(ctx: Ctx<V<"byId">>) {
			return transferView(await call(ctx, ledger.transfers.get, { id: ctx.params.id, ownerId: user(ctx).id }));
		},
	},
	adminAccounts: {
		params: v1Params.adminAccounts,
		async handler(ctx: Ctx<V<"adminAccounts">>) {
			requireRole(ctx, ["admin", "support"]);
			return call(ctx, ledger.accounts.list, { ownerId: ctx.params.ownerId, ...(ctx.params.limit != null ? { limit: ctx.params.limit } : {}) });
		},
	},
	adminFrozen: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			requireRole(ctx, ["admin", "support"]);
			return call(ctx, ledger.accounts.frozen, {});
		},
	},
	listPayments: {
		params: v1Params.payments,
		async handler(ctx: Ctx<V<"payments">>) {
			return call(ctx, payments.list, { ...stripNulls(ctx.params), userId: user(ctx).id });
		},
	},
	adminReviews: {
		params: v1Params.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			requireRole(ctx, ["support", "admin"]);
			return call(ctx, payments.review.list, {});
		},
	},
	// Staff actions carry who (the token's user) and why (an optional reason) to the service, which records both in the audit log.
	adminApprovePayment: {
		params: v1Params.staffById,
		async handler(ctx: Ctx<V<"staffById">>) {
			const staff = requireRole(ctx, ["support", "admin"]);
			return call(ctx, payments.review.approve, { id: ctx.params.id, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	adminDeclinePayment: {
		params: v1Params.staffById,
		async handler(ctx: Ctx<V<"staffById">>) {
			const staff = requireRole(ctx, ["support", "admin"]);
			return call(ctx, payments.review.decline, { id: ctx.params.id, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	adminFreeze: {
		params: v1Params.staffById,
		async handler(ctx: Ctx<V<"staffById">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, ledger.accounts.freeze, { id: ctx.params.id, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	adminUnfreeze: {
		params: v1Params.staffById,
		async handler(ctx: Ctx<V<"staffById">>) {
			const staff = requireRole(ctx, ["admin"]);
			return call(ctx, ledger.accounts.unfreeze, { id: ctx.params.id, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	adminSetTier: {
		params: v1Params.setTier,
		async handler(ctx: Ctx<V<"setTier">>) {
			const staff = requireRole(ctx, ["admin", "support"]);
			notSelf(staff, ctx.params.id, "tier");
			return call(ctx, users.setTier, { id: ctx.params.id, tier: ctx.params.tier, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	adminSetRoles: {
		params: v1Params.setRoles,
		async handler(ctx: Ctx<V<"setRoles">>) {
			const staff = requireRole(ctx, ["admin"]);
			notSelf(staff, ctx.params.id, "roles");
			return call(ctx, auth.setRoles, { userId: ctx.params.id, roles: ctx.params.roles, staffId: staff.id, ...reasonOf(ctx.params) });
		},
	},
	...walletActions,
	...adminToolActions,
	...afterPaymentActions,
	...billActions,
	...methodActions,
};

/** Mounted at /api/v1/auth: moleculer-web keeps one alias table per route path, so the two routes need distinct paths. */
export const PUBLIC_ALIASES = {
	...IDENTITY_PUBLIC_ALIASES,
	"POST /register": "api.register",
	"POST /login": "api.login",
	"POST /refresh": "api.refresh",
};

export const PRIVATE_ALIASES = {
	...IDENTITY_ALIASES,
	"POST /auth/logout": "api.logout",
	"POST /auth/mfa/setup": "api.mfaSetup",
	"POST /auth/mfa/verify": "api.mfaVerify",
	"GET /me": "api.me",
	"PATCH /me": "api.updateMe",
	"POST /accounts": "api.openAccount",
	"GET /accounts": "api.listAccounts",
	"GET /accounts/:id": "api.getAccount",
	"GET /accounts/:id/transactions": "api.accountTransactions",
	"POST /transfers": "api.createTransfer",
	"GET /transfers/:id": "api.getTransfer",
	"POST /payments/topup": "api.topup",
	"POST /payments/payout": "api.payout",
	"POST /payments/p2p": "api.p2p",
	"POST /payments/:id/cancel": "api.cancelPayment",
	"GET /payments/:id": "api.getPayment",
	"GET /fx/rates": "api.fxRates",
	"POST /fx/quote": "api.fxQuote",
	"POST /fx/convert": "api.fxConvert",
	"GET /admin/accounts": "api.adminAccounts",
	"GET /admin/reviews": "api.adminReviews",
	"GET /admin/accounts/frozen": "api.adminFrozen",
	"GET /payments": "api.listPayments",
	"POST /admin/payments/:id/approve": "api.adminApprovePayment",
	"POST /admin/payments/:id/decline": "api.adminDeclinePayment",
	"POST /admin/accounts/:id/freeze": "api.adminFreeze",
	"POST /admin/accounts/:id/unfreeze": "api.adminUnfreeze",
	"POST /admin/users/:id/tier": "api.adminSetTier",
	"POST /admin/users/:id/roles": "api.adminSetRoles",
	"GET /admin/reports/daily": "api.adminDaily",
	"GET /notifications": "api.notifications",
	"POST /notifications/read-all": "api.notificationsReadAll",
	"POST /notifications/:id/read": "api.notificationRead",
	"POST /webhooks": "api.webhookCreate",
	"GET /webhooks": "api.webhookList",
	"GET /webhooks/:id/deliveries": "api.webhookDeliveries",
	"POST /webhooks/:id/disable": "api.webhookDisable",
	"POST /webhooks/:id/rotate": "api.webhookRotate",
	"GET /audit": "api.auditList",
	"GET /audit/verify": "api.auditVerify",
	"GET /reports/statement": "api.statement",
	"GET /reports/summary": "api.summary",
	...WALLET_ALIASES,
	...ADMIN_TOOL_ALIASES,
	...AFTER_PAYMENT_ALIASES,
	...BILL_ALIASES,
	...METHOD_ALIASES,
};

/** The providers' callback route under /api/v1/providers (signed by HMAC, no bearer token). */
export const PROVIDER_CALLBACK_ROUTE = "POST /:provider/callbacks";
