/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json. The tests check it
 * with an OpenAPI validator and that its paths are exactly the gateway's routes.
 */
import { CURRENCY_CODES } from "../../config/currencies.ts";
import { WEBHOOK_EVENTS } from "../webhooks/routing.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref("Error")) });

const ERRORS = {
	"400": errorResponse("Invalid input (VALIDATION_ERROR, MALFORMED_JSON, IDEMPOTENCY_KEY_REQUIRED, WEAK_PASSWORD)"),
	"401": errorResponse("No or bad token (UNAUTHORIZED), or bad credentials"),
	"403": errorResponse("Not allowed for your role (FORBIDDEN)"),
	"404": errorResponse("Not found, or not yours"),
	"409": errorResponse("Conflict (IDEMPOTENCY_MISMATCH, EMAIL_TAKEN)"),
	"413": errorResponse("Body too large (PAYLOAD_TOO_LARGE)"),
	"422": errorResponse("Business refusal (INSUFFICIENT_FUNDS, ACCOUNT_FROZEN, CURRENCY_MISMATCH, LIMIT_EXCEEDED, SAME_ACCOUNT)"),
	"429": { ...errorResponse("Rate limited (RATE_LIMITED, TOO_MANY_ATTEMPTS); see Retry-After"), headers: { "Retry-After": { schema: { type: "integer" } } } },
	"503": errorResponse("A dependency is unavailable; retry later"),
};

const bearer = [{ bearerAuth: [] }];
const q = (name: string, schema: unknown, required = false) => ({ name, in: "query", ...(required ? { required: true } : {}), schema });
const dateQ = { type: "string", format: "date-time", description: "ISO 8601 date or date-time" };
const idParam = { name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } };
const providerParam = { name: "provider", in: "path", required: true, schema: { type: "string", enum: ["mobile_money", "bank", "card"] } };
const signatureHeader = { name: "Paymesh-Signature", in: "header", required: true, schema: { type: "string", maxLength: 512 } };
const idempotencyHeader = { name: "Idempotency-Key", in: "header", required: true, schema: { type: "string", minLength: 1, maxLength: 128 } };

function op(summary: string, opts: { body?: string; ok: string; okSchema?: unknown; secured?: boolean; params?: unknown[] }) {
	return {
		summary,
		...(opts.secured === false ? { security: [] } : { security: bearer }),
		...(opts.params ? { parameters: opts.params } : {}),
		...(opts.body ? { requestBody: { required: true, content: json(ref(opts.body)) } } : {}),
		responses: { [opts.ok]: opts.okSchema === null ? { description: "Done" } : { description: "OK", content: json(opts.okSchema ?? { type: "object" }) }, ...ERRORS },
	};
}

export function openApiDocument(): Record<string, unknown> {
	const money = { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: "Integer minor units of the currency" };
	return {
		openapi: "3.1.0",
		info: { title: "Paymesh API", version: "1.0.0", description: "Wallets, transfers and a double-entry ledger. Amounts are integer minor units." },
		servers: [{ url: "/" }],
		components: {
			securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
			schemas: {
				Error: {
					type: "object", required: ["error"],
					properties: { error: { type: "object", required: ["code", "message"], properties: { code: { type: "string", pattern: "^[A-Z_]+$" }, message: { type: "string" }, details: {} } } },
				},
				Currency: { type: "string", enum: CURRENCY_CODES },
				WebhookCreate: {
					type: "object", additionalProperties: false, required: ["url"],
					properties: { url: { type: "string", format: "uri", maxLength: 2000 }, events: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string", enum: [...WEBHOOK_EVENTS] } } },
				},
				ProviderCallback: {
					type: "object", additionalProperties: false, required: ["eventId", "paymentId", "ref", "status", "sequence"],
					properties: {
						eventId: { type: "string", maxLength: 200 }, paymentId: { type: "string", format: "uuid" }, ref: { type: "string", maxLength: 200 },
						status: { type: "string", enum: ["processing", "succeeded", "failed"] }, sequence: { type: "integer", minimum: 1, maximum: 1000 }, reason: { type: "string", maxLength: 500 },
					},
				},
				Register: { type: "object", additionalProperties: false, required: ["email", "password", "name"], properties: { email: { type: "string", format: "email" }, password: { type: "string", minLength: 10 }, name: { type: "string", maxLength: 200 } } },
				Login: { type: "object", additionalProperties: false, required: ["email", "password"], properties: { email: { type: "string" }, password: { type: "string" }, otp: { type: "string", pattern: "^[0-9]{6}$" } } },
				Refresh: { type: "object", additionalProperties: false, required: ["refreshToken"], properties: { refreshToken: { type: "string" } } },
				Otp: { type: "object", additionalProperties: false, required: ["otp"], properties: { otp: { type: "string", pattern: "^[0-9]{6}$" } } },
				Session: { type: "object", required: ["user", "accessToken", "refreshToken"], properties: { user: ref("User"), accessToken: { type: "string" }, refreshToken: { type: "string" } } },
				TokenPair: { type: "object", required: ["accessToken", "refreshToken"], properties: { accessToken: { type: "string" }, refreshToken: { type: "string" } } },
				User: { type: "object", required: ["id", "email", "name", "roles", "kycTier"], properties: { id: { type: "string" }, email: { type: "string" }, name: { type: "string" }, roles: { type: "array", items: { type: "string", enum: ["user", "admin", "support", "auditor"] } }, kycTier: { type: "integer" } } },
				UpdateMe: { type: "object", additionalProperties: false, properties: { name: { type: "string" }, preferences: { type: "object", additionalProperties: false, properties: { language: { type: "string" }, notifyEmail: { type: "boolean" }, notifySms: { type: "boolean" }, notifyInApp: { type: "boolean" }, phone: { type: "string", pattern: "^\\+[1-9][0-9]{6,14}$", description: "E.164, for SMS notifications" } } } } },
				OpenAccount: { type: "object", additionalProperties: false, required: ["currency"], properties: { currency: ref("Currency"), label: { type: "string", maxLength: 200 } } },
				Account: {
					type: "object", required: ["id", "currency", "label", "status", "balance", "version"],
					properties: {
						id: { type: "string", format: "uuid" }, currency: ref("Currency"), label: { type: "string" }, status: { type: "string", enum: ["active", "frozen"] },
						balance: { type: "object", required: ["posted", "pending", "available"], properties: { posted: { type: "integer" }, pending: { type: "integer" }, available: { type: "integer" } } },
						version: { type: "integer" },
					},
				},
				AccountList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Account") } } },
				Entry: {
					type: "object", required: ["id", "transferId", "amount", "balanceAfter", "counterparty", "description", "createdAt"],
					properties: { id: { type: "string" }, transferId: { type: "string" }, amount: { type: "integer", description: "Signed: negative for money out" }, balanceAfter: { type: "integer" }, counterparty: { type: "string" }, description: { type: "string" }, createdAt: { type: "string", format: "date-time" } },
				},
				EntryPage: { type: "object", required: ["items", "nextCursor"], properties: { items: { type: "array", items: ref("Entry") }, nextCursor: { type: ["string", "null"] } } },
				CreateTransfer: {
					type: "object", additionalProperties: false, required: ["fromAccountId", "toAccountId", "amount", "currency"],
					properties: { fromAccountId: { type: "string", format: "uuid" }, toAccountId: { type: "string", format: "uuid" }, amount: money, currency: ref("Currency"), description: { type: "string", maxLength: 500 } },
				},
				Transfer: {
					type: "object", required: ["id", "status", "amount", "currency", "fromAccountId", "toAccountId", "createdAt"],
					properties: { id: { type: ["string", "null"], format: "uuid" }, paymentId: { type: "string", format: "uuid", description: "The P2P payment that made it (POST answers only)" }, status: { type: "string" }, amount: { type: "integer" }, currency: ref("Currency"), fromAccountId: { type: "string" }, toAccountId: { type: "string" }, description: { type: "string" }, createdAt: { type: "string", format: "date-time" } },
				},
				Topup: {
					type: "object", additionalProperties: false, required: ["accountId", "amount", "currency", "provider"],
					properties: { accountId: { type: "string", format: "uuid" }, amount: money, currency: ref("Currency"), provider: { type: "string", enum: ["mobile_money", "bank", "card"] } },
				},
				Payout: {
					type: "object", additionalProperties: false, required: ["accountId", "amount", "currency", "provider", "destination"],
					properties: { accountId: { type: "string", format: "uuid" }, amount: money, currency: ref("Currency"), provider: { type: "string", enum: ["mobile_money", "bank", "card"] }, destination: { type: "string", minLength: 3, maxLength: 200 } },
				},
				P2p: {
					type: "object", additionalProperties: false, required: ["accountId", "amount", "currency"],
					properties: { accountId: { type: "string", format: "uuid" }, amount: money, currency: ref("Currency"), toAccountId: { type: "string", format: "uuid" }, toEmail: { type: "string", format: "email" } },
				},
				Payment: {
					type: "object", required: ["id", "type", "status", "amount", "currency", "accountId", "provider"],
					properties: {
						id: { type: "string", format: "uuid" }, type: { type: "string", enum: ["topup", "payout", "p2p"] },
						status: { type: "string", enum: ["created", "pending_review", "processing", "completed", "failed", "cancelled", "reversed"] },
						amount: { type: "integer" }, currency: ref("Currency"), accountId: { type: "string" }, provider: { type: "string" }, failureCode: { type: ["string", "null"] },
					},
				},
				FxQuoteRequest: { type: "object", additionalProperties: false, required: ["from", "to", "amount"], properties: { from: ref("Currency"), to: ref("Currency"), amount: money } },
				FxQuote: {
					type: "object", required: ["id", "from", "to", "fromAmount", "toAmount", "rate", "expiresAt"],
					properties: { id: { type: "string", format: "uuid" }, from: ref("Currency"), to: ref("Currency"), fromAmount: { type: "integer" }, toAmount: { type: "integer" }, rate: { type: "string" }, spreadBps: { type: "integer" }, status: { type: "string" }, expiresAt: { type: "string", format: "date-time" } },
				},
				FxConvert: { type: "object", additionalProperties: false, required: ["quoteId", "fromAccountId", "toAccountId"], properties: { quoteId: { type: "string", format: "uuid" }, fromAccountId: { type: "string", format: "uuid" }, toAccountId: { type: "string", format: "uuid" } } },
				SetTier: { type: "object", additionalProperties: false, required: ["tier"], properties: { tier: { type: "integer", minimum: 0, maximum: 3 } } },
				SetRoles: { type: "object", additionalProperties: false, required: ["roles"], properties: { roles: { type: "array", items: { type: "string", enum: ["user", "admin", "support", "auditor"] } } } },
			},
		},
		paths: {
			"/api/v1/auth/register": { post: op("Register a user", { body: "Register", ok: "201", okSchema: ref("Session"), secured: false }) },
			"/api/v1/auth/login": { post: op("Log in (with otp when MFA is on)", { body: "Login", ok: "200", okSchema: ref("Session"), secured: false }) },
			"/api/v1/auth/refresh": { post: op("Rotate a refresh token", { body: "Refresh", ok: "200", okSchema: ref("TokenPair"), secured: false }) },
			"/api/v1/auth/logout": { post: op("Log out: revoke the session", { ok: "204", okSchema: null }) },
			"/api/v1/auth/mfa/setup": { post: op("Start TOTP set-up", { ok: "200", okSchema: { type: "object", properties: { secret: { type: "string" }, otpauthUrl: { type: "string" } } } }) },
			"/api/v1/auth/mfa/verify": { post: op("Confirm TOTP; MFA is on from now", { body: "Otp", ok: "200" }) },
			"/api/v1/me": {
				get: op("The caller", { ok: "200", okSchema: ref("User") }),
				patch: op("Update the caller's profile", { body: "UpdateMe", ok: "200", okSchema: ref("User") }),
			},
			"/api/v1/accounts": {
				post: op("Open an account", { body: "OpenAccount", ok: "201", okSchema: ref("Account") }),
				get: op("The caller's accounts", { ok: "200", okSchema: ref("AccountList") }),
			},
			"/api/v1/accounts/{id}": { get: op("One of the caller's accounts", { ok: "200", okSchema: ref("Account"), params: [idParam] }) },
			"/api/v1/accounts/{id}/transactions": {
				get: op("Entries, newest first", {
					ok: "200", okSchema: ref("EntryPage"),
					params: [idParam, { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 200 } }, { name: "cursor", in: "query", schema: { type: "string" } }],
				}),
			},
			"/api/v1/transfers": {
				post: (() => {
					const o = op("Transfer to another account: a P2P payment with fraud screening and tier limits (FRAUD_DECLINED, LIMIT_EXCEEDED are 422)", { body: "CreateTransfer", ok: "201", okSchema: ref("Transfer"), params: [idempotencyHeader] });
					return { ...o, responses: { ...o.responses, "202": { description: "Held for a fraud review: status pending_review, id null, paymentId to follow at /api/v1/payments/{paymentId}", content: json(ref("Transfer")) } } };
				})(),
			},
			"/api/v1/transfers/{id}": { get: op("A transfer of one of the caller's accounts", { ok: "200", okSchema: ref("Transfer"), params: [idParam] }) },
			"/api/v1/payments/topup": { post: op("Top up an account through a provider", { body: "Topup", ok: "201", okSchema: ref("Payment"), params: [idempotencyHeader] }) },
			"/api/v1/payments/payout": { post: op("Pay out to a destination through a provider", { body: "Payout", ok: "201", okSchema: ref("Payment"), params: [idempotencyHeader] }) },
			"/api/v1/payments/p2p": { post: op("Pay another user (to an account id or an e-mail), with fraud screening and tier limits", { body: "P2p", ok: "201", okSchema: ref("Payment"), params: [idempotencyHeader] }) },
			"/api/v1/payments/{id}/cancel": { post: op("Cancel a payment that waits for a fraud review (409 ILLEGAL_TRANSITION in any other status)", { ok: "200", okSchema: ref("Payment"), params: [idParam] }) },
			"/api/v1/payments/{id}": { get: op("One of the caller's payments", { ok: "200", okSchema: ref("Payment"), params: [idParam] }) },
			"/api/v1/providers/{provider}/callbacks": {
				post: {
					...op("A provider's asynchronous confirmation, signed with HMAC-SHA256 (no bearer token)", { body: "ProviderCallback", ok: "200", secured: false, params: [providerParam, signatureHeader] }),
					description: "Paymesh-Signature is `t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">` under the provider webhook secret; a missing, stale (over 300 s) or wrong signature is 401 INVALID_SIGNATURE. Each eventId counts once; a notice about a payment that is already final changes nothing.",
				},
			},
			"/api/v1/fx/rates": { get: op("Current rates against USD", { ok: "200" }) },
			"/api/v1/fx/quote": { post: op("A quote with a spread and an expiry, usable once", { body: "FxQuoteRequest", ok: "201", okSchema: ref("FxQuote") }) },
			"/api/v1/fx/convert": { post: op("Convert between two of the caller's accounts at a quote", { body: "FxConvert", ok: "201", params: [idempotencyHeader] }) },
			"/api/v1/admin/accounts": {
				get: op("Accounts of a user (admin, support)", { ok: "200", okSchema: ref("AccountList"), params: [{ name: "ownerId", in: "query", required: true, schema: { type: "string", format: "uuid" } }] }),
			},
			"/api/v1/admin/reviews": { get: op("Payments waiting for a fraud review (support, admin)", { ok: "200" }) },
			"/api/v1/admin/payments/{id}/approve": { post: op("Approve a payment in review (support, admin)", { ok: "200", okSchema: ref("Payment"), params: [idParam] }) },
			"/api/v1/admin/payments/{id}/decline": { post: op("Decline a payment in review (support, admin)", { ok: "200", okSchema: ref("Payment"), params: [idParam] }) },
			"/api/v1/admin/accounts/{id}/freeze": { post: op("Freeze an account (admin)", { ok: "200", okSchema: ref("Account"), params: [idParam] }) },
			"/api/v1/admin/accounts/{id}/unfreeze": { post: op("Unfreeze an account (admin)", { ok: "200", okSchema: ref("Account"), params: [idParam] }) },
			"/api/v1/admin/users/{id}/tier": { post: op("Set a user's KYC tier (admin, support)", { body: "SetTier", ok: "200", params: [idParam] }) },
			"/api/v1/admin/users/{id}/roles": { post: op("Set a user's roles (admin)", { body: "SetRoles", ok: "200", params: [idParam] }) },
			"/api/v1/admin/accounts/frozen": { get: op("Frozen accounts (admin, support)", { ok: "200", okSchema: ref("AccountList") }) },
			"/api/v1/payments": { get: op("The caller's payments, newest first; `cursor` is the previous page's `nextCursor`", { ok: "200", params: [q("limit", { type: "integer", minimum: 1, maximum: 100 }), q("cursor", { type: "string", maxLength: 80 })] }) },
			"/api/v1/admin/reports/daily": { get: op("Volume and count per currency, day and kind (admin, support, auditor)", { ok: "200", params: [q("from", dateQ), q("to", dateQ)] }) },
			"/api/v1/notifications": {
				get: op("The caller's notifications, newest first, with the unread count", { ok: "200", params: [q("limit", { type: "integer", minimum: 1, maximum: 100 }), q("cursor", { type: "string", maxLength: 80 }), q("unreadOnly", { type: "boolean" })] }),
			},
			"/api/v1/notifications/read-all": { post: op("Mark all the caller's notifications read", { ok: "200" }) },
			"/api/v1/notifications/{id}/read": { post: op("Mark one notification read", { ok: "200", params: [idParam] }) },
			"/api/v1/webhooks": {
				post: op("Register a webhook endpoint; the answer carries its signing secret, shown once", { body: "WebhookCreate", ok: "201" }),
				get: op("The caller's webhook endpoints", { ok: "200" }),
			},
			"/api/v1/webhooks/{id}/deliveries": { get: op("An endpoint's delivery log with every attempt, newest first; `cursor` is the previous page's `nextCursor`", { ok: "200", params: [idParam, q("limit", { type: "integer", minimum: 1, maximum: 100 }), q("cursor", { type: "string", maxLength: 80 })] }) },
			"/api/v1/webhooks/{id}/disable": { post: op("Stop deliveries to an endpoint", { ok: "200", params: [idParam] }) },
			"/api/v1/audit": { get: op("The hash-chained audit log (auditor, admin)", { ok: "200", params: [q("afterSeq", { type: "integer", minimum: 0 }), q("limit", { type: "integer", minimum: 1, maximum: 500 })] }) },
			"/api/v1/audit/verify": { get: op("Verify the audit chain (auditor, admin)", { ok: "200" }) },
			"/api/v1/reports/statement": {
				get: {
					...op("An account statement in [from, to): JSON, or CSV streamed (format=csv)", { ok: "200", params: [q("accountId", { type: "string", format: "uuid" }, true), q("from", dateQ), q("to", dateQ), q("format", { type: "string", enum: ["json", "csv"] })] }),
					responses: { ...op("", { ok: "200" }).responses, "200": { description: "The statement", content: { "application/json": { schema: { type: "object" } }, "text/csv": { schema: { type: "string" } } } } },
				},
			},
			"/api/v1/reports/summary": { get: op("Monthly credits, debits, count and closing balance of an account for a year", { ok: "200", params: [q("accountId", { type: "string", format: "uuid" }, true), q("year", { type: "integer", minimum: 2000, maximum: 2100 })] }) },
		},
	};
}
