/**
 * The simulated providers' card and bank-account vault: a customer's instrument goes to
 * the provider once and comes back as a token and a display hint (brand, last 4, expiry),
 * as with a real provider's tokenization. We keep the token; the number stays with the
 * provider (docs/wallet.md, saved payment methods).
 *
 * The simulation keeps no state: a token carries its provider, kind and expiry and a MAC
 * under the simulation's key, so every providers node knows the tokens any of them issued,
 * also after a restart, and a charge with a token it did not issue (or of an expired card)
 * is declined as a real provider would. The fingerprint is the provider's stable id of the
 * instrument (a keyed hash: without the key it does not give the number back), so the same
 * card saved twice is recognised.
 *
 * The simulation's test numbers: a card number (passing Luhn) ending in 0002 is declined
 * by the issuer; an IBAN whose account part ends in 0000 is refused by the bank.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { cardBrand, cardValidAt, ibanValid, luhnValid } from "../../lib/instruments.ts";

export type InstrumentKind = "card" | "bank_account";

export interface CardInput {
	number: string;
	expMonth: number;
	expYear: number;
	cvc: string;
	holderName: string;
}

export interface BankAccountInput {
	iban: string;
	holderName: string;
}

export type TokenizeRequest = { provider: string; kind: "card"; card: CardInput } | { provider: string; kind: "bank_account"; bankAccount: BankAccountInput };

/** What the customer sees of a saved instrument: never enough to use it. */
export interface InstrumentHint {
	brand: string;
	last4: string;
	/** Cards: the expiry month and year; bank accounts: null. */
	expMonth: number | null;
	expYear: number | null;
	/** Bank accounts: the IBAN's country; cards: null. */
	country: string | null;
}

export type TokenizeResult =
	| { ok: true; token: string; fingerprint: string; hint: InstrumentHint }
	| { ok: false; code: "PROVIDER_DECLINED"; reason: string };

const MAC_CHARS = 22;

export class SimulatedVault {
	private readonly key: Buffer;

	constructor(secret: string) {
		this.key = Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), Buffer.alloc(0), "paymesh:simulated-provider:vault:v1", 32));
	}

	private mac(text: string): string {
		return createHmac("sha256", this.key).update(text).digest("base64url").slice(0, MAC_CHARS);
	}

	/** Takes the instrument and answers a token and its hint, or declines it. Nothing of the number is kept. */
	tokenize(req: TokenizeRequest, now: Date): TokenizeResult {
		if (req.kind === "card") {
			const c = req.card;
			if (!luhnValid(c.number)) return { ok: false, code: "PROVIDER_DECLINED", reason: "the card number is not valid" };
			if (!cardValidAt(c.expMonth, c.expYear, now)) return { ok: false, code: "PROVIDER_DECLINED", reason: "the card has expired" };
			const brand = cardBrand(c.number);
			if (!/^[0-9]{3,4}$/.test(c.cvc) || (brand === "amex") !== (c.cvc.length === 4)) return { ok: false, code: "PROVIDER_DECLINED", reason: "the security code is not valid" };
			if (c.number.endsWith("0002")) return { ok: false, code: "PROVIDER_DECLINED", reason: "the card was declined by its issuer" };
			const expiry = `${c.expYear}${String(c.expMonth).padStart(2, "0")}`;
			return {
				ok: true, token: this.issue(req.provider, "c", expiry), fingerprint: this.mac(`fp:card:${c.number}`),
				hint: { brand, last4: c.number.slice(-4), expMonth: c.expMonth, expYear: c.expYear, country: null },
			};
		}
		const iban = req.bankAccount.iban;
		if (!ibanValid(iban)) return { ok: false, code: "PROVIDER_DECLINED", reason: "the IBAN is not valid" };
		if (iban.endsWith("0000")) return { ok: false, code: "PROVIDER_DECLINED", reason: "the bank refused the account" };
		return {
			ok: true, token: this.issue(req.provider, "b", "0"), fingerprint: this.mac(`fp:bank:${iban}`),
			hint: { brand: "bank", last4: iban.slice(-4), expMonth: null, expYear: null, country: iban.slice(0, 2) },
		};
	}

	private issue(provider: string, kind: "c" | "b", expiry: string): string {
		const body = `tok:${provider}:${kind}:${expiry}:${randomBytes(12).toString("base64url")}`;
		return `${body}.${this.mac(body)}`;
	}

	/**
	 * Whether this provider issued the token for this kind of instrument and it may still be
	 * used at `now` (a card not past its expiry): the check a charge or a payout makes.
	 */
	accepts(token: string, provider: string, kind: InstrumentKind, now: Date): boolean {
		const dot = token.lastIndexOf(".");
		if (dot < 0) return false;
		const body = token.slice(0, dot);
		const given = Buffer.from(token.slice(dot + 1));
		const want = Buffer.from(this.mac(body));
		if (given.length !== want.length || !timingSafeEqual(given, want)) return false;
		const [tag, p, k, expiry] = body.split(":");
		if (tag !== "tok" || p !== provider || k !== (kind === "card" ? "c" : "b") || expiry === undefined) return false;
		if (kind === "bank_account") return true;
		const year = Number(expiry.slice(0, 4));
		const month = Number(expiry.slice(4));
		return Number.isInteger(year) && Number.isInteger(month) && cardValidAt(month, year, now);
	}
}

/** Whether a payout destination is a vault token rather than a plain destination text. */
export function isToken(destination: string): boolean {
	return destination.startsWith("tok:");
}
