/**
 * The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json, generated from the
 * gateway itself: the routes from the alias tables, each operation's path, query and body
 * parameters from its action's params schema (lib/json-schema.ts), operationId the action
 * name. Written by hand here: summaries, success statuses, response schemas (one per
 * resource type, in components), roles and the refusals each operation can answer, whose
 * statuses come from lib/errors.ts. The tests validate it, lint it (Redocly, recommended
 * rules) and check its paths are exactly the gateway's routes.
 */
import { CURRENCY_CODES } from "../../config/currencies.ts";
import { paramsToJsonSchema, ruleToJsonSchema, isRequired, type ConvertOptions, type JsonSchema } from "../../lib/json-schema.ts";
import { REFUSALS, type RefusalCode } from "../../lib/errors.ts";
import { ROLES, SCOPES, type Role } from "../auth/tokens.ts";
import { WEBHOOK_EVENTS } from "../webhooks/routing.ts";
import { amountRule, currencyRule } from "../ledger/params.ts";
import { callbackParams } from "../../contracts/payments.ts";
import { PRIVATE_ALIASES, PROVIDER_CALLBACK_ROUTE, PUBLIC_ALIASES, v1Actions } from "./v1.ts";
import { KYC_UPLOAD_ALIASES } from "./identity.ts";
import { CATEGORIES, TRANSACTION_TYPES } from "../reports/transactions.ts";
import { REQUEST_STATUSES } from "../requests/rules.ts";
import { FREQUENCIES, SCHEDULE_STATUSES } from "../schedules/rules.ts";
import { COUPON_KINDS, PAYMENT_STATUSES as BILL_PAYMENT_STATUSES } from "../bills/rules.ts";
import { METHOD_KINDS, METHOD_STATUSES } from "../methods/rules.ts";

type ActionName = keyof typeof v1Actions;
type Status = "200" | "201" | "202" | "204";

/** What the gateway's routes cannot say about an operation. */
interface OpDoc {
	summary: string;
	description?: string;
	/** The success status and its body: a schema, or null for none. */
	ok: [Status, JsonSchema | null];
	/** The success answer is also served as CSV (text/csv), by a query parameter. */
	csv?: true;
	/** The success answer is a PDF document (application/pdf) only. */
	pdf?: true;
	/** Other success answers (e.g. 202 for a transfer held for review). */
	alsoOk?: Partial<Record<Status, { description: string; schema: JsonSchema }>>;
	/** Roles allowed (403 FORBIDDEN for the others). */
	roles?: Role[];
	/** Needs an Idempotency-Key header (400 IDEMPOTENCY_KEY_REQUIRED, 409 IDEMPOTENCY_MISMATCH). */
	idempotent?: true;
	/** Refusals of the domain services this operation can answer, beside validation, auth and limits. */
	refusals?: RefusalCode[];
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ "application/json": { schema } });
const page = (item: string): JsonSchema => ({
	type: "object", required: ["items", "nextCursor"],
	properties: { items: { type: "array", items: ref(item) }, nextCursor: { type: ["string", "null"], description: "Pass as `cursor` for the next page; null on the last" } },
});
const anyObject: JsonSchema = { type: "object" };

/** Response schemas, one per resource type. Request schemas are generated from the params schemas. */
const RESPONSE_SCHEMAS: Record<string, JsonSchema> = {
	Error: {
		type: "object", required: ["error"],
		properties: {
			error: {
				type: "object", required: ["code", "message"],
				properties: { code: { type: "string", pattern: "^[A-Z_]+$" }, message: { type: "string" }, details: { description: "For VALIDATION_ERROR, the fields and rules that failed" } },
			},
		},
	},
	Currency: { type: "string", enum: [...CURRENCY_CODES], description: "ISO 4217 code" },
	Uuid: ruleToJsonSchema({ type: "uuid" }),
	Amount: { type: "integer", exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: "Integer minor units of the currency" },
	Session: { type: "object", required: ["user", "accessToken", "refreshToken"], properties: { user: ref("User"), accessToken: { type: "string" }, refreshToken: { type: "string" } } },
	TokenPair: { type: "object", required: ["accessToken", "refreshToken"], properties: { accessToken: { type: "string" }, refreshToken: { type: "string" } } },
	Client: {
		type: "object", required: ["id", "name", "scopes", "createdAt", "rotatedAt", "previousSecretExpiresAt"],
		properties: {
			id: { type: "string", format: "uuid", description: "The client_id" }, name: { type: "string" },
			scopes: { type: "array", items: { type: "string", enum: [...SCOPES] } }, createdAt: { type: "string", format: "date-time" },
			rotatedAt: { type: ["string", "null"], format: "date-time" },
			previousSecretExpiresAt: { type: ["string", "null"], format: "date-time", description: "Until when the secret before the last rotation still works" },
			secret: { type: "string", description: "The client_secret: only in the answers to create and rotate, shown once" },
		},
	},
	ClientList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Client") } } },
	ClientToken: {
		type: "object", required: ["access_token", "token_type", "expires_in", "scope"],
		properties: { access_token: { type: "string" }, token_type: { type: "string", const: "Bearer" }, expires_in: { type: "integer" }, scope: { type: "string" } },
	},
	KycDocument: {
		type: "object", required: ["id", "userId", "kind", "contentType", "sizeBytes", "sha256", "requestedTier", "status", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid" }, userId: { type: "string", format: "uuid" }, kind: { type: "string" }, contentType: { type: "string" },
			sizeBytes: { type: "integer" }, sha256: { type: "string" }, requestedTier: { type: "integer" }, status: { type: "string", enum: ["pending", "approved", "rejected"] },
			decidedBy: { type: ["string", "null"] }, decidedAt: { type: ["string", "null"], format: "date-time" }, note: { type: ["string", "null"] },
			createdAt: { type: "string", format: "date-time" }, content: { type: "string", description: "Base64: only in the content route's answer" },
		},
	},
	KycDocumentList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("KycDocument") } } },
	SessionList: {
		type: "object", required: ["items"],
		properties: {
			items: {
				type: "array",
				items: {
					type: "object", required: ["id", "current", "startedAt", "lastSeenAt", "expiresAt", "ip", "userAgent"],
					properties: {
						id: { type: "string", format: "uuid" }, current: { type: "boolean", description: "The session of the token that asked" },
						startedAt: { type: "string", format: "date-time" }, lastSeenAt: { type: "string", format: "date-time", description: "Its last login or refresh" },
						expiresAt: { type: "string", format: "date-time" }, ip: { type: ["string", "null"] }, userAgent: { type: ["string", "null"] },
					},
				},
			},
		},
	},
	MfaSetup: { type: "object", required: ["secret", "otpauthUrl"], properties: { secret: { type: "string" }, otpauthUrl: { type: "string" } } },
	User: {
		type: "object", required: ["id", "email", "name", "roles", "kycTier"],
		properties: { id: { type: "string" }, email: { type: "string" }, name: { type: "string" }, roles: { type: "array", items: { type: "string", enum: [...ROLES] } }, kycTier: { type: "integer" }, preferences: anyObject, emailVerified: { type: "boolean", description: "The address was proven by a mailed code" },
			limits: {
				type: "object", required: ["currency", "perTransferMinor", "perDayMinor"], description: "The tier's limits, in minor units of `currency`: every payment's amount is converted to it, so spending in all currencies shares the one daily limit",
				properties: { currency: ref("Currency"), perTransferMinor: { type: "integer" }, perDayMinor: { type: "integer" } },
			},
		},
	},
	Account: {
		type: "object", required: ["id", "currency", "label", "status", "balance", "version"],
		properties: {
			id: { type: "string", format: "uuid" }, currency: ref("Currency"), label: { type: "string" }, status: { type: "string", enum: ["active", "frozen", "closed"], description: "closed: closed by its owner, kept with its history; no money moves to or from it" },
			balance: { type: "object", required: ["posted", "pending", "available"], properties: { posted: { type: "integer" }, pending: { type: "integer" }, available: { type: "integer" } } },
			version: { type: "integer" },
		},
	},
	AccountList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Account") } } },
	Entry: {
		type: "object", required: ["id", "transferId", "amount", "balanceAfter", "counterparty", "description", "createdAt"],
		properties: {
			id: { type: "string" }, transferId: { type: "string" }, amount: { type: "integer", description: "Signed: negative for money out" }, balanceAfter: { type: "integer" },
			counterparty: { type: "string" }, description: { type: "string" }, createdAt: { type: "string", format: "date-time" },
		},
	},
	EntryPage: page("Entry"),
	Transfer: {
		type: "object", required: ["id", "status", "amount", "currency", "fromAccountId", "toAccountId", "createdAt"],
		properties: {
			id: { type: ["string", "null"], format: "uuid" }, paymentId: { type: "string", format: "uuid", description: "The P2P payment that made it (POST answers only)" },
			status: { type: "string" }, amount: { type: "integer" }, currency: ref("Currency"), fromAccountId: { type: "string" }, toAccountId: { type: "string" },
			description: { type: "string" }, createdAt: { type: "string", format: "date-time" },
			fee: {
				type: "object", required: ["amount", "priceVersion"], description: "The fee charged with the payment, by which price list (absent: none); a payment sent to review (202) holds it with the amount and is charged it when approved (no transferId until then)",
				properties: { amount: { type: "integer" }, priceVersion: { type: "integer" }, transferId: { type: "string", format: "uuid" } },
			},
		},
	},
	Payment: {
		type: "object", required: ["id", "type", "status", "amount", "currency", "accountId", "provider"],
		properties: {
			id: { type: "string", format: "uuid" }, type: { type: "string", enum: ["topup", "payout", "p2p"] },
			status: { type: "string", enum: ["created", "pending_review", "processing", "completed", "failed", "cancelled", "reversed"] },
			amount: { type: "integer" }, currency: ref("Currency"), accountId: { type: "string" }, provider: { type: "string" }, failureCode: { type: ["string", "null"] },
			priceVersion: { type: ["integer", "null"], description: "Top-ups, payouts and P2P payments sent to review: the price list the payment was priced by when it was made (null: none)" },
			fee: {
				type: ["integer", "null"],
				description: "Top-ups, payouts and P2P payments sent to review: the fee charged with the money (a top-up's from the amount credited, a payout's or reviewed payment's on top of it when it is paid out or approved); null until charged and for a payment that failed",
			},
		},
	},
	PaymentPage: page("Payment"),
	Refund: {
		type: "object", required: ["id", "kind", "amount", "currency", "paymentId", "refundedAmount", "refundableAmount", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid", description: "The refund's transfer" }, kind: { type: "string", enum: ["refund"] }, amount: { type: "integer" }, currency: ref("Currency"),
			paymentId: { type: "string", format: "uuid" }, refundedAmount: { type: "integer", description: "Refunded of the payment so far, this refund included" },
			refundableAmount: { type: "integer", description: "What is left to refund" }, fromAccountId: { type: "string" }, toAccountId: { type: "string" },
			description: { type: "string" }, createdAt: { type: "string", format: "date-time" },
		},
	},
	Refunds: {
		type: "object", required: ["paymentId", "amount", "currency", "refundedAmount", "refundableAmount", "items"],
		properties: {
			paymentId: { type: "string", format: "uuid" }, amount: { type: "integer" }, currency: ref("Currency"), refundedAmount: { type: "integer" }, refundableAmount: { type: "integer" },
			items: { type: "array", items: ref("Transfer") },
		},
	},
	TopupRefund: {
		type: "object", required: ["id", "paymentId", "status", "amount", "currency", "accountId", "provider", "reason", "staffId", "createdAt", "updatedAt"],
		properties: {
			id: { type: "string", format: "uuid", description: "The refund (also its reference at the provider)" }, paymentId: { type: "string", format: "uuid", description: "The top-up it refunds" },
			status: {
				type: "string", enum: ["created", "processing", "completed", "compensated", "refused"],
				description: "processing: the customer's money is held and the provider is refunding; completed: it went to the provider; compensated: the provider declined and the money is back",
			},
			amount: { type: "integer" }, currency: ref("Currency"), accountId: { type: "string", format: "uuid" }, provider: { type: "string" },
			holdId: { type: ["string", "null"] }, transferId: { type: ["string", "null"], description: "The ledger transfer to the provider's account, once completed" },
			providerRef: { type: ["string", "null"] },
			failureCode: { type: ["string", "null"], description: "Also while processing: the customer's account refused the debit for another reason than funds (ACCOUNT_FROZEN) and the refund waits for it" },
			debited: { type: ["integer", "null"], description: "Its hold ran out before the provider's success: what the customer's account paid (null otherwise)" },
			shortfall: { type: ["integer", "null"], description: "... and what suspense paid, the account no longer having it (debited + shortfall = amount)" },
			reason: { type: "string" }, staffId: { type: "string", format: "uuid" },
			createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
		},
	},
	TopupRefunds: {
		type: "object", required: ["paymentId", "amount", "currency", "status", "refundedAmount", "pendingAmount", "disputedAmount", "refundableAmount", "items"],
		properties: {
			paymentId: { type: "string", format: "uuid" }, amount: { type: "integer" }, currency: ref("Currency"), status: { type: "string", description: "The top-up's status" },
			refundedAmount: { type: "integer", description: "Refunds completed" }, pendingAmount: { type: "integer", description: "Refunds on their way through the provider" },
			disputedAmount: { type: "integer", description: "Disputes not won (not refundable)" }, refundableAmount: { type: "integer", description: "What is left to refund" },
			items: { type: "array", items: ref("TopupRefund") },
		},
	},
	MyTopupRefunds: {
		type: "object", required: ["paymentId", "amount", "currency", "status", "refundedAmount", "pendingAmount", "disputedAmount", "refundableAmount", "items"],
		description: "A customer's own top-up's refunds: as TopupRefunds, each refund without the staff member's id and reason (internal)",
		properties: {
			paymentId: { type: "string", format: "uuid" }, amount: { type: "integer" }, currency: ref("Currency"), status: { type: "string", description: "The top-up's status" },
			refundedAmount: { type: "integer", description: "Refunds completed" }, pendingAmount: { type: "integer", description: "Refunds on their way through the provider" },
			disputedAmount: { type: "integer", description: "Disputes not won (not refundable)" }, refundableAmount: { type: "integer", description: "What is left to refund" },
			items: {
				type: "array",
				items: {
					type: "object", required: ["id", "paymentId", "status", "amount", "currency", "accountId", "provider", "createdAt", "updatedAt"],
					properties: {
						id: { type: "string", format: "uuid" }, paymentId: { type: "string", format: "uuid" }, status: { type: "string", enum: ["created", "processing", "completed", "compensated"] },
						amount: { type: "integer" }, currency: ref("Currency"), accountId: { type: "string", format: "uuid" }, provider: { type: "string" },
						holdId: { type: ["string", "null"] }, transferId: { type: ["string", "null"] }, providerRef: { type: ["string", "null"] }, failureCode: { type: ["string", "null"] },
						debited: { type: ["integer", "null"], description: "Its hold ran out first: what your account paid of it (null otherwise)" },
						shortfall: { type: ["integer", "null"], description: "... and what your account no longer had, which we paid (null otherwise)" },
						createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
					},
				},
			},
		},
	},
	Dispute: {
		type: "object", required: ["id", "paymentId", "amount", "currency", "status", "deadline", "heldAmount", "shortfall"],
		properties: {
			id: { type: "string", format: "uuid" }, paymentId: { type: "string", format: "uuid" }, provider: { type: "string" }, amount: { type: "integer" }, currency: ref("Currency"),
			reason: { type: "string" }, status: { type: "string", enum: ["open", "evidence_submitted", "deciding", "won", "lost"], description: "deciding: an outcome is recorded and its money is moving" },
			outcome: { type: ["string", "null"], description: "won or lost: the outcome recorded first (null while undecided), the only one whose money moves" },
			decidedBy: { type: ["string", "null"], description: "Staff views only: the provider's event that decided it, or staff:<dispute>:<outcome> for an admin's recording (the audit chain names the admin)" },
			deadline: { type: "string", format: "date-time" },
			heldAmount: { type: "integer", description: "Set aside from the customer's account" }, shortfall: { type: "integer", description: "What the account could not cover (carried by suspense if lost)" },
			alreadyRefunded: { type: "integer", description: "Of the amount, what the top-up's refunds had already given back when the dispute opened: not held from the customer, part of the shortfall; contest it with the refund" },
			recovered: { type: ["integer", "null"], description: "Lost after its hold ran out: what the customer's account gave back of what was held (suspense paid the rest); null otherwise" },
			evidence: { type: "array", items: { type: "object" } },
			customer: { type: ["object", "null"], description: "Staff views only: the customer's name and address (null once the profile is gone)", properties: { name: { type: "string" }, email: { type: "string" } } },
		},
	},
	FeeQuote: {
		type: "object", required: ["amount", "fee", "total", "currency", "priceVersion", "validUntil"],
		properties: {
			type: { type: "string", enum: ["p2p", "topup", "payout"] }, amount: { type: "integer" }, fee: { type: "integer" },
			total: { type: "integer", description: "What you pay: amount + fee from your account (P2P, payout); a top-up's card is charged the amount" },
			net: { type: "integer", description: "What arrives: the amount (P2P, payout); amount - fee into your account for a top-up" },
			currency: ref("Currency"), tier: { type: "integer" },
			priceVersion: { type: ["integer", "null"], description: "Null: no price list yet (no fees)" }, validUntil: { type: "string", format: "date-time" },
		},
	},
	ReversalRequest: {
		type: "object", required: ["id", "transferId", "reason", "status", "proposedBy", "proposedAt"],
		properties: {
			id: { type: "string", format: "uuid" }, transferId: { type: "string", format: "uuid" }, reason: { type: "string" }, status: { type: "string", enum: ["proposed", "approved", "rejected"] },
			proposedBy: { type: "string", format: "uuid" }, proposedAt: { type: "string", format: "date-time" }, decidedBy: { type: ["string", "null"] }, decidedAt: { type: ["string", "null"] },
			decisionNote: { type: ["string", "null"] }, reversalTransferId: { type: ["string", "null"], description: "The ledger's reversal, once approved" },
		},
	},
	FxQuote: {
		type: "object", required: ["id", "from", "to", "fromAmount", "toAmount", "rate", "expiresAt"],
		properties: {
			id: { type: "string", format: "uuid" }, from: ref("Currency"), to: ref("Currency"), fromAmount: { type: "integer" }, toAmount: { type: "integer" },
			rate: { type: "string", description: "Units of `to` per unit of `from`, after the spread" }, spreadBps: { type: "integer" },
			spreadAmount: { type: "integer", description: "What the spread takes, in minor units of `to`: the conversion's only fee, included in the rate" },
			status: { type: "string" }, expiresAt: { type: "string", format: "date-time" },
		},
	},
	Webhook: {
		type: "object", required: ["id", "url", "events", "status", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid" }, url: { type: "string" }, events: { type: "array", items: { type: "string", enum: [...WEBHOOK_EVENTS] } },
			status: { type: "string" }, createdAt: { type: "string", format: "date-time" },
			secret: { type: "string", description: "The signing secret: only in the answer to the registration and to a rotation" },
		},
	},
	WebhookList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Webhook") } } },
	Transaction: {
		type: "object", required: ["id", "accountId", "transferId", "currency", "direction", "amount", "type", "category", "categoryReason", "counterparty", "description", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid" }, accountId: { type: "string", format: "uuid" }, transferId: { type: "string", format: "uuid" }, currency: ref("Currency"),
			direction: { type: "string", enum: ["in", "out"] }, amount: { type: "integer", minimum: 1, description: "Minor units; the direction says which way" },
			type: { type: "string", enum: [...TRANSACTION_TYPES] }, category: { type: "string", enum: [...CATEGORIES] }, categoryReason: { type: "string", description: "Why this category" },
			categorySetBy: { type: "string", enum: ["rules", "customer"] },
			counterparty: { type: "object", required: ["name", "userId", "accountId"], properties: { name: { type: "string" }, userId: { type: ["string", "null"] }, accountId: { type: "string" } } },
			description: { type: "string" }, createdAt: { type: "string", format: "date-time" },
		},
	},
	TransactionPage: page("Transaction"),
	PaymentRequest: {
		type: "object", required: ["id", "requester", "payer", "toAccountId", "amount", "currency", "note", "status", "expiresAt", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid" },
			requester: { type: "object", required: ["id", "name"], properties: { id: { type: "string", format: "uuid" }, name: { type: "string" } } },
			payer: { type: "object", required: ["id", "name"], properties: { id: { type: "string", format: "uuid" }, name: { type: "string" } } },
			toAccountId: { type: "string", format: "uuid" }, amount: { type: "integer", minimum: 1 }, currency: ref("Currency"), note: { type: "string" },
			status: { type: "string", enum: [...REQUEST_STATUSES] }, paymentId: { type: ["string", "null"] }, transferId: { type: ["string", "null"] },
			failureCode: { type: ["string", "null"], description: "Why the last acceptance did not pay (the request is pending again)" },
			expiresAt: { type: "string", format: "date-time" }, createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
		},
	},
	PaymentRequestPage: page("PaymentRequest"),
	Payee: {
		type: "object", required: ["id", "name", "accountId", "email", "createdAt"],
		properties: { id: { type: "string", format: "uuid" }, name: { type: "string" }, accountId: { type: ["string", "null"] }, email: { type: ["string", "null"] }, createdAt: { type: "string", format: "date-time" } },
	},
	PayeePage: page("Payee"),
	PaymentMethod: {
		type: "object", required: ["id", "kind", "provider", "brand", "last4", "expMonth", "expYear", "country", "holderName", "label", "status", "createdAt", "removedAt"],
		description: "A saved card or bank account: the provider keeps the number, we keep its token (never shown) and this hint",
		properties: {
			id: { type: "string", format: "uuid" }, kind: { type: "string", enum: [...METHOD_KINDS] }, provider: { type: "string", enum: ["card", "bank"] },
			brand: { type: "string", description: "visa, mastercard, amex, discover, card; bank for a bank account" }, last4: { type: "string" },
			expMonth: { type: ["integer", "null"] }, expYear: { type: ["integer", "null"] }, country: { type: ["string", "null"], description: "A bank account's IBAN country" },
			holderName: { type: "string" }, label: { type: "string" }, status: { type: "string", enum: [...METHOD_STATUSES] },
			createdAt: { type: "string", format: "date-time" }, removedAt: { type: ["string", "null"], format: "date-time" },
		},
	},
	PaymentMethodList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("PaymentMethod") } } },
	Schedule: {
		type: "object", required: ["id", "fromAccountId", "toAccountId", "payeeName", "amount", "currency", "frequency", "startDate", "endDate", "status", "nextDue"],
		properties: {
			id: { type: "string", format: "uuid" }, fromAccountId: { type: "string", format: "uuid" }, toAccountId: { type: "string", format: "uuid" }, payeeName: { type: "string" },
			amount: { type: "integer", minimum: 1 }, currency: ref("Currency"), description: { type: "string" }, frequency: { type: "string", enum: [...FREQUENCIES] },
			dayOfMonth: { type: ["integer", "null"] }, startDate: { type: "string", format: "date" }, endDate: { type: ["string", "null"], format: "date" },
			status: { type: "string", enum: [...SCHEDULE_STATUSES] }, nextDue: { type: ["string", "null"], format: "date" },
			occurrences: { type: "array", description: "The latest occurrences (GET /schedules/{id} only)", items: { type: "object" } },
		},
	},
	SchedulePage: page("Schedule"),
	Biller: {
		type: "object", required: ["code", "name", "category", "currency"],
		properties: { code: { type: "string" }, name: { type: "string" }, category: { type: "string" }, currency: ref("Currency"), amountMinor: { type: "array", items: { type: "integer" }, description: "The range its bills fall in (the simulation)" } },
	},
	BillerList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Biller") } } },
	Bill: {
		type: "object", required: ["billerCode", "billerName", "reference", "period", "amountDue", "currency", "dueDate", "status"],
		properties: {
			billerCode: { type: "string" }, billerName: { type: "string" }, reference: { type: "string" }, period: { type: "string", description: "The month billed, YYYY-MM" },
			amountDue: { type: "integer", minimum: 1 }, currency: ref("Currency"), dueDate: { type: "string", format: "date" },
			status: { type: "string", enum: ["unpaid", "processing", "paid"], description: "processing: a payment through us is under way" },
		},
	},
	BillQuote: {
		type: "object", required: ["id", "bill", "couponCode", "discount", "total", "currency", "expiresAt"],
		properties: {
			id: { type: "string", format: "uuid" }, bill: ref("Bill"), couponCode: { type: ["string", "null"] }, discount: { type: "integer", minimum: 0, description: "The coupon's part, booked from the promotion account" },
			total: { type: "integer", minimum: 0, description: "What leaves the customer's account: the bill less the discount" }, currency: ref("Currency"), expiresAt: { type: "string", format: "date-time" },
		},
	},
	BillPayment: {
		type: "object", required: ["id", "billerCode", "billerName", "reference", "period", "dueDate", "currency", "amount", "discount", "total", "fromAccountId", "status", "createdAt"],
		properties: {
			id: { type: "string", format: "uuid" }, billerCode: { type: "string" }, billerName: { type: "string" }, reference: { type: "string" }, period: { type: "string" }, dueDate: { type: "string", format: "date" },
			currency: ref("Currency"), amount: { type: "integer" }, discount: { type: "integer" }, total: { type: "integer" }, couponCode: { type: ["string", "null"] }, fromAccountId: { type: "string", format: "uuid" },
			status: { type: "string", enum: [...BILL_PAYMENT_STATUSES], description: "debited: paid, the biller not yet told; returning/returned: the biller refused and the money goes (went) back" },
			transferId: { type: ["string", "null"] }, discountTransferId: { type: ["string", "null"] }, returnTransferId: { type: ["string", "null"] }, confirmation: { type: ["string", "null"], description: "The biller's reference for the payment" },
			failureCode: { type: ["string", "null"] }, createdAt: { type: "string", format: "date-time" }, updatedAt: { type: "string", format: "date-time" },
		},
	},
	BillPaymentPage: page("BillPayment"),
	SavedBill: {
		type: "object", required: ["id", "billerCode", "billerName", "reference", "nickname", "createdAt", "bill"],
		properties: {
			id: { type: "string", format: "uuid" }, billerCode: { type: "string" }, billerName: { type: "string" }, reference: { type: "string" }, nickname: { type: "string" },
			createdAt: { type: "string", format: "date-time" }, bill: { anyOf: [ref("Bill"), { type: "null" }], description: "Its current bill (null if the biller no longer knows the reference)" },
		},
	},
	SavedBillList: { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("SavedBill") } } },
	Coupon: {
		type: "object", required: ["id", "code", "currency", "kind", "validFrom", "validUntil", "maxUses", "maxUsesPerCustomer", "uses", "status"],
		properties: {
			id: { type: "string", format: "uuid" }, code: { type: "string" }, currency: ref("Currency"), kind: { type: "string", enum: [...COUPON_KINDS] },
			percentBps: { type: ["integer", "null"] }, amountMinor: { type: ["integer", "null"] }, maxDiscountMinor: { type: ["integer", "null"] }, minSpendMinor: { type: "integer" },
			billerCode: { type: ["string", "null"] }, validFrom: { type: "string", format: "date-time" }, validUntil: { type: "string", format: "date-time" },
			maxUses: { type: "integer" }, maxUsesPerCustomer: { type: "integer" }, uses: { type: "integer", description: "Payments that used it (a refused or returned payment gives its use back)" },
			status: { type: "string", enum: ["active", "disabled"] }, disabledAt: { type: ["string", "null"] }, createdBy: { type: "string", format: "uuid" }, createdAt: { type: "string", format: "date-time" },
		},
	},
	CouponPage: page("Coupon"),
	ProviderCallbackResult: { type: "object", required: ["received", "outcome"], properties: { received: { type: "boolean", const: true }, outcome: { type: "string" } } },
};

/** The rules written once in components (by identity), so every body refers to them. */
const REFS: ReadonlyMap<object, string> = new Map<object, string>([
	[currencyRule, "#/components/schemas/Currency"],
	[amountRule, "#/components/schemas/Amount"],
]);

const PAYMENT_REFUSALS: RefusalCode[] = ["ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "CURRENCY_MISMATCH", "LIMIT_EXCEEDED", "FRAUD_DECLINED"];

/** Refusals of a top-up or payout that names a saved payment method. */
const METHOD_USE_REFUSALS: RefusalCode[] = ["PAYMENT_METHOD_NOT_FOUND", "PAYMENT_METHOD_UNUSABLE", "CARD_EXPIRED"];

const OPS: Record<ActionName, OpDoc> = {
	emailSendCode: {
		summary: "Mail a new code to the caller's address",
		description: "If another account has verified the address, its owner gets a notice instead. Five per hour.",
		ok: ["202", anyObject], refusals: ["TOO_MANY_ATTEMPTS"],
	},
	emailVerify: {
		summary: "Verify the caller's address with the mailed code",
		description: "Until then the user is not found by e-mail, keeps tier 1 and can hold no staff role. A code works once, for 15 minutes and 5 tries.",
		ok: ["200", anyObject], refusals: ["INVALID_CODE", "EMAIL_TAKEN"],
	},
	passwordChange: {
		summary: "Change the password",
		description: "Needs the current password, and a current code when MFA is on. Ends every session of the user (open sockets too) and answers a new one.",
		ok: ["200", ref("TokenPair")], refusals: ["INVALID_CREDENTIALS", "MFA_REQUIRED", "INVALID_OTP", "WEAK_PASSWORD", "TOO_MANY_ATTEMPTS"],
	},
	passwordForgot: {
		summary: "Mail a password reset token",
		description: "Answers the same for any address, whether or not it has an account. Three per address per hour.",
		ok: ["202", anyObject], refusals: ["TOO_MANY_ATTEMPTS"],
	},
	passwordReset: {
		summary: "Set a new password with a mailed reset token",
		description: "The token works once, for 30 minutes. Ends every session of the user (open sockets too).",
		ok: ["200", anyObject], refusals: ["INVALID_RESET_TOKEN", "WEAK_PASSWORD"],
	},
	clientCreate: {
		summary: "Create an OAuth2 client (client credentials) acting as the caller within scopes",
		description: "The answer carries its secret, shown once (only a hash is kept). Ten per user.",
		ok: ["201", ref("Client")], refusals: ["CLIENT_LIMIT_REACHED"],
	},
	meExport: {
		summary: "Export the caller's personal data as JSON",
		description: "Profile, sessions, OAuth2 clients (no secrets), accounts with their entries, payments, notifications and webhook endpoints (no secrets); each list at most 10,000 items, flagged when cut. Two per user per rate-limit window.",
		ok: ["200", anyObject], refusals: ["USER_NOT_FOUND"],
	},
	meErase: {
		summary: "Erase the caller's personal data",
		description: "Needs the password again (and a code with MFA on). Every account must be empty and have nothing pending; they are closed. The profile, credentials, notifications and webhook endpoints are pseudonymised or deleted and every session and client ends. The ledger's history and the audit chain are kept as they are, referring to the user by id only.",
		ok: ["204", null], refusals: ["INVALID_CREDENTIALS", "MFA_REQUIRED", "INVALID_OTP", "TOO_MANY_ATTEMPTS", "ACCOUNT_NOT_EMPTY", "ACCOUNT_HAS_PENDING", "ACCOUNT_FROZEN"],
	},
	kycUpload: {
		summary: "Upload an identity document for a higher tier",
		description: "JSON with the document in base64: a PDF, PNG or JPEG by its content (as declared), at most KYC_DOCUMENT_BYTES_MAX (5 MiB) decoded; stored with its SHA-256, pending support's review. At most 5 pending per user. This route alone takes bodies that large.",
		ok: ["201", ref("KycDocument")], refusals: ["DOCUMENT_TOO_LARGE", "UNSUPPORTED_DOCUMENT", "DOCUMENT_LIMIT_REACHED"],
	},
	kycList: { summary: "The caller's documents and their review", ok: ["200", ref("KycDocumentList")] },
	adminKycPending: { summary: "Documents waiting for review, oldest first", ok: ["200", ref("KycDocumentList")], roles: ["support", "admin"] },
	adminKycContent: { summary: "A document with its content (base64), checked against its SHA-256", ok: ["200", ref("KycDocument")], roles: ["support", "admin"], refusals: ["DOCUMENT_NOT_FOUND"] },
	adminKycApprove: {
		summary: "Approve a document: the user's tier becomes the one asked for",
		description: "Four eyes (not one's own documents); in the audit log with who and why. The tier needs a verified address.",
		ok: ["200", ref("KycDocument")], roles: ["support", "admin"], refusals: ["DOCUMENT_NOT_FOUND", "FORBIDDEN", "ILLEGAL_TRANSITION", "EMAIL_NOT_VERIFIED"],
	},
	adminKycReject: {
		summary: "Reject a document", description: "Four eyes; in the audit log with who and why.",
		ok: ["200", ref("KycDocument")], roles: ["support", "admin"], refusals: ["DOCUMENT_NOT_FOUND", "FORBIDDEN", "ILLEGAL_TRANSITION"],
	},
	clientList: { summary: "The caller's OAuth2 clients (without secrets)", ok: ["200", ref("ClientList")] },
	clientRotate: {
		summary: "Give a client a new secret",
		description: "The previous secret keeps working for CLIENT_SECRET_OVERLAP_S (a day), so it can be replaced everywhere first.",
		ok: ["200", ref("Client")], refusals: ["CLIENT_NOT_FOUND"],
	},
	clientRevoke: { summary: "End a client: its secrets and live tokens stop working", ok: ["204", null], refusals: ["CLIENT_NOT_FOUND"] },
	clientToken: {
		summary: "OAuth2 client credentials grant",
		description: "A short-lived bearer token (CLIENT_TOKEN_TTL_S) acting as the client's owner, with no role beyond user, usable only on routes its scopes allow (403 elsewhere): accounts:read, transactions:read, payments:read, payments:write. JSON body with the RFC 6749 field names; errors in this API's format.",
		ok: ["200", ref("ClientToken")], refusals: ["INVALID_CLIENT", "INVALID_SCOPE", "TOO_MANY_ATTEMPTS"],
	},
	sessionList: { summary: "The caller's sessions (logins) and their devices", ok: ["200", ref("SessionList")] },
	sessionRevoke: { summary: "End one of the caller's sessions", description: "Its refresh tokens stop working, its access tokens are refused and its sockets closed.", ok: ["204", null], refusals: ["SESSION_NOT_FOUND"] },
	register: {
		summary: "Register a user",
		description: "Answers the same whether or not the address is taken: a code is mailed to a new address, a notice to the owner of a verified one. Counted per client address.",
		ok: ["201", ref("Session")], refusals: ["WEAK_PASSWORD", "TOO_MANY_ATTEMPTS"],
	},
	login: { summary: "Log in (with otp when MFA is on)", ok: ["200", ref("Session")], refusals: ["INVALID_CREDENTIALS", "MFA_REQUIRED", "INVALID_OTP", "TOO_MANY_ATTEMPTS"] },
	refresh: { summary: "Rotate a refresh token", ok: ["200", ref("TokenPair")], refusals: ["INVALID_REFRESH_TOKEN", "REFRESH_TOKEN_REUSED"] },
	logout: { summary: "Log out: revoke the session", ok: ["204", null] },
	mfaSetup: {
		summary: "Start TOTP set-up", description: "Needs the password, and a current code when MFA is on; MFA stays as it is until mfa/verify.",
		ok: ["200", ref("MfaSetup")], refusals: ["INVALID_CREDENTIALS", "MFA_REQUIRED", "INVALID_OTP"],
	},
	mfaVerify: { summary: "Confirm TOTP; MFA is on from now", ok: ["200", anyObject], refusals: ["INVALID_OTP", "MFA_NOT_SET_UP"] },
	me: { summary: "The caller", ok: ["200", ref("User")], refusals: ["USER_NOT_FOUND"] },
	updateMe: { summary: "Update the caller's profile", ok: ["200", ref("User")], refusals: ["USER_NOT_FOUND"] },
	openAccount: { summary: "Open an account", ok: ["201", ref("Account")] },
	listAccounts: { summary: "The caller's accounts", ok: ["200", ref("AccountList")] },
	getAccount: { summary: "One of the caller's accounts", ok: ["200", ref("Account")], refusals: ["ACCOUNT_NOT_FOUND"] },
	accountTransactions: { summary: "An account's entries, newest first", ok: ["200", ref("EntryPage")], refusals: ["ACCOUNT_NOT_FOUND"] },
	createTransfer: {
		summary: "Transfer to another account",
		description: "A P2P payment with fraud screening and tier limits. The same Idempotency-Key and body replay the first answer.",
		ok: ["201", ref("Transfer")],
		alsoOk: { "202": { description: "Held for a fraud review: status pending_review, id null, paymentId to follow at /api/v1/payments/{paymentId}", schema: ref("Transfer") } },
		idempotent: true,
		refusals: [...PAYMENT_REFUSALS, "INSUFFICIENT_FUNDS", "SAME_ACCOUNT", "PRICE_LIST_UNKNOWN", "QUOTE_EXPIRED"],
	},
	getTransfer: { summary: "A transfer of one of the caller's accounts", ok: ["200", ref("Transfer")], refusals: ["TRANSFER_NOT_FOUND"] },
	topup: {
		summary: "Top up an account through a provider", description: "With paymentMethodId, from a saved card (its provider: card).",
		ok: ["201", ref("Payment")], idempotent: true, refusals: [...PAYMENT_REFUSALS, "PROVIDER_DECLINED", ...METHOD_USE_REFUSALS, "PRICE_LIST_UNKNOWN", "QUOTE_EXPIRED", "AMOUNT_TOO_SMALL"],
	},
	payout: {
		summary: "Pay out to a destination through a provider", description: "A destination, or paymentMethodId: a saved bank account (its provider: bank).",
		ok: ["201", ref("Payment")], idempotent: true, refusals: [...PAYMENT_REFUSALS, "INSUFFICIENT_FUNDS", "PROVIDER_DECLINED", ...METHOD_USE_REFUSALS, "PRICE_LIST_UNKNOWN", "QUOTE_EXPIRED"],
	},
	p2p: {
		summary: "Pay another user, to an account id or an e-mail",
		description: "With fraud screening and tier limits.",
		ok: ["201", ref("Payment")], idempotent: true, refusals: [...PAYMENT_REFUSALS, "RECIPIENT_NOT_FOUND", "INSUFFICIENT_FUNDS", "SAME_ACCOUNT", "TOO_MANY_ATTEMPTS"],
	},
	cancelPayment: { summary: "Cancel a payment that waits for a fraud review", ok: ["200", ref("Payment")], refusals: ["PAYMENT_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	getPayment: { summary: "One of the caller's payments", ok: ["200", ref("Payment")], refusals: ["PAYMENT_NOT_FOUND"] },
	listPayments: { summary: "The caller's payments, newest first", ok: ["200", ref("PaymentPage")] },
	fxRates: { summary: "Current rates against USD", ok: ["200", anyObject] },
	fxQuote: { summary: "A quote with a spread and an expiry, usable once", ok: ["201", ref("FxQuote")], refusals: ["CURRENCY_NOT_SUPPORTED", "AMOUNT_TOO_SMALL"] },
	fxConvert: {
		summary: "Convert between two of the caller's accounts at a quote",
		description: "The Idempotency-Key claims the quote: the same request again replays the conversion, another is QUOTE_USED.",
		ok: ["201", anyObject], idempotent: true,
		refusals: ["QUOTE_NOT_FOUND", "QUOTE_USED", "QUOTE_EXPIRED", "ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "CURRENCY_MISMATCH", "INSUFFICIENT_FUNDS", "SAME_ACCOUNT", "LINKED_TRANSFER_FAILED"],
	},
	adminAccounts: { summary: "Accounts of a user", ok: ["200", ref("AccountList")], roles: ["admin", "support"] },
	adminFrozen: { summary: "Frozen accounts", ok: ["200", ref("AccountList")], roles: ["admin", "support"] },
	adminReviews: { summary: "Payments waiting for a fraud review", ok: ["200", anyObject], roles: ["support", "admin"] },
	adminApprovePayment: { summary: "Approve a payment in review", ok: ["200", ref("Payment")], roles: ["support", "admin"], refusals: ["PAYMENT_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	adminDeclinePayment: { summary: "Decline a payment in review", ok: ["200", ref("Payment")], roles: ["support", "admin"], refusals: ["PAYMENT_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	adminFreeze: { summary: "Freeze an account", ok: ["200", ref("Account")], roles: ["admin"], refusals: ["ACCOUNT_NOT_FOUND"] },
	adminUnfreeze: { summary: "Unfreeze an account", ok: ["200", ref("Account")], roles: ["admin"], refusals: ["ACCOUNT_NOT_FOUND"] },
	adminSetTier: { summary: "Set a user's KYC tier", description: "A tier above 1 needs a verified address.", ok: ["200", anyObject], roles: ["admin", "support"], refusals: ["USER_NOT_FOUND", "EMAIL_NOT_VERIFIED"] },
	adminSetRoles: { summary: "Set a user's roles", description: "They apply from the user's next token refresh.", ok: ["200", anyObject], roles: ["admin"], refusals: ["USER_NOT_FOUND", "EMAIL_NOT_VERIFIED"] },
	adminDeadLetters: { summary: "Dead letters of the durable consumers, newest first", ok: ["200", anyObject], roles: ["admin"] },
	adminDeadLetter: { summary: "One dead letter with its event's payload", ok: ["200", anyObject], roles: ["admin"], refusals: ["DEAD_LETTER_NOT_FOUND"] },
	adminRedeliverDeadLetter: { summary: "Re-send one dead letter to its consumer (audited)", description: "Delivered: the letter is gone; failed again: it stays with the new error.", ok: ["200", anyObject], roles: ["admin"], refusals: ["DEAD_LETTER_NOT_FOUND", "NOT_REPLAYABLE"] },
	adminRedeliverDeadLetters: { summary: "Re-send a consumer's oldest dead letters (audited)", ok: ["200", anyObject], roles: ["admin"] },
	adminDiscardDeadLetter: { summary: "Discard a dead letter with a reason (audited, the event kept in the audit chain)", ok: ["200", anyObject], roles: ["admin"], refusals: ["DEAD_LETTER_NOT_FOUND"] },
	adminStuckPayments: { summary: "Payments not final for longer than olderThanS seconds (default 300), oldest first", ok: ["200", anyObject], roles: ["support", "admin"] },
	adminRequeryPayment: { summary: "Ask the provider about a stuck top-up or payout now, and settle from its answer (audited)", ok: ["200", ref("Payment")], roles: ["support", "admin"], refusals: ["PAYMENT_NOT_FOUND", "NOT_REPAIRABLE"] },
	refundPayment: {
		summary: "Refund a P2P payment you received, whole or in part",
		description: "Several partial refunds may follow one another; together they never exceed the payment. Only the payee can refund (anyone else is told the payment does not exist).",
		ok: ["201", ref("Refund")], idempotent: true, refusals: ["PAYMENT_NOT_FOUND", "REFUND_EXCEEDS_PAYMENT", "ALREADY_REVERSED", "INSUFFICIENT_FUNDS", "ACCOUNT_FROZEN"],
	},
	paymentRefunds: { summary: "The refunds of a payment you made or received, and what is left to refund", ok: ["200", ref("Refunds")], refusals: ["PAYMENT_NOT_FOUND"] },
	adminPaymentRefunds: {
		summary: "A payment's refunds for staff, what is left to refund, and who paid whom",
		ok: ["200", {
			type: "object", required: ["paymentId", "amount", "currency", "refundedAmount", "refundableAmount", "items", "payer", "payee"],
			properties: {
				paymentId: { type: "string", format: "uuid" }, amount: { type: "integer" }, currency: ref("Currency"), refundedAmount: { type: "integer" }, refundableAmount: { type: "integer" },
				items: { type: "array", items: ref("Transfer") }, fromAccountId: { type: "string" }, toAccountId: { type: "string" }, description: { type: "string" }, createdAt: { type: "string", format: "date-time" },
				payer: { type: ["object", "null"], description: "Name and e-mail of who paid", properties: { name: { type: "string" }, email: { type: "string" } } },
				payee: { type: ["object", "null"], description: "Name and e-mail of who was paid", properties: { name: { type: "string" }, email: { type: "string" } } },
			},
		}],
		roles: ["support", "admin", "auditor"], refusals: ["PAYMENT_NOT_FOUND"],
	},
	adminRefundPayment: {
		summary: "Refund a payment on a customer's request (audited, never your own)", ok: ["201", ref("Refund")], roles: ["support", "admin"], idempotent: true,
		refusals: ["PAYMENT_NOT_FOUND", "REFUND_EXCEEDS_PAYMENT", "ALREADY_REVERSED", "INSUFFICIENT_FUNDS", "ACCOUNT_FROZEN"],
	},
	adminRefundTopup: {
		summary: "Refund a customer's completed top-up through its provider, whole or in part, on their request (audited, never your own)",
		description: "The money is held from the customer's account, the provider refunds it to the instrument it came from, and the hold is posted to the provider (completed) or released if the provider declines (compensated). A provider that answers later leaves the refund processing until its callback or the next status inquiry. The refunds of a top-up never exceed it.",
		ok: ["201", ref("TopupRefund")], roles: ["support", "admin"], idempotent: true,
		refusals: ["PAYMENT_NOT_FOUND", "REFUND_EXCEEDS_PAYMENT", "ALREADY_REVERSED", "ILLEGAL_TRANSITION", "INSUFFICIENT_FUNDS", "ACCOUNT_FROZEN"],
	},
	adminTopupRefunds: { summary: "A top-up's refunds through its provider, and what is left to refund", ok: ["200", ref("TopupRefunds")], roles: ["support", "admin", "auditor"], refusals: ["PAYMENT_NOT_FOUND"] },
	topupRefunds: { summary: "The refunds of one of your top-ups, and what is left to refund (without staff ids or reasons)", ok: ["200", ref("MyTopupRefunds")], refusals: ["PAYMENT_NOT_FOUND"] },
	adminProposeReversal: {
		summary: "Propose reversing a completed transfer, with a reason (a second staff member approves)", ok: ["201", ref("ReversalRequest")], roles: ["support", "admin"],
		refusals: ["TRANSFER_NOT_FOUND", "NOT_REVERSIBLE", "ILLEGAL_TRANSITION", "ALREADY_REFUNDED"],
	},
	adminReversals: { summary: "Reversal requests waiting for a second staff member", ok: ["200", { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("ReversalRequest") } } }], roles: ["support", "admin", "auditor"] },
	adminApproveReversal: {
		summary: "Approve a reversal someone else proposed: the ledger reverses the transfer (audited)", ok: ["200", ref("ReversalRequest")], roles: ["support", "admin"],
		refusals: ["REVERSAL_REQUEST_NOT_FOUND", "ILLEGAL_TRANSITION", "ALREADY_REVERSED", "ALREADY_REFUNDED", "INSUFFICIENT_FUNDS", "ACCOUNT_FROZEN"],
	},
	myDisputes: { summary: "Disputes of the caller's card top-ups", ok: ["200", { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Dispute") } } }] },
	myDispute: { summary: "One dispute of the caller's", ok: ["200", ref("Dispute")], refusals: ["DISPUTE_NOT_FOUND"] },
	adminDisputes: { summary: "Disputes by status, earliest deadline first", ok: ["200", { type: "object", required: ["items"], properties: { items: { type: "array", items: ref("Dispute") } } }], roles: ["support", "admin", "auditor"] },
	adminDispute: { summary: "A dispute with its evidence", ok: ["200", ref("Dispute")], roles: ["support", "admin", "auditor"], refusals: ["DISPUTE_NOT_FOUND"] },
	adminDisputeOutcome: {
		summary: "Record the provider's outcome of a dispute (won: the hold is released; lost: it is posted to the provider), with a reason (audited, never your own)",
		description: "The first outcome recorded (by the provider's callback or an admin) is the only one whose money moves. The same outcome again answers the dispute as it is; the other outcome once one is recorded is ILLEGAL_TRANSITION.",
		ok: ["200", ref("Dispute")], roles: ["admin"], refusals: ["DISPUTE_NOT_FOUND", "FORBIDDEN", "ILLEGAL_TRANSITION"],
	},
	adminDisputeEvidence: {
		summary: "Attach evidence to a dispute before its deadline (a note and at most one document of 256 KiB: PDF, PNG, JPEG or text; audited)",
		ok: ["201", ref("Dispute")], roles: ["support", "admin"], refusals: ["DISPUTE_NOT_FOUND", "DISPUTE_DEADLINE_PASSED", "ILLEGAL_TRANSITION"],
	},
	paymentQuote: {
		summary: "What a payment would cost you now (P2P by default, or type=topup|payout): the fee, the total, what arrives, and the price list to name when paying",
		description: "Pass `priceVersion` with POST /transfers, /payments/topup or /payments/payout to be charged by this quote's price list; it holds for 15 minutes after the list is replaced. A top-up's fee comes off what arrives; a payout's is debited on top of the amount.",
		ok: ["200", ref("FeeQuote")],
	},
	adminPrices: { summary: "Every price list, the current one last", ok: ["200", anyObject], roles: ["admin", "auditor"] },
	adminSetPrices: { summary: "A new price list, in force at once (audited)", ok: ["201", anyObject], roles: ["admin"], refusals: ["PRICE_LIST_INVALID"] },
	adminRevenue: {
		summary: "Fee revenue by day, currency and payment type", ok: ["200", { type: "object", required: ["items"], properties: { items: { type: "array", items: { type: "object" } } } }],
		roles: ["admin", "auditor"], refusals: ["INVALID_DATE_RANGE"],
	},
	adminRejectReversal: { summary: "Reject a reversal request (audited)", ok: ["200", ref("ReversalRequest")], roles: ["support", "admin"], refusals: ["REVERSAL_REQUEST_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	adminCompensatePayment: { summary: "Give a processing top-up or payout up: hold released, payment failed COMPENSATED (audited)", ok: ["200", ref("Payment")], roles: ["admin"], refusals: ["PAYMENT_NOT_FOUND", "NOT_REPAIRABLE", "ILLEGAL_TRANSITION"] },
	adminReconBreaks: { summary: "Reconciliation breaks, oldest first", ok: ["200", anyObject], roles: ["admin", "support", "auditor"] },
	adminReconPropose: { summary: "Propose a break's resolution: adjust (through the suspense account), requery or explain", ok: ["200", anyObject], roles: ["admin", "support"], refusals: ["BREAK_NOT_FOUND", "BREAK_NOT_OPEN", "NOT_REPAIRABLE"] },
	adminReconApprove: { summary: "Approve a proposed resolution (four eyes: not the proposer), which carries it out", ok: ["200", anyObject], roles: ["admin"], refusals: ["BREAK_NOT_FOUND", "NO_PROPOSAL", "BREAK_NOT_OPEN", "NOT_REPAIRABLE"] },
	adminReconRun: { summary: "Reconcile a provider's settlement file of a day against payments and the ledger", ok: ["200", anyObject], roles: ["admin"] },
	adminDaily: { summary: "Volume and count per currency, day and kind", ok: ["200", anyObject], roles: ["admin", "support", "auditor"], refusals: ["INVALID_DATE_RANGE"] },
	notifications: { summary: "The caller's notifications, newest first, with the unread count", ok: ["200", anyObject] },
	notificationsReadAll: { summary: "Mark all the caller's notifications read", ok: ["200", anyObject] },
	notificationRead: { summary: "Mark one notification read", ok: ["200", anyObject], refusals: ["NOTIFICATION_NOT_FOUND"] },
	webhookCreate: { summary: "Register a webhook endpoint", description: "The answer carries its signing secret, shown once.", ok: ["201", ref("Webhook")], refusals: ["WEBHOOK_LIMIT_REACHED"] },
	webhookList: { summary: "The caller's webhook endpoints", ok: ["200", ref("WebhookList")] },
	webhookDeliveries: { summary: "An endpoint's delivery log with every attempt, newest first", ok: ["200", anyObject], refusals: ["WEBHOOK_NOT_FOUND"] },
	webhookDisable: { summary: "Stop deliveries to an endpoint", ok: ["200", anyObject], refusals: ["WEBHOOK_NOT_FOUND"] },
	webhookRotate: {
		summary: "A new signing secret for an endpoint", description: "The answer carries the new secret, shown once; the old one stops signing at once, also for retries of earlier deliveries. A disabled endpoint answers 404.",
		ok: ["200", ref("Webhook")], refusals: ["WEBHOOK_NOT_FOUND"],
	},
	auditList: { summary: "The hash-chained audit log", ok: ["200", anyObject], roles: ["auditor", "admin"] },
	auditVerify: { summary: "Verify the audit chain", ok: ["200", anyObject], roles: ["auditor", "admin"] },
	statement: { summary: "An account statement in [from, to): JSON a page at a time (limit, cursor from nextCursor), or CSV streamed whole (format=csv)", ok: ["200", anyObject], csv: true, refusals: ["ACCOUNT_NOT_FOUND", "INVALID_DATE_RANGE"] },
	summary: { summary: "Monthly credits, debits, count and closing balance of an account for a year", ok: ["200", anyObject], refusals: ["ACCOUNT_NOT_FOUND"] },
	listTransactions: {
		summary: "The caller's transactions across all their accounts, filtered, newest first",
		description: "Filters: from/to (createdAt in [from, to)), minAmountMinor/maxAmountMinor, direction, accountId, currency, counterpartyId (a user or an account), type, category, q (words matched as prefixes in the description and the counterparty's name). Pages of at most 100 (default 50) with nextCursor.",
		ok: ["200", ref("TransactionPage")], refusals: ["INVALID_DATE_RANGE"],
	},
	transactionsStatement: {
		summary: "The caller's filtered transactions as a PDF statement",
		description: "The filters of GET /transactions; oldest first: the customer's name, the period, each account's opening and closing balance, totals per currency, and the lines in major units with counterparties' names. At most 1,000 lines (else 422 STATEMENT_TOO_LARGE: narrow the period).",
		ok: ["200", { type: "string", format: "binary" }], pdf: true, refusals: ["INVALID_DATE_RANGE", "STATEMENT_TOO_LARGE"],
	},
	getTransaction: { summary: "One of the caller's transactions", ok: ["200", ref("Transaction")], refusals: ["TRANSACTION_NOT_FOUND"] },
	exportTransactions: {
		summary: "The caller's filtered transactions as CSV",
		description: "The filters of GET /transactions; newest first, at most 50,000 rows: date, type and category in words, the counterparty's name, money in and out in major units, the account's name.",
		ok: ["200", { type: "string" }], csv: true, refusals: ["INVALID_DATE_RANGE"],
	},
	setTransactionCategory: {
		summary: "File one of the caller's transactions under a category",
		description: "With learn (default true), the caller's later transactions with the same counterparty get this category too.",
		ok: ["200", ref("Transaction")], refusals: ["TRANSACTION_NOT_FOUND"],
	},
	insights: { summary: "A month's spending by category and counterparty against the 3 months before, with insights saying why", ok: ["200", anyObject] },
	createRequest: {
		summary: "Ask someone (a user id or a verified e-mail) to pay an amount into one of the caller's accounts",
		description: "The same Idempotency-Key and body answer the first request again. Expires after expiresInS (default 7 days, at most 30).",
		ok: ["201", ref("PaymentRequest")], idempotent: true, refusals: ["ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "CURRENCY_MISMATCH", "RECIPIENT_NOT_FOUND", "SAME_ACCOUNT", "TOO_MANY_ATTEMPTS", "REQUEST_LIMIT_REACHED"],
	},
	listRequests: { summary: "Requests asked of the caller (incoming) or by the caller (outgoing), newest first", ok: ["200", ref("PaymentRequestPage")] },
	getRequest: { summary: "One request the caller made or was asked", ok: ["200", ref("PaymentRequest")], refusals: ["REQUEST_NOT_FOUND"] },
	acceptRequest: {
		summary: "Pay a request asked of the caller, from one of their accounts",
		description: "A P2P payment (fraud screening, tier limits), at most one per acceptance: the request is its idempotency key, and a retry resumes the same payment. A refusal (e.g. INSUFFICIENT_FUNDS) leaves the request pending.",
		ok: ["200", ref("PaymentRequest")],
		refusals: ["REQUEST_NOT_FOUND", "FORBIDDEN", "REQUEST_EXPIRED", "REQUEST_BEING_PAID", "ILLEGAL_TRANSITION", ...PAYMENT_REFUSALS, "INSUFFICIENT_FUNDS", "SAME_ACCOUNT"],
	},
	declineRequest: { summary: "Decline a request asked of the caller", ok: ["200", ref("PaymentRequest")], refusals: ["REQUEST_NOT_FOUND", "FORBIDDEN", "REQUEST_BEING_PAID", "ILLEGAL_TRANSITION"] },
	cancelRequest: { summary: "Cancel a request the caller made", ok: ["200", ref("PaymentRequest")], refusals: ["REQUEST_NOT_FOUND", "FORBIDDEN", "REQUEST_BEING_PAID", "ILLEGAL_TRANSITION"] },
	addPayee: { summary: "Save a payee: someone else's account, or an e-mail address", description: "Saving the same account or address again answers the saved payee.", ok: ["201", ref("Payee")], refusals: ["ACCOUNT_NOT_FOUND", "SAME_ACCOUNT", "PAYEE_LIMIT_REACHED"] },
	listPayees: { summary: "The caller's saved payees, newest first", ok: ["200", ref("PayeePage")] },
	removePayee: { summary: "Forget a saved payee", ok: ["200", anyObject], refusals: ["PAYEE_NOT_FOUND"] },
	createSchedule: {
		summary: "A standing order: pay once, daily, weekly or monthly on a day, from a start date to an optional end",
		description: "Each occurrence is paid exactly once (its key is the order and the due date), through the P2P path. Not enough money: the owner is told and it is retried twice (after 6 and 12 hours), then skipped.",
		ok: ["201", ref("Schedule")], idempotent: true,
		refusals: ["ACCOUNT_NOT_FOUND", "CURRENCY_MISMATCH", "RECIPIENT_NOT_FOUND", "PAYEE_NOT_FOUND", "SAME_ACCOUNT", "TOO_MANY_ATTEMPTS", "SCHEDULE_LIMIT_REACHED"],
	},
	listSchedules: { summary: "The caller's standing orders, newest first", ok: ["200", ref("SchedulePage")] },
	getSchedule: { summary: "One standing order with its latest occurrences", ok: ["200", ref("Schedule")], refusals: ["SCHEDULE_NOT_FOUND"] },
	updateSchedule: { summary: "Change a standing order's amount, description, end or day for the occurrences not yet due", ok: ["200", ref("Schedule")], refusals: ["SCHEDULE_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	pauseSchedule: { summary: "Pause a standing order (occurrences that fall in the pause are not paid)", ok: ["200", ref("Schedule")], refusals: ["SCHEDULE_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	resumeSchedule: { summary: "Resume a paused standing order from today", ok: ["200", ref("Schedule")], refusals: ["SCHEDULE_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	cancelSchedule: { summary: "Cancel a standing order", ok: ["200", ref("Schedule")], refusals: ["SCHEDULE_NOT_FOUND", "ILLEGAL_TRANSITION"] },
	renameAccount: { summary: "Rename one of the caller's accounts", ok: ["200", ref("Account")], refusals: ["ACCOUNT_NOT_FOUND"] },
	closeAccount: {
		summary: "Close one of the caller's accounts",
		description: "Only at a zero balance with no payments in progress; the account and its history stay, shown as closed, and no money can move to or from it.",
		ok: ["200", ref("Account")], refusals: ["ACCOUNT_NOT_FOUND", "ACCOUNT_NOT_EMPTY", "ACCOUNT_HAS_PENDING", "ACCOUNT_FROZEN"],
	},
	billers: { summary: "The billers whose bills can be paid", ok: ["200", ref("BillerList")] },
	billLookup: { summary: "A reference's current bill at a biller: amount due, due date, and whether it is paid", ok: ["200", ref("Bill")], refusals: ["BILL_NOT_FOUND"] },
	billQuote: {
		summary: "Quote a bill, with a coupon's discount if one is given",
		description: "The quote holds its amount and discount for 15 minutes; pay it with POST /bills/pay. A coupon's caps are checked here and taken at payment.",
		ok: ["201", ref("BillQuote")], refusals: ["BILL_NOT_FOUND", "BILL_ALREADY_PAID", "COUPON_NOT_FOUND", "COUPON_NOT_APPLICABLE", "COUPON_EXHAUSTED"],
	},
	billPay: {
		summary: "Pay a quoted bill from one of the caller's accounts",
		description: "One ledger commit: the discount from the promotion account into the caller's account, and the whole bill to the biller. Then the biller is told; a biller that refuses gets nothing: the money comes back (status returned). The same Idempotency-Key and body replay the first answer, a refusal too.",
		ok: ["201", ref("BillPayment")], idempotent: true,
		refusals: ["QUOTE_NOT_FOUND", "QUOTE_EXPIRED", "QUOTE_USED", "BILL_ALREADY_PAID", "COUPON_EXHAUSTED", "COUPON_NOT_APPLICABLE", "ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "CURRENCY_MISMATCH", "INSUFFICIENT_FUNDS", "LIMIT_EXCEEDED", "LINKED_TRANSFER_FAILED"],
	},
	billPayments: { summary: "The caller's bill payments, newest first", ok: ["200", ref("BillPaymentPage")] },
	billPayment: { summary: "One of the caller's bill payments", ok: ["200", ref("BillPayment")], refusals: ["BILL_PAYMENT_NOT_FOUND"] },
	saveBill: {
		summary: "Save a bill (biller and reference) with a nickname, to be reminded before it is due",
		description: "Saving the same biller and reference again answers the saved bill. At most 50 per customer.",
		ok: ["201", ref("SavedBill")], refusals: ["BILL_NOT_FOUND", "SAVED_BILL_LIMIT_REACHED"],
	},
	savedBills: { summary: "The caller's saved bills with their current bills", ok: ["200", ref("SavedBillList")] },
	removeSavedBill: { summary: "Forget a saved bill", ok: ["200", anyObject], refusals: ["SAVED_BILL_NOT_FOUND"] },
	adminCreateCoupon: {
		summary: "Create a coupon: a discount code with a validity window and caps (audited)",
		description: "percent (percentBps, optionally maxDiscountMinor) or fixed (amountMinor); the same code and fields again answer the coupon made first.",
		ok: ["201", ref("Coupon")], roles: ["admin"], refusals: ["COUPON_CODE_TAKEN"],
	},
	adminCoupons: { summary: "Coupons, newest first", ok: ["200", ref("CouponPage")], roles: ["admin", "support", "auditor"] },
	addPaymentMethod: {
		summary: "Save a card (for top-ups) or a bank account (for payouts)",
		description: "The card's number and security code go to the provider once and are kept nowhere: we keep the provider's token, sealed, and a hint (brand, last 4, expiry). The same card or account again answers the saved method (200), refreshed. At most 10 saved; at most 20 instruments sent to the provider an hour (429 TOO_MANY_ATTEMPTS, against card testing).",
		ok: ["201", ref("PaymentMethod")], alsoOk: { "200": { description: "The same card or account was saved already", schema: ref("PaymentMethod") } },
		refusals: ["CARD_EXPIRED", "PROVIDER_DECLINED", "PAYMENT_METHOD_LIMIT_REACHED", "TOO_MANY_ATTEMPTS"],
	},
	listPaymentMethods: { summary: "The caller's saved payment methods, newest first", ok: ["200", ref("PaymentMethodList")] },
	getPaymentMethod: { summary: "One of the caller's payment methods (also a removed one)", ok: ["200", ref("PaymentMethod")], refusals: ["PAYMENT_METHOD_NOT_FOUND"] },
	removePaymentMethod: { summary: "Remove a saved payment method: it can no longer be used", ok: ["200", ref("PaymentMethod")], refusals: ["PAYMENT_METHOD_NOT_FOUND"] },
	adminDisableCoupon: { summary: "Disable a coupon (audited); quotes made with it can no longer be paid", ok: ["200", ref("Coupon")], roles: ["admin"], refusals: ["COUPON_NOT_FOUND"] },
};

/** Tags by area: the first path segment under /api/v1. */
const TAGS: Record<string, string> = {
	auth: "Registration, sessions and MFA",
	kyc: "Identity documents for a higher tier",
	me: "The caller's profile",
	accounts: "The caller's accounts and their entries",
	transfers: "Transfers between accounts",
	payments: "Top-ups, payouts and P2P payments",
	providers: "Payment providers' signed callbacks",
	fx: "Rates, quotes and conversions",
	fees: "What a payment costs: quotes by price list",
	disputes: "Disputes (chargebacks) of card top-ups",
	topups: "Refunds of the caller's top-ups back through their provider",
	admin: "Support and administration (by role)",
	notifications: "The caller's in-app notifications",
	webhooks: "The caller's webhook endpoints and deliveries",
	audit: "The hash-chained audit log",
	reports: "Statements and summaries",
	transactions: "The caller's transactions across accounts, with categories",
	insights: "Monthly spending and insights",
	requests: "Payment requests between users",
	payees: "The caller's saved payees",
	schedules: "Standing orders: scheduled and recurring payments",
	bills: "Bills: billers, lookups, quotes with coupons, payments, saved bills",
	"payment-methods": "The caller's saved cards and bank accounts (provider tokens, never the number)",
};

const idempotencyHeader = {
	name: "Idempotency-Key", in: "header", required: true,
	description: "Per user; the same key and body replay the first answer, the same key with another body is 409 IDEMPOTENCY_MISMATCH",
	schema: { type: "string", pattern: "^[\\x21-\\x7e]{1,128}$" },
};
const signatureHeader = {
	name: "Paymesh-Signature", in: "header", required: true,
	description: "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">` under the provider webhook secret",
	schema: { type: "string", maxLength: 512 },
};

/** Error responses by status, each listing the codes this operation can answer. */
function errorResponses(codes: Map<string, Set<string>>): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const status of [...codes.keys()].sort()) {
		const list = [...(codes.get(status) ?? [])].join(", ");
		const retry = status === "429" || status === "503";
		out[status] = {
			description: list,
			...(retry ? { headers: { "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 1 } } } } : {}),
			content: json(ref("Error")),
		};
	}
	return out;
}

interface Route {
	method: string;
	/** The OpenAPI path, e.g. /api/v1/accounts/{id}. */
	path: string;
	pathParams: string[];
	secured: boolean;
}

function route(key: string, prefix: string, secured: boolean): Route {
	const [method, path] = key.split(" ");
	if (!method || !path) throw new Error(`openapi: bad alias ${key}`);
	const pathParams = [...path.matchAll(/:(\w+)/g)].map(m => m[1] ?? "");
	return { method: method.toLowerCase(), path: `${prefix}${path.replace(/:(\w+)/g, "{$1}")}`, pathParams, secured };
}

function tagOf(path: string): string {
	const area = path.split("/")[3] ?? "";
	if (!(area in TAGS)) throw new Error(`openapi: no tag for ${path}`);
	return area;
}

function pascal(name: string): string {
	return name.charAt(0).toUpperCase() + name.slice(1);
}

/** Splits a params schema into path, query and body parameters for a route. */
function parameters(name: string, params: object, r: Route, schemas: Record<string, JsonSchema>, options: ConvertOptions) {
	const rules = Object.entries(params).filter(([k]) => !k.startsWith("$$"));
	const inPath = rules.filter(([k]) => r.pathParams.includes(k));
	for (const p of r.pathParams) if (!inPath.some(([k]) => k === p)) throw new Error(`openapi: ${name} has no rule for path parameter ${p}`);
	const rest = rules.filter(([k]) => !r.pathParams.includes(k));
	const plain = { ...options, optionalAcceptsNull: false };
	const out: unknown[] = inPath.map(([k, rule]) => ({ name: k, in: "path", required: true, schema: ruleToJsonSchema(rule, plain, `${name}.${k}`) }));
	let requestBody: unknown;
	if (r.method === "get") {
		for (const [k, rule] of rest) {
			out.push({ name: k, in: "query", ...(isRequired(rule) ? { required: true } : {}), schema: ruleToJsonSchema(rule, plain, `${name}.${k}`) });
		}
	} else if (rest.length > 0) {
		const body = Object.fromEntries([...Object.entries(params).filter(([k]) => k.startsWith("$$")), ...rest]);
		const schemaName = `${pascal(name)}Request`;
		schemas[schemaName] = paramsToJsonSchema(body, options, name);
		requestBody = { required: true, content: json(ref(schemaName)) };
	}
	return { parameters: out, requestBody };
}

function operation(name: ActionName, r: Route, schemas: Record<string, JsonSchema>, options: ConvertOptions): Record<string, unknown> {
	const doc = OPS[name];
	const { parameters: params, requestBody } = parameters(name, v1Actions[name].params, r, schemas, options);
	if (doc.idempotent) params.push(idempotencyHeader);

	const codes = new Map<string, Set<string>>();
	const add = (status: string | number, code: string) => {
		const k = String(status);
		codes.set(k, (codes.get(k) ?? new Set()).add(code));
	};
	add(400, "VALIDATION_ERROR");
	const hasBody = r.method !== "get";
	if (hasBody) {
		add(400, "MALFORMED_JSON");
		add(413, "PAYLOAD_TOO_LARGE");
	}
	if (r.secured) add(401, "UNAUTHORIZED");
	if (doc.roles) add(403, "FORBIDDEN");
	if (r.pathParams.length > 0) add(404, "NOT_FOUND");
	if (doc.idempotent) {
		add(400, "IDEMPOTENCY_KEY_REQUIRED");
		add(409, "IDEMPOTENCY_MISMATCH");
	}
	for (const code of doc.refusals ?? []) add(REFUSALS[code], code);
	add(429, "RATE_LIMITED");
	add(503, "SERVICE_UNAVAILABLE");

	const [okStatus, okSchema] = doc.ok;
	const responses: Record<string, unknown> = {
		[okStatus]: okSchema === null
			? { description: "Done, no content" }
			: doc.pdf
				? { description: "OK", content: { "application/pdf": { schema: okSchema } } }
				: { description: "OK", content: { ...json(okSchema), ...(doc.csv ? { "text/csv": { schema: { type: "string" } } } : {}) } },
	};
	for (const [status, extra] of Object.entries(doc.alsoOk ?? {})) responses[status] = { description: extra.description, content: json(extra.schema) };
	Object.assign(responses, errorResponses(codes));

	const roles = doc.roles ? `Roles: ${doc.roles.join(", ")}.` : "";
	const description = [doc.description ?? "", roles].filter(Boolean).join(" ");
	return {
		operationId: name,
		summary: doc.summary,
		...(description ? { description } : {}),
		tags: [tagOf(r.path)],
		security: r.secured ? [{ bearerAuth: [] }] : [],
		...(params.length > 0 ? { parameters: params } : {}),
		...(requestBody ? { requestBody } : {}),
		responses,
	};
}

function isActionName(name: string): name is ActionName {
	return name in v1Actions;
}

/** The provider callback is a raw route (HMAC over the body), not a gateway action; its body is payments.providerCallback's params. */
function providerCallbackOperation(schemas: Record<string, JsonSchema>, options: ConvertOptions): [Route, Record<string, unknown>] {
	const r = route(PROVIDER_CALLBACK_ROUTE, "/api/v1/providers", false);
	const { provider, ...body } = callbackParams;
	schemas["ProviderCallbackRequest"] = paramsToJsonSchema(body, options, "providerCallback");
	const codes = new Map<string, Set<string>>([
		["400", new Set(["VALIDATION_ERROR", "MALFORMED_JSON"])], ["401", new Set(["INVALID_SIGNATURE"])], ["404", new Set(["NOT_FOUND", "PAYMENT_NOT_FOUND"])],
		["413", new Set(["PAYLOAD_TOO_LARGE"])], ["429", new Set(["RATE_LIMITED"])], ["503", new Set(["SERVICE_UNAVAILABLE"])],
	]);
	return [r, {
		operationId: "providerCallback",
		summary: "A provider's asynchronous confirmation",
		description: "Signed with HMAC-SHA256, no bearer token; a missing, stale (over 300 s) or wrong signature is 401 INVALID_SIGNATURE. Each eventId counts once; a notice about a payment that is already final changes nothing.",
		tags: ["providers"],
		security: [],
		parameters: [{ name: "provider", in: "path", required: true, schema: ruleToJsonSchema(provider, { ...options, optionalAcceptsNull: false }, "providerCallback.provider") }, signatureHeader],
		requestBody: { required: true, content: json(ref("ProviderCallbackRequest")) },
		responses: { "200": { description: "Received", content: json(ref("ProviderCallbackResult")) }, ...errorResponses(codes) },
	}];
}

export interface GeneratedOpenApi {
	document: Record<string, unknown>;
	/** Constraints in the params schemas that fastest-validator does not enforce, left out of the document (`action.field: key`). */
	ignored: string[];
}

export function buildOpenApi(): GeneratedOpenApi {
	const ignored: string[] = [];
	const options: ConvertOptions = { refs: REFS, typeRefs: { uuid: "#/components/schemas/Uuid" }, onIgnored: (path, key) => ignored.push(`${path}: ${key}`) };
	const schemas: Record<string, JsonSchema> = { ...RESPONSE_SCHEMAS };
	const paths: Record<string, Record<string, unknown>> = {};
	const put = (r: Route, op: Record<string, unknown>) => {
		paths[r.path] = { ...paths[r.path], [r.method]: op };
	};
	const tables: [Record<string, string>, string, boolean][] = [[PUBLIC_ALIASES, "/api/v1/auth", false], [KYC_UPLOAD_ALIASES, "/api/v1/kyc", true], [PRIVATE_ALIASES, "/api/v1", true]];
	for (const [aliases, prefix, secured] of tables) {
		for (const [key, action] of Object.entries(aliases)) {
			const name = action.replace(/^api\./, "");
			if (!isActionName(name)) throw new Error(`openapi: ${key} maps to ${action}, which is not a gateway action`);
			const r = route(key, prefix, secured);
			put(r, operation(name, r, schemas, options));
		}
	}
	const [cbRoute, cbOp] = providerCallbackOperation(schemas, options);
	put(cbRoute, cbOp);

	const document = {
		openapi: "3.1.0",
		info: {
			title: "Paymesh API", version: "1.0.0",
			description: "Wallets, transfers and a double-entry ledger. Amounts are integer minor units. Every error is `{ \"error\": { \"code\", \"message\", \"details\"? } }`; see docs/api.md.",
		},
		// The gateway serves this document beside the API, so the API is at the same origin.
		servers: [{ url: "/" }],
		tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
		components: {
			securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
			schemas,
		},
		paths,
	};
	return { document, ignored };
}

let built: Record<string, unknown> | undefined;

/** The document (built once: it depends only on the code). */
export function openApiDocument(): Record<string, unknown> {
	built ??= buildOpenApi().document;
	return built;
}
