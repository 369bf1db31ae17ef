/**
 * The provider adapters as Moleculer actions, one pair per provider
 * (`providers.<name>.charge`, `providers.<name>.payout`), so Moleculer's circuit breaker
 * keeps one state per provider: after enough technical failures a provider's circuit
 * opens and payments to it fail fast, while the other providers keep working.
 */
import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { Config } from "../../config/index.ts";
import { paramsSchema, type Infer } from "../../lib/schema.ts";
import { seededRandom } from "../../lib/random.ts";
import { ProviderError, PROVIDERS, SimulatedProvider, type ProviderName } from "./providers.ts";

const chargeParams = paramsSchema({ $$strict: true, paymentId: { type: "uuid" }, amountMinor: { type: "number", integer: true, positive: true }, currency: { type: "string", length: 3 } });
const payoutParams = paramsSchema({ $$strict: true, paymentId: { type: "uuid" }, amountMinor: { type: "number", integer: true, positive: true }, currency: { type: "string", length: 3 }, destination: { type: "string", max: 200 } });
const simulateParams = paramsSchema({ $$strict: true, provider: { type: "enum", values: PROVIDERS }, failurePercent: { type: "number", integer: true, min: 0, max: 100 } });

/** Technical failures surface as retryable 502s; the breaker counts errors of 500 and up. */
function asMoleculerError(err: unknown): never {
	if (err instanceof ProviderError) throw new Errors.MoleculerRetryableError(err.message, 502, "PROVIDER_ERROR");
	throw err;
}

export function providersService(config: Config): ServiceSchema {
	const seed = config.payments.providerSeed;
	const adapters = new Map(PROVIDERS.map((name, i) => [name, new SimulatedProvider(name, {
		latencyMs: config.payments.providerLatencyMs, failureRate: config.payments.providerFailurePercent / 100,
		random: seed === 0 ? Math.random : seededRandom(seed + i),
	})]));
	const circuitBreaker = {
		enabled: true, threshold: 0.5, minRequestCount: config.payments.breakerRequestsMin,
		windowTime: config.payments.breakerWindowS, halfOpenTime: config.payments.breakerHalfOpenMs,
		check: (err: Error) => (err as Errors.MoleculerError).code >= 500,
	};
	const adapter = (name: ProviderName) => adapters.get(name) as SimulatedProvider;
	const actions: Record<string, unknown> = {
		// The simulation's failure rate, changeable at run time for demos and tests.
		simulate: {
			params: simulateParams,
			handler(ctx: Context<Infer<typeof simulateParams>>) {
				adapter(ctx.params.provider).opts.failureRate = ctx.params.failurePercent / 100;
				return { provider: ctx.params.provider, failurePercent: ctx.params.failurePercent };
			},
		},
	};
	const ops = [
		{ op: "charge", params: chargeParams, run: (a: SimulatedProvider, p: Infer<typeof payoutParams>) => a.charge(p) },
		{ op: "payout", params: payoutParams, run: (a: SimulatedProvider, p: Infer<typeof payoutParams>) => a.payout(p) },
	] as const;
	for (const name of PROVIDERS) {
		for (const { op, params, run } of ops) {
			actions[`${name}.${op}`] = {
				params,
				circuitBreaker,
				async handler(ctx: Context<Infer<typeof payoutParams>>) {
					try {
						return await run(adapter(name), ctx.params);
					} catch (err) {
						return asMoleculerError(err);
					}
				},
			};
		}
	}
	return { name: "providers", actions } as unknown as ServiceSchema;
}
