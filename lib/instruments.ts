/**
 * Checks of payment instruments, pure: a card number's Luhn digit and brand, a card's
 * expiry, an IBAN's mod-97 check. Used by the methods service before it sends an
 * instrument to its provider, and by the simulated providers' vault.
 */

/** Whether a card number (digits only) passes the Luhn check. */
export function luhnValid(number: string): boolean {
	if (!/^[0-9]{12,19}$/.test(number)) return false;
	let sum = 0;
	for (let i = 0; i < number.length; i++) {
		let d = number.charCodeAt(number.length - 1 - i) - 48;
		if (i % 2 === 1) {
			d *= 2;
			if (d > 9) d -= 9;
		}
		sum += d;
	}
	return sum % 10 === 0;
}

/** The card's brand by its leading digits (the issuer identification number). */
export function cardBrand(number: string): string {
	if (/^4/.test(number)) return "visa";
	if (/^(5[1-5]|2(2[2-9][1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720))/.test(number)) return "mastercard";
	if (/^3[47]/.test(number)) return "amex";
	if (/^(6011|65|64[4-9])/.test(number)) return "discover";
	return "card";
}

/** Whether a card with this expiry may be used at `now`: through the last day of its month (UTC). */
export function cardValidAt(expMonth: number, expYear: number, now: Date): boolean {
	return now.getTime() < Date.UTC(expYear, expMonth, 1);
}

/** ISO 13616: upper-case country, two check digits, the account part; the whole mod 97 is 1. */
export function ibanValid(iban: string): boolean {
	if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
	const moved = iban.slice(4) + iban.slice(0, 4);
	let rest = 0;
	for (const ch of moved) {
		const v = ch >= "A" ? String(ch.charCodeAt(0) - 55) : ch;
		for (const digit of v) rest = (rest * 10 + (digit.charCodeAt(0) - 48)) % 97;
	}
	return rest === 1;
}
