import type { ServiceBroker } from "moleculer";
import type { CurrencyCode } from "../config/currencies.ts";
import { ledger } from "../contracts/ledger.ts";
import { callDetached } from "../lib/contract.ts";

/**
 * Resolves system accounts (providers' and FX pools') by code. Their ids never change once
 * opened, so each node asks the ledger once per code instead of once per payment.
 */
export function systemAccountResolver(broker: ServiceBroker): (code: string, currency: CurrencyCode) => Promise<string> {
	const known = new Map<string, Promise<string>>();
	return (code, currency) => {
		let id = known.get(code);
		if (!id) {
			id = callDetached(broker, ledger.accounts.open, { kind: "system", code, currency }).then(a => a.id);
			// A failed lookup is not remembered: the next payment asks again.
			id.catch(() => known.delete(code));
			known.set(code, id);
		}
		return id;
	};
}
