/**
 * The users service: profiles, preferences and the KYC tier. The tier's per-transfer and
 * per-day limits (limits.ts) travel with each transfer to the ledger, which enforces them
 * in the same transaction as the money. A profile's address counts only once verified
 * (auth mails a code): only then is the user found by it as a P2P recipient, and only
 * then may the tier go above 1.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import { erasedAddress, normalizeEmail } from "../../lib/email.ts";
import { createCounterStore, type CounterStore } from "../../lib/ratelimit.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import * as P from "./params.ts";
import * as store from "./store.ts";
import { defineService } from "../../lib/service.ts";
import { users, type DocumentView, type Profile } from "../../contracts/users.ts";
import { createHash } from "node:crypto";
import { uuidv7 } from "../../lib/ids.ts";
import { documentStoreFor, type DocumentStore } from "../../lib/document-store.ts";
import { decisionProblem, PENDING_DOCUMENTS_MAX, sniffDocumentType } from "./kyc.ts";
import { ledger } from "../../contracts/ledger.ts";
import { call } from "../../lib/contract.ts";
import { STAFF_ACTIONS, staffAction } from "../../lib/staff-action.ts";

/**
 * Recipients by e-mail a sender may fail to find per window: past it, 429. A found
 * recipient does not count, so paying people by e-mail is not limited; guessing is (an
 * address that finds nobody and one whose owner has no account in the currency answer the
 * same and count the same).
 */
export const RECIPIENT_MISSES_MAX = 20;
export const RECIPIENT_MISS_WINDOW_MS = 3_600_000;

type UsersThis = DbService & { counters: CounterStore; documents: DocumentStore };

/**
 * Sets a user's tier, in the profile (a tier above 1 needs a verified address) and in the
 * ledger, which holds P2P payments to it in the owner's own batch. Should the ledger's call
 * fail the caller retries; setting a tier twice is harmless.
 */
async function applyTier(host: UsersThis, ctx: Context, id: string, tier: number): Promise<Profile> {
	const { row, refused } = await store.setTier(host.knex, id, tier);
	if (refused) throw toClientError({ code: "EMAIL_NOT_VERIFIED", message: "a tier above 1 needs a verified e-mail address" });
	if (!row) return notFound();
	await call(ctx, ledger.owners.setTier, { ownerId: id, tier });
	await ctx.broker.cacher?.clean("users.tier:**");
	return profileView(row);
}

/** Documents a list shows at most (newest first; the review queue oldest first). */
const DOCUMENTS_LIST_MAX = 100;

function documentView(d: store.DocumentRow): DocumentView {
	return {
		id: d.id, userId: d.user_id, kind: d.kind, contentType: d.content_type, sizeBytes: d.size_bytes, sha256: d.sha256, requestedTier: d.requested_tier,
		status: d.status, decidedBy: d.decided_by, decidedAt: d.decided_at?.toISOString() ?? null, note: d.note, createdAt: d.created_at.toISOString(),
	};
}

function documentNotFound(): never {
	throw toClientError({ code: "DOCUMENT_NOT_FOUND", message: "document not found" });
}

function profileView(r: store.ProfileRow): Profile {
	return {
		id: r.user_id, email: r.email, name: r.name, kycTier: r.kyc_tier, preferences: r.preferences as Profile["preferences"],
		emailVerified: r.email_verified_at !== null, createdAt: r.created_at.toISOString(),
	};
}

function notFound(): never {
	throw toClientError({ code: "USER_NOT_FOUND", message: "user not found" });
}

export function usersService(config: Config): ServiceSchema {
	return defineService<UsersThis>({
		name: "users",
		mixins: [dbMixin(config, "users")],
		actions: {
			create: {
				params: users.create.params,
				async handler(this: UsersThis, ctx: Context<P.CreateParams>) {
					const row = await store.insertProfile(this.knex, { userId: ctx.params.userId, email: normalizeEmail(ctx.params.email), name: ctx.params.name });
					if (!row) throw toClientError({ code: "EMAIL_TAKEN", message: "this user has a profile" });
					return profileView(row);
				},
			},
			get: {
				params: users.get.params,
				async handler(this: UsersThis, ctx: Context<{ id: string }>) {
					const row = await store.byId(this.knex, ctx.params.id);
					return row ? profileView(row) : notFound();
				},
			},
			/** Several profiles in one query; ids without a profile are left out. */
			getMany: {
				params: users.getMany.params,
				async handler(this: UsersThis, ctx: Context<P.GetManyParams>) {
					return { items: (await store.byIds(this.knex, ctx.params.ids)).map(profileView) };
				},
			},
			update: {
				params: users.update.params,
				async handler(this: UsersThis, ctx: Context<P.UpdateParams>) {
					const row = await store.update(this.knex, ctx.params.id, ctx.params.name ?? null, ctx.params.preferences ?? {});
					return row ? profileView(row) : notFound();
				},
			},
			setTier: {
				params: users.setTier.params,
				async handler(this: UsersThis, ctx: Context<P.SetTierParams>) {
					// A staff member's change is in the audit log before it is made (lib/staff-action.ts).
					return staffAction(ctx, ctx.params, STAFF_ACTIONS.setTier, ctx.params.id, { tier: ctx.params.tier }, () => applyTier(this, ctx, ctx.params.id, ctx.params.tier));
				},
			},
			/** The user who verified this address; an unverified address finds nobody. */
			findByEmail: {
				params: users.findByEmail.params,
				async handler(this: UsersThis, ctx: Context<{ email: string }>) {
					const row = await store.verifiedByEmail(this.knex, normalizeEmail(ctx.params.email));
					return row ? { id: row.user_id } : notFound();
				},
			},
			/**
			 * A P2P recipient by e-mail: the verified owner's first active account in the currency.
			 * Every miss (nobody verified the address, or its owner has no such account) answers
			 * RECIPIENT_NOT_FOUND alike and counts against the sender: RECIPIENT_MISSES_MAX per hour,
			 * then 429. Counted before the lookup, so parallel guesses see each other; a hit is taken back.
			 */
			findRecipient: {
				params: users.findRecipient.params,
				async handler(this: UsersThis, ctx: Context<P.FindRecipientParams>) {
					const key = `recipient-miss:${ctx.params.requesterId}`;
					const hit = await this.counters.hit(key, RECIPIENT_MISS_WINDOW_MS);
					if (hit.count > RECIPIENT_MISSES_MAX) {
						throw toClientError({ code: "TOO_MANY_ATTEMPTS", message: "too many recipients not found, try again later", details: { retryAfterS: Math.max(1, Math.ceil(hit.resetMs / 1000)) } });
					}
					const owner = await store.verifiedByEmail(this.knex, normalizeEmail(ctx.params.email));
					const list = owner ? await call(ctx, ledger.accounts.list, { ownerId: owner.user_id }) : { items: [] };
					const account = list.items.find(a => a.currency === ctx.params.currency && a.status === "active");
					if (!account) throw toClientError({ code: "RECIPIENT_NOT_FOUND", message: `no ${ctx.params.currency} account for that recipient` });
					await this.counters.undo(key);
					return { accountId: account.id };
				},
			},
			/**
			 * Erasure on request (docs/identity.md): the profile keeps its id, which the ledger's
			 * append-only history refers to, and loses everything personal; tier 0, so it moves no
			 * money. Idempotent.
			 */
			erase: {
				params: users.erase.params,
				async handler(this: UsersThis, ctx: Context<{ id: string }>) {
					if (!(await store.eraseProfile(this.knex, ctx.params.id, erasedAddress(ctx.params.id)))) return notFound();
					await call(ctx, ledger.owners.setTier, { ownerId: ctx.params.id, tier: 0 });
					await ctx.broker.cacher?.clean("users.tier:**");
					return { erased: true as const };
				},
			},
			/**
			 * A KYC document (docs/identity.md): at most KYC_DOCUMENT_BYTES_MAX, a PDF, PNG or JPEG
			 * by its content (whatever the client declares must match), stored by the document store
			 * under a new id with its SHA-256; at most PENDING_DOCUMENTS_MAX waiting per user.
			 */
			"kyc.upload": {
				params: users.kyc.upload.params,
				async handler(this: UsersThis, ctx: Context<P.DocumentUploadParams>) {
					const p = ctx.params;
					const bytes = Buffer.from(p.content, "base64");
					if (bytes.length > config.kyc.documentBytesMax) throw toClientError({ code: "DOCUMENT_TOO_LARGE", message: `a document may have ${config.kyc.documentBytesMax} bytes at most` });
					if (sniffDocumentType(bytes) !== p.contentType) throw toClientError({ code: "UNSUPPORTED_DOCUMENT", message: "the content is not the PDF, PNG or JPEG it is declared as" });
					const id = uuidv7();
					await this.documents.put(id, bytes);
					const row = await store.insertDocument(this.knex, {
						id, userId: p.userId, kind: p.kind, contentType: p.contentType, sizeBytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex"), requestedTier: p.requestedTier,
					}, PENDING_DOCUMENTS_MAX).catch(async (err: unknown) => {
						await this.documents.delete(id);
						throw err;
					});
					if (!row) {
						await this.documents.delete(id);
						throw toClientError({ code: "DOCUMENT_LIMIT_REACHED", message: `at most ${PENDING_DOCUMENTS_MAX} documents wait for review at once` });
					}
					return documentView(row);
				},
			},
			"kyc.list": {
				params: users.kyc.list.params,
				async handler(this: UsersThis, ctx: Context<{ userId: string }>) {
					return { items: (await store.documentsOf(this.knex, ctx.params.userId, DOCUMENTS_LIST_MAX)).map(documentView) };
				},
			},
			"kyc.pending": {
				params: users.kyc.pending.params,
				async handler(this: UsersThis) {
					return { items: (await store.pendingDocuments(this.knex, DOCUMENTS_LIST_MAX)).map(documentView) };
				},
			},
			"kyc.content": {
				params: users.kyc.content.params,
				async handler(this: UsersThis, ctx: Context<{ id: string }>) {
					const row = await store.documentById(this.knex, ctx.params.id);
					if (!row) return documentNotFound();
					const bytes = await this.documents.get(row.id);
					if (!bytes) return documentNotFound();
					// What is shown is what was uploaded: a changed file is an error, not a document.
					if (createHash("sha256").update(bytes).digest("hex") !== row.sha256) throw new Error(`document ${row.id} does not match its SHA-256`);
					return { ...documentView(row), content: bytes.toString("base64") };
				},
			},
			"kyc.decide": {
				params: users.kyc.decide.params,
				async handler(this: UsersThis, ctx: Context<P.DocumentDecisionParams>) {
					const p = ctx.params;
					const row = await store.documentById(this.knex, p.id);
					if (!row) return documentNotFound();
					const problem = decisionProblem({ userId: row.user_id, status: row.status }, p.staffId ?? "");
					if (problem) throw toClientError(problem);
					const action = p.approve ? STAFF_ACTIONS.approveDocument : STAFF_ACTIONS.rejectDocument;
					// In the audit log with who decided and why, before it is done (lib/staff-action.ts).
					return staffAction(ctx, p, action, row.user_id, { documentId: row.id, requestedTier: row.requested_tier, sha256: row.sha256 }, async () => {
						// The tier first (it needs a verified address): a refusal leaves the document pending.
						// The service's own change, not the guarded users.setTier (this decision is the staff action).
						if (p.approve) await applyTier(this, ctx, row.user_id, row.requested_tier);
						const decided = await store.decideDocument(this.knex, row.id, p.approve ? "approved" : "rejected", p.staffId ?? "00000000-0000-0000-0000-000000000000", p.note ?? null);
						if (!decided) throw toClientError({ code: "ILLEGAL_TRANSITION", message: "the document was decided meanwhile" });
						return documentView(decided);
					});
				},
			},
			/** Auth proved the address (a mailed code): the profile's address counts from now. */
			markEmailVerified: {
				params: users.markEmailVerified.params,
				async handler(this: UsersThis, ctx: Context<P.MarkEmailVerifiedParams>) {
					const out = await store.markEmailVerified(this.knex, ctx.params.id, normalizeEmail(ctx.params.email));
					if (out === "taken") throw toClientError({ code: "EMAIL_TAKEN", message: "another account has verified this address" });
					if (out === "missing") return notFound();
					return { emailVerified: true as const };
				},
			},
			tier: {
				params: users.tier.params,
				// Read on every transfer: cached, and cleaned when a tier changes.
				cache: { keys: ["id"], ttl: 30 },
				async handler(this: UsersThis, ctx: Context<{ id: string }>) {
					const row = await store.tierOf(this.knex, ctx.params.id);
					return row ? { tier: row.kyc_tier } : notFound();
				},
			},
		},
		created(this: UsersThis) {
			this.counters = createCounterStore(config.redisUrl, `${config.namespace}:users:`);
			this.documents = documentStoreFor(config.kyc);
		},
		async stopped(this: UsersThis) {
			await this.counters.close();
		},
	});
}
