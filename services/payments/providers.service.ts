/**
 * The provider adapters as Moleculer actions, three per provider
 * (`providers.<name>.charge`, `.payout`, `.refund`), so Moleculer's circuit breaker
 * keeps one state per provider: after enough technical failures a provider's circuit
 * opens and payments to it fail fast, while the other providers keep working.
 */
import { Errors, type ActionSchema, type Context, type ServiceBroker, type ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import type { Infer } from "../../lib/schema.ts";
import { providers, type payoutParams, type refundParams } from "../../contracts/providers.ts";
import { gatewayServer } from "../../lib/gateway-server.ts";
import { defineService } from "../../lib/service.ts";
import { seededRandom } from "../../lib/random.ts";
import { signatureHeader } from "../../lib/signature.ts";
import { ProviderError, PROVIDERS, SimulatedProvider, type ProviderCallback, type ProviderName } from "./providers.ts";
import { SettlementJournal } from "./providers-journal.ts";
import { SimulatedVault } from "./providers-vault.ts";

const CALLBACK_ATTEMPTS_MAX = 5;
const CALLBACK_RETRY_DELAY_MS = 100;
const CALLBACK_RETRY_DELAY_MS_MAX = 2_000;
const CALLBACK_TIMEOUT_MS = 5_000;


/** Technical failures surface as retryable 502s; the breaker counts errors of 500 and up. */
function asMoleculerError(err: unknown): never {
	if (err instanceof ProviderError) throw new Errors.MoleculerRetryableError(err.message, 502, "PROVIDER_ERROR");
	throw err;
}

/**
 * The configured callback URL, else this node's own gateway (the embedded default, where
 * PORT may be 0 and only the listening socket knows the port), else PORT on 127.0.0.1.
 */
function callbackBase(config: Config, broker: ServiceBroker): string {
	if (config.payments.callbackUrl) return config.payments.callbackUrl;
	const addr = gatewayServer(broker)?.address();
	const port = addr && typeof addr === "object" ? addr.port : config.port;
	return `http://127.0.0.1:${port}/api/v1/providers`;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/**
 * Delivers a provider's callbacks to the gateway the way a provider does: signed, one after
 * another, each retried with backoff and then given up (the payment's resume sweep then asks
 * the provider for the status instead).
 */
function callbackSender(config: Config, provider: ProviderName, base: () => string, logger: { warn(msg: string, o: object): void }, isStopped: () => boolean) {
	async function post(cb: ProviderCallback): Promise<boolean> {
		const url = `${base().replace(/\/$/, "")}/${provider}/callbacks`;
		const body = JSON.stringify(cb);
		for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS_MAX && !isStopped(); attempt++) {
			try {
				const res = await fetch(url, {
					method: "POST", body, signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
					headers: { "Content-Type": "application/json", "Paymesh-Signature": signatureHeader(config.payments.webhookSecret, body) },
				});
				await res.body?.cancel();
				if (res.ok) return true;
				// A refused signature or a malformed callback will not get better by retrying.
				if (res.status >= 400 && res.status < 500 && res.status !== 429) return false;
			} catch {
				// Network error or timeout: retried below.
			}
			await sleep(Math.min(CALLBACK_RETRY_DELAY_MS * 2 ** (attempt - 1), CALLBACK_RETRY_DELAY_MS_MAX));
		}
		return false;
	}
	return (callbacks: ProviderCallback[]) => {
		void (async () => {
			await sleep(config.payments.providerLatencyMs);
			for (const cb of callbacks) {
				if (!(await post(cb)) && !isStopped()) logger.warn("provider callback not delivered; the payment resume sweep will ask for the status", { provider, paymentId: cb.paymentId, eventId: cb.eventId });
			}
		})();
	};
}

type ProvidersThis = { logger: { warn(msg: string, o: object): void }; broker: ServiceBroker };

export function providersService(config: Config): ServiceSchema {
	const seed = config.payments.providerSeed;
	let stopped = false;
	const adapters = new Map<ProviderName, SimulatedProvider>();
	const journal = new SettlementJournal(config.payments.settlementDir);
	// Saved cards and bank accounts (payment methods): stateless tokens under a key of the simulation's own.
	const vault = new SimulatedVault(config.payments.webhookSecret);
	const createAdapters = (logger: { warn(msg: string, o: object): void }, base: () => string) => PROVIDERS.forEach((name, i) => {
		const random = seed === 0 ? Math.random : seededRandom(seed + i);
		adapters.set(name, new SimulatedProvider(name, {
			latencyMs: config.payments.providerLatencyMs, failureRate: config.payments.providerFailurePercent / 100, random, vault,
			timeoutRate: config.payments.providerTimeoutPercent / 100, hangMs: config.payments.providerTimeoutMs * 2,
			refundDeclineRate: config.payments.refundDeclinePercent / 100,
			record: op => journal.record(name, op),
			...(config.payments.webhookProviders.includes(name)
				? {
					notify: callbackSender(config, name, base, logger, () => stopped),
					duplicateRate: config.payments.callbackDuplicatePercent / 100, reorderRate: config.payments.callbackReorderPercent / 100,
				}
				: {}),
		}));
	});
	const circuitBreaker = {
		enabled: true, threshold: 0.5, minRequestCount: config.payments.breakerRequestsMin,
		windowTime: config.payments.breakerWindowS, halfOpenTime: config.payments.breakerHalfOpenMs,
		check: (err: Error) => (err as Errors.MoleculerError).code >= 500,
	};
	const adapter = (name: ProviderName) => adapters.get(name) as SimulatedProvider;
	const actions: Record<string, ActionSchema<ProvidersThis>> = {
		// The simulation's failure rate, changeable at run time for demos and tests.
		simulate: {
			params: providers.simulate.params,
			handler(ctx: Context<Infer<typeof providers.simulate.params>>) {
				const opts = adapter(ctx.params.provider).opts;
				opts.failureRate = ctx.params.failurePercent / 100;
				if (ctx.params.refundDeclinePercent != null) opts.refundDeclineRate = ctx.params.refundDeclinePercent / 100;
				return { provider: ctx.params.provider, failurePercent: ctx.params.failurePercent, refundDeclinePercent: Math.round((opts.refundDeclineRate ?? 0) * 100) };
			},
		},
		settlement: {
			params: providers.settlement.params,
			async handler(ctx: Context<Infer<typeof providers.settlement.params>>) {
				return journal.settlement(ctx.params.provider, ctx.params.day, { seed: config.payments.providerSeed, breakRate: config.payments.settlementBreakPermille / 1_000 });
			},
		},
		// A customer's card (provider card) or bank account (provider bank), taken once: a token and a hint back, the number kept nowhere.
		tokenize: {
			params: providers.tokenize.params,
			async handler(ctx: Context<Infer<typeof providers.tokenize.params>>) {
				const { provider, card, bankAccount } = ctx.params;
				await new Promise(r => setTimeout(r, config.payments.providerLatencyMs));
				if (provider === "card" && card && !bankAccount) return vault.tokenize({ provider, kind: "card", card }, new Date());
				if (provider === "bank" && bankAccount && !card) return vault.tokenize({ provider, kind: "bank_account", bankAccount }, new Date());
				throw new Errors.ValidationError("a card goes to provider card, a bank account to provider bank (one of the two)", "VALIDATION_ERROR", [{ field: card ? "card" : "bankAccount", type: "oneOf" }]);
			},
		},
	};
	type OpParams = Infer<typeof payoutParams> & Infer<typeof refundParams>;
	const ops = [
		{ op: "charge", run: (a: SimulatedProvider, p: OpParams) => a.charge(p) },
		{ op: "payout", run: (a: SimulatedProvider, p: OpParams) => a.payout(p) },
		{ op: "refund", run: (a: SimulatedProvider, p: OpParams) => a.refund(p) },
	] as const;
	for (const name of PROVIDERS) {
		for (const { op, run } of ops) {
			// providers.<name>.<op>: the contract's name without the service's prefix.
			actions[`${name}.${op}`] = {
				params: providers[name][op].params,
				circuitBreaker,
				async handler(ctx: Context<OpParams>) {
					try {
						return await run(adapter(name), ctx.params);
					} catch (err) {
						return asMoleculerError(err);
					}
				},
			};
		}
	}
	return defineService<ProvidersThis>({
		name: "providers",
		actions,
		created(this: ProvidersThis) {
			createAdapters(this.logger, () => callbackBase(config, this.broker));
		},
		async stopped() {
			stopped = true;
			await journal.close();
		},
	});
}
