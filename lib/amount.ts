/**
 * Amounts as people type and read them, one pure module for the server and the dashboard
 * (the gateway serves it to the browser as JavaScript with its types stripped, beside the
 * currency table it imports). It imports nothing but that table, so it runs in both.
 *
 * Parsing follows the currency's exponent (ISO 4217: JPY 0, USD 2, KWD 3) and the
 * person's separators (en: "10,000.50"; de: "10.000,50"; fr: "10 000,50"; de-CH:
 * "10'000.50"), and says why it refuses, one message per cause: a grouping that does not
 * fit ("1,5" for an English reader is not 1.50: it is refused with a hint, never guessed),
 * more decimals than the currency has, a sign, another currency's symbol, no digits.
 * A symbol or code of the amount's own currency is accepted ("$5" in USD, "5 EUR").
 * No floats: the digits become bigint minor units.
 */
import { CURRENCY_EXPONENTS, type CurrencyCode } from "../config/currencies.ts";

export interface Separators {
	decimal: "." | ",";
	/** Groups of two above the first thousand (the Indian 1,23,456). */
	lakh: boolean;
	/** "" when the locale groups with nothing known (then no grouping is accepted). */
	group: "," | "." | " " | "\u00a0" | "\u202f" | "'" | "\u2019" | "";
}

export type AmountCause = "EMPTY" | "NOT_A_NUMBER" | "NEGATIVE" | "ZERO" | "TOO_MANY_DECIMALS" | "BAD_GROUPING" | "WRONG_CURRENCY" | "TOO_LARGE";

export type ParsedAmount = { ok: true; minor: bigint } | { ok: false; cause: AmountCause; message: string };

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

export function exponentOf(currency: CurrencyCode): number {
	return CURRENCY_EXPONENTS[currency];
}

export function isCurrencyCode(c: string): c is CurrencyCode {
	return Object.prototype.hasOwnProperty.call(CURRENCY_EXPONENTS, c);
}

/** Locales whose separators are kept (the locale comes from the person: the cache is bounded, past it they are worked out each time). */
const SEPARATOR_LOCALES_MAX = 64;
const separatorCache = new Map<string, Separators>();

/**
 * The separators of a BCP 47 locale, from Intl (the same in Node and the browser). Making
 * the number formats costs about 60 µs, once per locale: a node formatting every payment's
 * notice spent 6% of its CPU here before the cache.
 */
export function separatorsOf(locale: string): Separators {
	const known = separatorCache.get(locale);
	if (known) return known;
	const found = Object.freeze(separatorsFromIntl(locale));
	if (separatorCache.size < SEPARATOR_LOCALES_MAX) separatorCache.set(locale, found);
	return found;
}

function separatorsFromIntl(locale: string): Separators {
	let parts: Intl.NumberFormatPart[];
	try {
		parts = new Intl.NumberFormat(locale, { useGrouping: true, minimumFractionDigits: 1 }).formatToParts(12345.5);
	} catch {
		parts = new Intl.NumberFormat("en", { useGrouping: true, minimumFractionDigits: 1 }).formatToParts(12345.5);
	}
	const decimal = parts.find(p => p.type === "decimal")?.value === "," ? "," : ".";
	const g = parts.find(p => p.type === "group")?.value ?? "";
	const groups: readonly Separators["group"][] = [",", ".", " ", "\u00a0", "\u202f", "'", "\u2019"];
	const group = groups.find(x => x === g && x !== decimal) ?? "";
	let lakh = false;
	try {
		lakh = new Intl.NumberFormat(locale, { useGrouping: true }).formatToParts(1234567).filter(p => p.type === "integer").map(p => p.value.length).join(",") === "2,2,3";
	} catch {
		lakh = false;
	}
	return { decimal, group, lakh };
}

/** Symbols people write for a currency: its code, and the symbols Intl gives it in English and in the locale. */
function symbolsOf(currency: CurrencyCode, locale: string): Set<string> {
	const out = new Set<string>([currency]);
	for (const loc of ["en", locale]) {
		for (const display of ["symbol", "narrowSymbol"] as const) {
			try {
				const part = new Intl.NumberFormat(loc, { style: "currency", currency, currencyDisplay: display }).formatToParts(1).find(p => p.type === "currency");
				if (part) out.add(part.value.trim());
			} catch {
				// An engine without that locale or display: the code still works.
			}
		}
	}
	return out;
}

let symbolCurrencies: Map<string, CurrencyCode> | null = null;

/** Which currency a symbol stands for, when only one does in English (€, £, ₹; not $, which many use). */
function currencyOfSymbol(sym: string): CurrencyCode | null {
	if (!symbolCurrencies) {
		const seen = new Map<string, CurrencyCode | null>();
		for (const c of Object.keys(CURRENCY_EXPONENTS)) {
			if (!isCurrencyCode(c)) continue;
			try {
				const part = new Intl.NumberFormat("en", { style: "currency", currency: c, currencyDisplay: "narrowSymbol" }).formatToParts(1).find(p => p.type === "currency")?.value;
				if (part && part !== c) seen.set(part, seen.has(part) ? null : c);
			} catch {
				// Not known to this engine.
			}
		}
		symbolCurrencies = new Map([...seen].filter((e): e is [string, CurrencyCode] => e[1] !== null));
	}
	return symbolCurrencies.get(sym) ?? null;
}

const fail = (cause: AmountCause, message: string): ParsedAmount => ({ ok: false, cause, message });
const decimalsWord = (exp: number, currency: string) => (exp === 0 ? `${currency} amounts have no decimals` : `${currency} amounts have at most ${exp} decimal${exp === 1 ? "" : "s"}`);
const sepName = (s: string) => (s === "." ? "a dot" : s === "," ? "a comma" : s === "'" || s === "\u2019" ? "an apostrophe" : "a space");

/**
 * Reads what a person typed as an amount of `currency`, with the separators of `locale`
 * (default English). Refusals say what is wrong and how to write it.
 */
export function parseAmount(text: string, currency: CurrencyCode, locale = "en"): ParsedAmount {
	const exp = exponentOf(currency);
	const seps = separatorsOf(locale);
	let s = text.normalize("NFKC").trim();
	if (s === "") return fail("EMPTY", "Enter an amount.");
	if (s.length > 64) return fail("TOO_LARGE", "That amount is too long.");
	// A currency symbol or code before or after the number.
	const m = /^([^\d\s.,'\u2019+-]*)\s*([+-]?)\s*([^\p{L}\p{Sc}]*?)\s*([^\d\s.,'\u2019]*)$/u.exec(s);
	if (!m) return fail("NOT_A_NUMBER", `Enter a number, like ${formatAmount(1234n * 10n ** BigInt(exp) + (exp > 0 ? 5n * 10n ** BigInt(exp - 1) : 0n), currency, locale, false)}.`);
	const [, before = "", sign = "", number = "", after = ""] = m;
	if (!/\d/.test(number)) return fail("NOT_A_NUMBER", "Enter a number.");
	for (const sym of [before, after]) {
		if (sym === "") continue;
		if (!symbolsOf(currency, locale).has(sym) && sym.toUpperCase() !== currency) {
			const named = isCurrencyCode(sym.toUpperCase()) ? sym.toUpperCase() : currencyOfSymbol(sym);
			return fail("WRONG_CURRENCY", named ? `This amount is in ${named}; the account is in ${currency}.` : `Remove "${sym}": the amount is in ${currency}.`);
		}
	}
	if (sign === "-") return fail("NEGATIVE", "Enter an amount above zero, without a minus sign.");
	s = number.replace(/[\u00a0\u202f]/g, " ");
	if (s === "" || !/\d/.test(s)) return fail("NOT_A_NUMBER", "Enter a number.");
	if (!/^[\d.,' \u2019]+$/.test(s)) return fail("NOT_A_NUMBER", "Use only digits and separators.");
	const group = seps.group === "\u00a0" || seps.group === "\u202f" ? " " : seps.group === "\u2019" ? "'" : seps.group;
	const dec = seps.decimal;
	const normalized = s.replace(/\u2019/g, "'");
	const decimalAt = normalized.split(dec).length - 1;
	if (decimalAt > 1) return fail("BAD_GROUPING", `Use ${sepName(dec)} once, for the decimals.`);
	const [intPart = "", fracPart = ""] = decimalAt === 1 ? normalized.split(dec) : [normalized, ""];
	if (/[^\d]/.test(fracPart)) return fail("BAD_GROUPING", `Write the decimals after ${sepName(dec)} as digits only.`);
	// The integer part: plain digits, or groups of three after the first, separated by the locale's group separator only.
	let digits: string;
	if (/^\d*$/.test(intPart) && (intPart !== "" || fracPart !== "")) digits = intPart;
	else if (group !== "" && new RegExp(`^\\d{1,3}(${group === "." ? "\\." : group}\\d{3})+$`).test(intPart)) digits = intPart.split(group).join("");
	else if (group !== "" && seps.lakh && new RegExp(`^\\d{1,2}(${group === "." ? "\\." : group}\\d{2})*${group === "." ? "\\." : group}\\d{3}$`).test(intPart)) digits = intPart.split(group).join("");
	else {
		const other = intPart.match(/[.,' ]/)?.[0] ?? "";
		const asDecimal = decimalAt === 0 && (other === "," || other === ".") && /^\d+[.,]\d+$/.test(intPart);
		const hint = asDecimal ? ` For decimals use ${sepName(dec)}: ${intPart.replace(other, dec)}.` : group ? ` Group thousands with ${sepName(group)} in threes, or leave them out.` : "";
		return fail("BAD_GROUPING", `"${text.trim()}" is not a clear amount.${hint}`);
	}
	if (intPart === "" && fracPart === "") return fail("NOT_A_NUMBER", "Enter a number.");
	if (fracPart.length > exp) return fail("TOO_MANY_DECIMALS", `${decimalsWord(exp, currency)}.`);
	const minor = BigInt(digits === "" ? "0" : digits) * 10n ** BigInt(exp) + (exp > 0 ? BigInt(fracPart.padEnd(exp, "0")) : 0n);
	if (minor === 0n) return fail("ZERO", "Enter an amount above zero.");
	if (minor > SAFE_MAX) return fail("TOO_LARGE", "That amount is too large.");
	return { ok: true, minor };
}

/** Minor units as a person reads them: grouped thousands, the currency's decimals, the locale's separators, then the code ("10,000.00 USD"). */
export function formatAmount(minor: bigint | number, currency: CurrencyCode, locale = "en", withCode = true): string {
	const exp = exponentOf(currency);
	const seps = separatorsOf(locale);
	const v = BigInt(minor);
	const abs = v < 0n ? -v : v;
	const scale = 10n ** BigInt(exp);
	const w = (abs / scale).toString();
	const whole = seps.lakh && w.length > 3
		? `${w.slice(0, -3).replace(/\B(?=(\d{2})+(?!\d))/g, seps.group)}${seps.group}${w.slice(-3)}`
		: w.replace(/\B(?=(\d{3})+(?!\d))/g, seps.group);
	const frac = exp > 0 ? seps.decimal + (abs % scale).toString().padStart(exp, "0") : "";
	return `${v < 0n ? "-" : ""}${whole}${frac}${withCode ? ` ${currency}` : ""}`;
}
