/**
 * What a money event tells whom (pure): the notification drafts for one event, from
 * templates per kind. Transfers notify the recipient (not top-ups or FX legs, which come
 * from system accounts and are told by their payment); payments notify their user when
 * they complete or fail; P2P completions are already told by their transfer.
 */
import { CURRENCY_EXPONENTS } from "../../config/currencies.ts";
import { formatMinor } from "../../lib/money.ts";

export interface Draft {
	userId: string;
	kind: "transfer.received" | "payment.completed" | "payment.failed" | "payment.review";
	title: string;
	body: string;
	data: Record<string, unknown>;
}

const money = (amount: unknown, currency: unknown): string => {
	const c = String(currency);
	const exponent = (CURRENCY_EXPONENTS as Record<string, number>)[c] ?? 2;
	return formatMinor(BigInt(Number.isSafeInteger(amount) ? (amount as number) : 0), c, exponent);
};

const PAYMENT_NAMES: Record<string, string> = { topup: "Top-up", payout: "Payout", p2p: "Payment" };

export function draftsFor(event: string, p: Record<string, unknown>): Draft[] {
	if (event === "transfer.completed") {
		const to = p["toOwnerId"];
		const from = p["fromOwnerId"];
		if (typeof to !== "string" || typeof from !== "string" || to === from) return [];
		return [{
			userId: to, kind: "transfer.received", title: "Money received",
			body: `You received ${money(p["amount"], p["currency"])}.`,
			data: { transferId: p["id"], accountId: p["toAccountId"], amount: p["amount"], currency: p["currency"] },
		}];
	}
	if (event === "payment.status_changed") {
		const userId = p["userId"];
		const type = String(p["type"]);
		const to = p["to"];
		if (typeof userId !== "string") return [];
		const data = { paymentId: p["paymentId"], type, amount: p["amount"], currency: p["currency"], failureCode: p["failureCode"] ?? null };
		const name = PAYMENT_NAMES[type] ?? "Payment";
		if (to === "completed" && type !== "p2p") {
			return [{ userId, kind: "payment.completed", title: `${name} completed`, body: `${name} of ${money(p["amount"], p["currency"])} completed.`, data }];
		}
		if (to === "failed") {
			const code = typeof p["failureCode"] === "string" ? ` (${p["failureCode"]})` : "";
			return [{ userId, kind: "payment.failed", title: `${name} failed`, body: `${name} of ${money(p["amount"], p["currency"])} failed${code}.`, data }];
		}
		if (to === "pending_review") {
			return [{ userId, kind: "payment.review", title: `${name} under review`, body: `${name} of ${money(p["amount"], p["currency"])} is being reviewed.`, data }];
		}
	}
	return [];
}
