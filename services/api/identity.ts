/**
 * The gateway's identity routes (docs/identity.md): address verification, password change
 * and reset, the session list. Thin: the private routes need a valid access token (the
 * gateway's authenticate) and auth acts on the caller's session from ctx.meta.user; the
 * public ones (forgot, reset) carry no token. Spread into v1.ts's actions and alias tables.
 */
import type { Context } from "moleculer";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { call } from "../../lib/contract.ts";
import { auth } from "../../contracts/auth.ts";
import { users } from "../../contracts/users.ts";
import { ledger, type AccountView, type EntryView } from "../../contracts/ledger.ts";
import { payments } from "../../contracts/payments.ts";
import { notifications } from "../../contracts/notifications.ts";
import { webhooks } from "../../contracts/webhooks.ts";
import { methods } from "../../contracts/methods.ts";
import { bills } from "../../contracts/bills.ts";
import { schedules } from "../../contracts/schedules.ts";
import { requests } from "../../contracts/requests.ts";
import { fraud } from "../../contracts/fraud.ts";
import { reports } from "../../contracts/reports.ts";
import { toClientError } from "../../lib/errors.ts";
import { ERASURE_ACCOUNTS_PER_CALL_MAX } from "../../lib/erasure.ts";
import { SCOPES, type Scope } from "../auth/tokens.ts";
import type { GatewayMeta } from "./v1.ts";
import { requireRole, user } from "./caller.ts";
import { DOCUMENT_KINDS, DOCUMENT_TYPES } from "../users/kyc.ts";

type Ctx<P> = Context<P, GatewayMeta>;

const password = { type: "string", max: 1_024 } as const;
const otp = { type: "string", max: 16 } as const;

export const identityParams = {
	empty: paramsSchema({ $$strict: true }),
	emailVerify: paramsSchema({ $$strict: true, code: { type: "string", max: 16 } }),
	passwordChange: paramsSchema({ $$strict: true, password, newPassword: password, otp: { ...otp, optional: true } }),
	passwordForgot: paramsSchema({ $$strict: true, email: { type: "string", max: 1_000 } }),
	passwordReset: paramsSchema({ $$strict: true, token: { type: "string", max: 1_000 }, newPassword: password }),
	session: paramsSchema({ $$strict: true, id: { type: "uuid" } }),
	erase: paramsSchema({ $$strict: true, password, otp: { ...otp, optional: true } }),
	kycUpload: paramsSchema({
		$$strict: true, kind: { type: "enum", values: DOCUMENT_KINDS }, requestedTier: { type: "number", integer: true, min: 2, max: 3, convert: false },
		contentType: { type: "enum", values: DOCUMENT_TYPES }, content: { type: "string", min: 4, max: 28_000_000 },
	}),
	document: paramsSchema({ $$strict: true, id: { type: "uuid" } }),
	documentDecision: paramsSchema({ $$strict: true, id: { type: "uuid" }, note: { type: "string", max: 500, optional: true } }),
	clientCreate: paramsSchema({
		$$strict: true, name: { type: "string", min: 1, max: 100 },
		scopes: { type: "array", min: 1, max: SCOPES.length, unique: true, items: { type: "enum", values: SCOPES } },
	}),
	client: paramsSchema({ $$strict: true, id: { type: "uuid" } }),
	clientToken: paramsSchema({
		$$strict: true, grant_type: { type: "enum", values: ["client_credentials"] as const }, client_id: { type: "string", max: 64 }, client_secret: { type: "string", max: 200 },
		scope: { type: "string", max: 200, optional: true },
	}),
};

type V<K extends keyof typeof identityParams> = Infer<(typeof identityParams)[K]>;

/** What one export holds at most per list (each list says whether it was cut). */
const EXPORT_ITEMS_MAX = 10_000;
const EXPORT_ACCOUNTS_MAX = 200;
/** Accounts an erasure reads per page (the ledger's page); it goes through all of them. */
const ERASURE_ACCOUNTS_PAGE = 200;
/** Accounts an erasure closes (or renames) at once. */
const ERASURE_CALLS_AT_ONCE = 20;
/** Exports per user per rate-limit window (RATE_LIMIT_WINDOW_S): each reads a lot. */
const EXPORTS_PER_WINDOW_MAX = 2;

/** Pages through a cursor-paged list until its end or `max` items. */
async function allPages<T>(page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>, max: number): Promise<{ items: T[]; truncated: boolean }> {
	const items: T[] = [];
	let cursor: string | undefined;
	for (;;) {
		const out = await page(cursor);
		items.push(...out.items);
		if (out.nextCursor === null || out.items.length === 0) return { items: items.slice(0, max), truncated: items.length > max };
		if (items.length >= max) return { items: items.slice(0, max), truncated: true };
		cursor = out.nextCursor;
	}
}

export const identityActions = {
	emailSendCode: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			const out = await call(ctx, auth.email.sendCode, {});
			ctx.meta.$statusCode = 202;
			return out;
		},
	},
	emailVerify: {
		params: identityParams.emailVerify,
		async handler(ctx: Ctx<V<"emailVerify">>) {
			return call(ctx, auth.email.verify, ctx.params);
		},
	},
	passwordChange: {
		params: identityParams.passwordChange,
		async handler(ctx: Ctx<V<"passwordChange">>) {
			const { otp: code, ...rest } = ctx.params;
			return call(ctx, auth.password.change, code == null ? rest : { ...rest, otp: code });
		},
	},
	passwordForgot: {
		params: identityParams.passwordForgot,
		async handler(ctx: Ctx<V<"passwordForgot">>) {
			const out = await call(ctx, auth.password.forgot, ctx.params);
			ctx.meta.$statusCode = 202;
			return out;
		},
	},
	passwordReset: {
		params: identityParams.passwordReset,
		async handler(ctx: Ctx<V<"passwordReset">>) {
			return call(ctx, auth.password.reset, ctx.params);
		},
	},
	sessionList: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, auth.sessions.list, {});
		},
	},
	sessionRevoke: {
		params: identityParams.session,
		async handler(ctx: Ctx<V<"session">>) {
			await call(ctx, auth.sessions.revoke, ctx.params);
			ctx.meta.$statusCode = 204;
			return null;
		},
	},
	/**
	 * The caller's personal data as JSON (GDPR art. 15 and 20): profile, sessions, clients
	 * (without secrets), accounts with their entries, payments, notifications and webhook
	 * endpoints (without secrets). No password hash, MFA secret or token of any kind.
	 */
	meExport: {
		params: identityParams.empty,
		async handler(this: { limit(key: string, max: number): Promise<void> }, ctx: Ctx<V<"empty">>) {
			const id = user(ctx).id;
			await this.limit(`export:${id}`, EXPORTS_PER_WINDOW_MAX);
			const [profile, sessions, clients, accountList, hooks] = await Promise.all([
				call(ctx, users.get, { id }), call(ctx, auth.sessions.list, {}), call(ctx, auth.clients.list, {}),
				call(ctx, ledger.accounts.list, { ownerId: id, limit: EXPORT_ACCOUNTS_MAX }), call(ctx, webhooks.list, { ownerId: id }),
			]);
			let budget = EXPORT_ITEMS_MAX;
			const accounts = [];
			for (const a of accountList.items) {
				const entries = await allPages<EntryView>(cursor => call(ctx, ledger.accounts.history, { accountId: a.id, ownerId: id, limit: 200, ...(cursor ? { cursor } : {}) }), Math.max(budget, 0));
				budget -= entries.items.length;
				accounts.push({ ...a, entries: entries.items, entriesTruncated: entries.truncated });
			}
			const paid = await allPages(cursor => call(ctx, payments.list, { userId: id, limit: 100, ...(cursor ? { cursor } : {}) }), EXPORT_ITEMS_MAX);
			const told = await allPages(cursor => call(ctx, notifications.list, { userId: id, limit: 100, ...(cursor ? { cursor } : {}) }), EXPORT_ITEMS_MAX);
			ctx.meta.$responseHeaders = { "Content-Disposition": "attachment; filename=\"paymesh-export.json\"", "Cache-Control": "no-store" };
			return {
				exportedAt: new Date().toISOString(),
				profile, sessions: sessions.items, clients: clients.items, accounts, accountsTruncated: accountList.items.length >= EXPORT_ACCOUNTS_MAX,
				payments: paid.items, paymentsTruncated: paid.truncated, notifications: told.items, notificationsTruncated: told.truncated, webhooks: hooks.items,
			};
		},
	},
	/**
	 * Erasure on request (docs/identity.md, "Your data"): with the password again (and a code
	 * with MFA on), and only with no top-up, payout, refund or bill payment in flight
	 * (ACCOUNT_HAS_PENDING), every account of the user, however many, is closed (each must be
	 * empty: ACCOUNT_NOT_EMPTY, ACCOUNT_HAS_PENDING otherwise) and loses its label. Then each
	 * service erases its own data about the person (lib/erasure.ts: the same description to
	 * each, with the name and address the profile has, 200 accounts per call): saved methods,
	 * bills, standing orders and payees, requests, payments, fraud's counterparties, the
	 * transactions read model, webhooks, notifications (other people's rows found by ids only);
	 * then the profile and last the credentials, and every session and client ends. The
	 * ledger's append-only history and the audit chain are not touched (they stay
	 * verifiable). Each step can be done again, so a failed erasure is retried.
	 */
	meErase: {
		params: identityParams.erase,
		async handler(ctx: Ctx<V<"erase">>) {
			const id = user(ctx).id;
			const { otp: code, ...rest } = ctx.params;
			await call(ctx, auth.confirm, code == null ? rest : { ...rest, otp: code });
			// Money that may still come back to an account (a provider's or a biller's answer) waits: a closed account refuses it.
			const [paid, billed] = await Promise.all([call(ctx, payments.inFlight, { userId: id }), call(ctx, bills.inFlight, { userId: id })]);
			if (paid.count + billed.count > 0) {
				throw toClientError({ code: "ACCOUNT_HAS_PENDING", message: "a top-up, payout, refund or bill payment of yours is still in flight; ask again when it is done" });
			}
			// Every account, however many, a page at a time: one left open could still be paid.
			const accounts: AccountView[] = [];
			for (let after: string | undefined; ;) {
				const page = await call(ctx, ledger.accounts.list, { ownerId: id, limit: ERASURE_ACCOUNTS_PAGE, ...(after ? { after } : {}) });
				accounts.push(...page.items);
				after = page.items[page.items.length - 1]?.id;
				if (page.items.length < ERASURE_ACCOUNTS_PAGE || after === undefined) break;
			}
			// Closing a closed account answers it again; a few at a time (the ledger batches them).
			for (let i = 0; i < accounts.length; i += ERASURE_CALLS_AT_ONCE) {
				await Promise.all(accounts.slice(i, i + ERASURE_CALLS_AT_ONCE).map(a => call(ctx, ledger.accounts.close, { id: a.id, ownerId: id })));
			}
			// A label is the person's words; the rename is the ledger's own (the account's history is not touched).
			const labelled = accounts.filter(a => a.label !== "");
			for (let i = 0; i < labelled.length; i += ERASURE_CALLS_AT_ONCE) {
				await Promise.all(labelled.slice(i, i + ERASURE_CALLS_AT_ONCE).map(a => call(ctx, ledger.accounts.rename, { id: a.id, ownerId: id, label: "" })));
			}
			const profile = await call(ctx, users.get, { id });
			// Each service hears of every account, a slice per call (each erase can run again: a later slice finds the rest done).
			const slices: string[][] = [];
			for (let i = 0; i === 0 || i < accounts.length; i += ERASURE_ACCOUNTS_PER_CALL_MAX) slices.push(accounts.slice(i, i + ERASURE_ACCOUNTS_PER_CALL_MAX).map(a => a.id));
			const subjects = slices.map(accountIds => ({ userId: id, name: profile.name, email: profile.email, emailVerified: profile.emailVerified, accountIds }));
			for (const subject of subjects) await call(ctx, methods.erase, subject);
			for (const subject of subjects) await call(ctx, bills.erase, subject);
			for (const subject of subjects) await call(ctx, schedules.erase, subject);
			for (const subject of subjects) await call(ctx, requests.erase, subject);
			for (const subject of subjects) await call(ctx, payments.erase, subject);
			for (const subject of subjects) await call(ctx, fraud.erase, subject);
			for (const subject of subjects) await call(ctx, reports.erase, subject);
			for (const subject of subjects) await call(ctx, webhooks.erase, subject);
			// After the services whose events notifications reads, so what they tell others names the pseudonym.
			for (const subject of subjects) await call(ctx, notifications.erase, subject);
			await call(ctx, users.erase, { id });
			// Last: until here the password still works, so a failed erasure can be asked for again.
			await call(ctx, auth.erase, {});
			ctx.meta.$statusCode = 204;
			return null;
		},
	},
	kycUpload: {
		params: identityParams.kycUpload,
		async handler(ctx: Ctx<V<"kycUpload">>) {
			const id = user(ctx).id;
			const out = await call(ctx, users.kyc.upload, { ...ctx.params, userId: id });
			ctx.meta.$statusCode = 201;
			return out;
		},
	},
	kycList: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			const id = user(ctx).id;
			return call(ctx, users.kyc.list, { userId: id });
		},
	},
	adminKycPending: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			requireRole(ctx, ["support", "admin"]);
			return call(ctx, users.kyc.pending, {});
		},
	},
	adminKycContent: {
		params: identityParams.document,
		async handler(ctx: Ctx<V<"document">>) {
			requireRole(ctx, ["support", "admin"]);
			ctx.meta.$responseHeaders = { "Cache-Control": "no-store" };
			return call(ctx, users.kyc.content, ctx.params);
		},
	},
	adminKycApprove: {
		params: identityParams.documentDecision,
		async handler(ctx: Ctx<V<"documentDecision">>) {
			const staff = requireRole(ctx, ["support", "admin"]);
			return call(ctx, users.kyc.decide, { id: ctx.params.id, approve: true, staffId: staff.id, ...(ctx.params.note != null ? { note: ctx.params.note, reason: ctx.params.note } : {}) });
		},
	},
	adminKycReject: {
		params: identityParams.documentDecision,
		async handler(ctx: Ctx<V<"documentDecision">>) {
			const staff = requireRole(ctx, ["support", "admin"]);
			return call(ctx, users.kyc.decide, { id: ctx.params.id, approve: false, staffId: staff.id, ...(ctx.params.note != null ? { note: ctx.params.note, reason: ctx.params.note } : {}) });
		},
	},
	clientCreate: {
		params: identityParams.clientCreate,
		async handler(ctx: Ctx<V<"clientCreate">>) {
			const out = await call(ctx, auth.clients.create, ctx.params);
			ctx.meta.$statusCode = 201;
			return out;
		},
	},
	clientList: {
		params: identityParams.empty,
		async handler(ctx: Ctx<V<"empty">>) {
			return call(ctx, auth.clients.list, {});
		},
	},
	clientRotate: {
		params: identityParams.client,
		async handler(ctx: Ctx<V<"client">>) {
			return call(ctx, auth.clients.rotate, ctx.params);
		},
	},
	clientRevoke: {
		params: identityParams.client,
		async handler(ctx: Ctx<V<"client">>) {
			await call(ctx, auth.clients.revoke, ctx.params);
			ctx.meta.$statusCode = 204;
			return null;
		},
	},
	clientToken: {
		params: identityParams.clientToken,
		async handler(ctx: Ctx<V<"clientToken">>) {
			const { scope, ...rest } = ctx.params;
			const out = await call(ctx, auth.clients.token, scope == null ? rest : { ...rest, scope });
			// RFC 6749 5.1: token answers are not cached.
			ctx.meta.$responseHeaders = { "Cache-Control": "no-store", Pragma: "no-cache" };
			return out;
		},
	},
};

/**
 * The one scope each route needs from an OAuth2 client's token (docs/identity.md); a
 * client's token on any other route (the caller's credentials, sessions, clients,
 * webhooks, staff routes…) is refused with 403. People's tokens are not limited by scopes;
 * every route checks ownership and roles the same for both.
 */
export const CLIENT_SCOPES_BY_ACTION: Readonly<Record<string, Scope>> = {
	"api.listAccounts": "accounts:read",
	"api.getAccount": "accounts:read",
	"api.accountTransactions": "transactions:read",
	"api.getTransfer": "transactions:read",
	"api.statement": "transactions:read",
	"api.summary": "transactions:read",
	"api.listPayments": "payments:read",
	"api.getPayment": "payments:read",
	"api.createTransfer": "payments:write",
	"api.topup": "payments:write",
	"api.payout": "payments:write",
	"api.p2p": "payments:write",
	"api.cancelPayment": "payments:write",
};

/** Under /api/v1/auth, without a token. */
export const IDENTITY_PUBLIC_ALIASES = {
	"POST /password/forgot": "api.passwordForgot",
	"POST /password/reset": "api.passwordReset",
	"POST /token": "api.clientToken",
};

/** Under /api/v1, with a token. */
export const IDENTITY_ALIASES = {
	"POST /auth/email/code": "api.emailSendCode",
	"POST /auth/email/verify": "api.emailVerify",
	"POST /auth/password": "api.passwordChange",
	"GET /auth/sessions": "api.sessionList",
	"DELETE /auth/sessions/:id": "api.sessionRevoke",
	"POST /auth/clients": "api.clientCreate",
	"GET /auth/clients": "api.clientList",
	"POST /auth/clients/:id/rotate": "api.clientRotate",
	"DELETE /auth/clients/:id": "api.clientRevoke",
	"GET /me/export": "api.meExport",
	"POST /me/erase": "api.meErase",
	"GET /kyc/documents": "api.kycList",
	"GET /admin/kyc/documents": "api.adminKycPending",
	"GET /admin/kyc/documents/:id/content": "api.adminKycContent",
	"POST /admin/kyc/documents/:id/approve": "api.adminKycApprove",
	"POST /admin/kyc/documents/:id/reject": "api.adminKycReject",
};

/**
 * Under /api/v1/kyc, with a token, on a route of its own: its JSON body may hold a document
 * (base64 of up to KYC_DOCUMENT_BYTES_MAX bytes), larger than HTTP_BODY_LIMIT_BYTES allows
 * every other route.
 */
export const KYC_UPLOAD_ALIASES = {
	"POST /documents": "api.kycUpload",
};

/** The upload route's body limit: the base64 of the largest document, and room for the other fields. */
export function kycBodyLimitBytes(documentBytesMax: number): number {
	return Math.ceil(documentBytesMax / 3) * 4 + 4_096;
}
