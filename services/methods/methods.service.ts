/**
 * The methods service: a customer's saved cards and bank accounts (issue 18 item 6). Thin:
 * it checks the instrument (rules.ts), sends it once to its provider's vault
 * (providers.tokenize), and keeps only what comes back: the token, sealed under SECRETS_KEY
 * (lib/secret-box.ts) and bound to its row, and the display hint (store.ts). Payments ask it
 * for a method's token when a top-up names a saved card or a payout a saved bank account
 * (methods.resolve, never routed to the gateway).
 *
 * The card number and security code pass through this service's memory on their way to
 * the provider and are written nowhere: not to the database, not to a log line, not into
 * an error (docs/wallet.md).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { toClientError } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { call } from "../../lib/contract.ts";
import type { Infer } from "../../lib/schema.ts";
import { defineService } from "../../lib/service.ts";
import { nodeSecretKeyring, open, seal, type SecretKeyring } from "../../lib/secret-box.ts";
import { createCounterStore, type CounterStore } from "../../lib/ratelimit.ts";
import { dbMixin, type DbService } from "../../mixins/db.mixin.ts";
import { methods } from "../../contracts/methods.ts";
import { providers } from "../../contracts/providers.ts";
import { checkNewBankAccount, checkNewCard, checkUse, METHODS_PER_CUSTOMER_MAX, methodView, providerFor, tokenContext } from "./rules.ts";
import * as store from "./store.ts";

type MethodsThis = DbService & { secretKeys: SecretKeyring; counters: CounterStore; resealTokens(): Promise<number> };

/**
 * Instruments a customer may send to the providers an hour, declined or not: a card
 * tester trying stolen numbers gets 429 after this many, a customer saving their cards
 * (at most 10 kept) never meets it. The count is kept like the gateway's rate limits
 * (Redis with REDIS_URL); when it cannot be read, saving is refused (503), not let through.
 */
const TOKENIZE_PER_HOUR_MAX = 20;
const TOKENIZE_WINDOW_MS = 3_600_000;

/** Tokens sealed again per batch at start, and batches at most per start. */
const RESEAL_BATCH_MAX = 200;
const RESEAL_BATCHES_MAX = 1_000;

const notFound = () => toClientError({ code: "PAYMENT_METHOD_NOT_FOUND", message: "payment method not found" });

export function methodsService(config: Config): ServiceSchema {
	return defineService<MethodsThis>({
		name: "methods",
		mixins: [dbMixin(config, "methods")],
		actions: {
			add: {
				params: methods.add.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.add.params>>) {
					const { userId, card, bankAccount, label } = ctx.params;
					if ((card == null) === (bankAccount == null)) throw toClientError({ code: "VALIDATION_ERROR", message: "give a card or a bankAccount (one of the two)", details: { fields: ["card", "bankAccount"] } });
					const now = new Date();
					const kind = card ? "card" : "bank_account";
					const refused = card ? checkNewCard(card, now) : checkNewBankAccount(bankAccount ?? { iban: "" });
					if (refused) throw toClientError(refused);
					// The limit is checked when saving, under the customer's lock: the same instrument saved before is answered also when the list is full.
					const tries = await this.counters.hit(`tokenize:${userId}`, TOKENIZE_WINDOW_MS);
					if (tries.count > TOKENIZE_PER_HOUR_MAX) {
						throw toClientError({ code: "TOO_MANY_ATTEMPTS", message: "too many cards or accounts tried, try again later", details: { retryAfterS: Math.max(1, Math.ceil(tries.resetMs / 1000)) } });
					}
					const provider = providerFor(kind);
					const out = await call(ctx, providers.tokenize, card ? { provider, card } : { provider, bankAccount: bankAccount ?? { iban: "", holderName: "" } });
					if (!out.ok) throw toClientError({ code: "PROVIDER_DECLINED", message: out.reason });
					const saved = await store.saveMethod(this.knex, {
						id: uuidv7(), userId, kind, provider, brand: out.hint.brand, last4: out.hint.last4, expMonth: out.hint.expMonth, expYear: out.hint.expYear,
						country: out.hint.country, holderName: (card ?? bankAccount)?.holderName ?? "", label: label ?? null, fingerprint: out.fingerprint, now,
					}, id => seal(this.secretKeys, out.token, tokenContext(id)));
					if (saved === "limit") throw limitReached();
					return { ...methodView(saved.state, now), created: saved.created };
				},
			},
			list: {
				params: methods.list.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.list.params>>) {
					const now = new Date();
					return { items: (await store.listMethods(this.knex, ctx.params.userId)).map(m => methodView(m, now)) };
				},
			},
			get: {
				params: methods.get.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.get.params>>) {
					const found = await store.getMethod(this.knex, ctx.params.userId, ctx.params.id);
					if (!found) throw notFound();
					return methodView(found.state, new Date());
				},
			},
			remove: {
				params: methods.remove.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.remove.params>>) {
					const now = new Date();
					const removed = await store.removeMethod(this.knex, ctx.params.userId, ctx.params.id, now);
					if (!removed) throw notFound();
					return methodView(removed, now);
				},
			},
			/** Erasure on request (lib/erasure.ts): the customer's saved methods are deleted, tokens and all. */
			erase: {
				params: methods.erase.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.erase.params>>) {
					return { erased: await store.eraseMethods(this.knex, ctx.params.userId) };
				},
			},
			resolve: {
				params: methods.resolve.params,
				async handler(this: MethodsThis, ctx: Context<Infer<typeof methods.resolve.params>>) {
					const p = ctx.params;
					const found = await store.getMethod(this.knex, p.userId, p.id);
					const refused = checkUse(found?.state ?? null, p.userId, p.use, new Date(), p.inFlight ?? false);
					if (refused) throw toClientError(refused);
					if (!found) throw notFound();
					const token = open(this.secretKeys, found.tokenSealed, tokenContext(found.state.id));
					// A token that does not open (another key, a copied row) is a fault of this node's keys, not the customer's.
					if (token === null) throw new Error(`the token of payment method ${found.state.id} does not open with SECRETS_KEY (or SECRETS_KEYS_PREVIOUS)`);
					return { id: found.state.id, kind: found.state.kind, provider: found.state.provider, token };
				},
			},
		},
		methods: {
			/**
			 * Tokens sealed under a retired key (SECRETS_KEYS_PREVIOUS) sealed again under the
			 * current one, a batch at a time; one that opens with no key is left as it is (and
			 * a payment using it fails, never silently).
			 */
			async resealTokens(this: MethodsThis): Promise<number> {
				const current = this.secretKeys[0];
				if (!current) return 0;
				let total = 0;
				let after: string | null = null;
				for (let batch = 0; batch < RESEAL_BATCHES_MAX; batch++) {
					const rows = await store.tokensToReseal(this.knex, `sb1.${current.id}.`, after, RESEAL_BATCH_MAX);
					for (const r of rows) {
						const token = open(this.secretKeys, r.token_sealed, tokenContext(r.id));
						if (token !== null && (await store.resealToken(this.knex, r.id, r.token_sealed, seal(this.secretKeys, token, tokenContext(r.id))))) total++;
					}
					if (rows.length < RESEAL_BATCH_MAX) break;
					after = rows.at(-1)?.id ?? null;
				}
				return total;
			},
		},
		created(this: MethodsThis) {
			// SECRETS_KEY (or a single node's DATA_DIR/secrets.key); with a transporter and none, the node does not start.
			this.secretKeys = nodeSecretKeyring(config);
			this.counters = createCounterStore(config.redisUrl, `${config.namespace}:methods:`);
		},
		async stopped(this: MethodsThis) {
			await this.counters.close();
		},
		started(this: MethodsThis) {
			// Tokens sealed under a retired SECRETS_KEY: sealed again, in the background.
			void this.resealTokens()
				.then(n => n > 0 && this.logger.info("payment method tokens sealed with the current SECRETS_KEY", { count: n }))
				.catch((err: Error) => this.logger.warn("sealing stored payment method tokens failed; the next start tries again", { error: err.message }));
		},
	});
}

function limitReached() {
	return toClientError({ code: "PAYMENT_METHOD_LIMIT_REACHED", message: `you can save at most ${METHODS_PER_CUSTOMER_MAX} payment methods; remove one first` });
}
