/**
 * The seeded reference rates: units of each currency per 1 USD, as decimal text (no
 * floats: services/ledger/reference-rates.ts reads them as integers). The ledger's spending
 * budget converts at the day's rates the fx service writes (ledger.reference_rates); this
 * table stands in for a currency no day has rates for yet (a new deployment before its
 * first fx write, a currency the fx provider does not quote). Approximate mid rates; the
 * currencies the fx service quotes match its base rates (services/fx/rates.ts).
 */
import type { CurrencyCode } from "./currencies.ts";

/**
 * How far a day's reference rate may be from the seeded one below (a factor either way):
 * ledger.referenceRates.set refuses a day's write whole when a rate is more than this many
 * times above or below its currency's seeded rate. A fixed band, not a move from the day
 * before, so no run of days can walk a rate out of it. Keep the table within this of the
 * market: a currency that moved further needs its seeded rate updated here.
 */
export const REFERENCE_RATE_BAND = 2n;

export const DEFAULT_UNITS_PER_USD: Record<CurrencyCode, string> = {
	AED: "3.6725", AFN: "68", ALL: "92", AMD: "387", ANG: "1.79", AOA: "912", ARS: "1000", AUD: "1.52", AWG: "1.79", AZN: "1.7",
	BAM: "1.7", BBD: "2", BDT: "120", BGN: "1.7", BHD: "0.376", BIF: "2950", BMD: "1", BND: "1.3", BOB: "6.91", BRL: "5.5",
	BSD: "1", BTN: "83.3", BWP: "13.5", BYN: "3.27", BZD: "2", CAD: "1.36", CDF: "2850", CHF: "0.88", CLP: "950", CNY: "7.2",
	COP: "4000", CRC: "510", CUP: "24", CVE: "96", CZK: "23", DJF: "178", DKK: "6.9", DOP: "60", DZD: "134", EGP: "48",
	ERN: "15", ETB: "120", EUR: "0.92", FJD: "2.25", FKP: "0.79", GBP: "0.79", GEL: "2.7", GHS: "15.1", GIP: "0.79", GMD: "70",
	GNF: "8600", GTQ: "7.75", GYD: "209", HKD: "7.8", HNL: "25", HTG: "132", HUF: "360", IDR: "15800", ILS: "3.7", INR: "83.3",
	IQD: "1310", IRR: "42000", ISK: "138", JMD: "157", JOD: "0.709", JPY: "150.2", KES: "129.5", KGS: "87", KHR: "4050", KMF: "450",
	KRW: "1380", KWD: "0.3075", KYD: "0.833", KZT: "480", LAK: "21900", LBP: "89500", LKR: "300", LRD: "192", LSL: "18.4", LYD: "4.8",
	MAD: "10", MDL: "17.7", MGA: "4600", MKD: "57", MMK: "2100", MNT: "3400", MOP: "8.05", MRU: "39.8", MUR: "46", MVR: "15.4",
	MWK: "1735", MXN: "18", MYR: "4.5", MZN: "63.9", NAD: "18.4", NGN: "1550", NIO: "36.8", NOK: "10.8", NPR: "133", NZD: "1.65",
	OMR: "0.385", PAB: "1", PEN: "3.75", PGK: "3.9", PHP: "57", PKR: "280", PLN: "4", PYG: "7800", QAR: "3.64", RON: "4.6",
	RSD: "108", RUB: "92", RWF: "1350", SAR: "3.75", SBD: "8.4", SCR: "13.6", SDG: "600", SEK: "10.6", SGD: "1.34", SHP: "0.79",
	SLE: "22.5", SOS: "571", SRD: "35", SSP: "1300", STN: "22.6", SVC: "8.75", SYP: "13000", SZL: "18.4", THB: "35", TJS: "10.9",
	TMT: "3.5", TND: "3.1", TOP: "2.35", TRY: "34", TTD: "6.78", TWD: "32", TZS: "2600", UAH: "41", UGX: "3700", USD: "1",
	UYU: "40", UZS: "12700", VES: "40", VND: "25000", VUV: "119", WST: "2.75", XAF: "604", XCD: "2.7", XOF: "604", XPF: "110",
	YER: "250", ZAR: "18.4", ZMW: "27", ZWL: "322",
};
