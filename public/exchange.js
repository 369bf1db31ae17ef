// Exchange between two of the customer's accounts (issue 18, dashboard second edition):
// the amount is read in the "from" account's currency by the server's own rules
// (lib/amount.ts through app.js), a quote shows what is paid, what arrives, the rate and
// the fee, and counts down to its expiry: visibly every second, in a live region only at a
// few steps (60, 30 and 10 seconds left, then expired), so a screen reader is not talked
// over. An expired quote cannot be confirmed; a new one is one press away. The conversion
// carries one Idempotency-Key per quote, kept when an answer is lost, so a second press
// never exchanges twice (the server replays the first exchange, even after the quote
// expired). Balances follow by themselves (the accounts' live updates).
import { accounts, api, el, formatMinor, LOCALE, readAmount, say } from "/app.js";

const $ = sel => document.querySelector(sel);
const TICK_MS = 1_000;
/** The server's Date header has whole seconds: counting down a second early never offers a quote that ran out. */
const CLOCK_MARGIN_MS = 1_000;
/** Seconds left at which the live region speaks (those below the quote's life). */
const ANNOUNCE_AT_S = [60, 30, 10];

const WORDS = {
	CURRENCY_NOT_SUPPORTED: "We cannot exchange between these two currencies.",
	AMOUNT_TOO_SMALL: "That amount is too small to exchange: it would come to nothing.",
	QUOTE_EXPIRED: "The price ran out before the exchange. Get a new quote.",
	QUOTE_USED: "This quote has been used already. Get a new quote.",
	QUOTE_NOT_FOUND: "That quote is not known any more. Get a new quote.",
	INSUFFICIENT_FUNDS: "Not enough money in that account for this exchange.",
	ACCOUNT_FROZEN: "One of the two accounts is frozen, so no money can move.",
	ACCOUNT_NOT_FOUND: "One of the two accounts is not there any more.",
	CURRENCY_MISMATCH: "The accounts do not hold the quote's currencies. Get a new quote.",
	LINKED_TRANSFER_FAILED: "The exchange did not go through; nothing moved. Try again.",
	RATE_LIMITED: "Too many requests. Wait a moment and try again.",
	VALIDATION_ERROR: "Please check the accounts and the amount.",
};
/** Refusals after which the quote cannot be used again. */
const QUOTE_GONE = new Set(["QUOTE_EXPIRED", "QUOTE_USED", "QUOTE_NOT_FOUND", "CURRENCY_MISMATCH"]);

/** The quote on show, its key, its deadline on this page's clock, and what the countdown has said. */
const fx = { quote: null, from: null, to: null, key: null, deadlineMs: 0, lifeS: 0, timer: null, spoken: new Set(), expired: false, busy: false, uncertain: false };

const name = a => a.label || `${a.currency} account`;
const optionText = a => `${name(a)} · ${formatMinor(a.balance.available, a.currency)}`;

/** A refusal in words, with the limit when it is one. */
function wordsFor(r, fallback) {
	const e = r.data?.error ?? {};
	if (e.code === "LIMIT_EXCEEDED" && e.details?.limitMinor !== undefined && e.details?.limitCurrency) {
		const limit = formatMinor(e.details.limitMinor, e.details.limitCurrency);
		if (e.details.limit === "per_day") {
			const used = e.details.usedMinor !== undefined ? ` (${formatMinor(e.details.usedMinor, e.details.limitCurrency)} used today)` : "";
			return `This would pass the daily limit of your tier, ${limit}${used}. Exchange less, or raise your tier under Identity documents.`;
		}
		return `This is above your tier's limit of ${limit} a payment. Exchange less, or raise your tier under Identity documents.`;
	}
	return WORDS[e.code] ?? e.message ?? fallback;
}

// ---- the form -------------------------------------------------------------------------

/**
 * The select lists these accounts, keeping the choice; when the same accounts are listed
 * only their balances are rewritten (balance events come often: a list rebuilt under an
 * open select would close it).
 */
function syncOptions(select, list) {
	const same = select.options.length === list.length && list.every((a, i) => select.options[i]?.value === a.id);
	if (same) {
		list.forEach((a, i) => (select.options[i].textContent = optionText(a)));
		return;
	}
	const keep = select.value;
	select.replaceChildren(...list.map(a => el("option", { value: a.id }, optionText(a))));
	if (list.some(a => a.id === keep)) select.value = keep;
}

function fillAccounts() {
	const f = $("#fx-form");
	const open = accounts().filter(a => a.status === "active");
	syncOptions(f.from, open);
	const from = open.find(a => a.id === f.from.value);
	syncOptions(f.to, open.filter(a => a.currency !== from?.currency));
	$("#fx-currency").textContent = from?.currency ?? "the account's currency";
	// A quote whose accounts went (closed, frozen) cannot be used.
	if (fx.quote && !(open.some(a => a.id === fx.from?.id) && open.some(a => a.id === fx.to?.id))) hideQuote();
}

function invalid(field, text) {
	const f = $("#fx-form");
	f[field].setAttribute("aria-invalid", "true");
	f[field].focus();
	say("fx", text, false);
}

async function getQuote(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button[type=submit]");
	for (const n of ["from", "to", "amount"]) f[n].removeAttribute("aria-invalid");
	const open = accounts().filter(a => a.status === "active");
	const from = open.find(a => a.id === f.from.value);
	if (!from) return invalid("from", "Open an account first.");
	const to = open.find(a => a.id === f.to.value);
	if (!to) return invalid("to", `Open an account in another currency than ${from.currency} to exchange into.`);
	const read = readAmount(f.amount.value, from.currency);
	if (!("minor" in read)) return invalid("amount", read.message);
	button.disabled = true;
	const r = await api("POST", "/fx/quote", { body: { from: from.currency, to: to.currency, amount: read.minor } }).catch(() => null);
	button.disabled = false;
	if (!r || r.status !== 201) {
		hideQuote();
		button.focus();
		return say("fx", r ? wordsFor(r, "No quote could be given.") : "Could not reach Paymesh. Try again.", false);
	}
	say("fx", "", true);
	showQuote(r.data, r.headers, from, to);
}

// ---- the quote and its countdown --------------------------------------------------------

function fact(term, value) {
	return [el("dt", {}, term), el("dd", {}, value)];
}

function showQuote(q, headers, from, to) {
	clearInterval(fx.timer);
	// Measured against the server's clock, so a page whose clock is off still counts right.
	const serverNow = Date.parse(headers?.get?.("date") ?? "");
	const leftMs = Date.parse(q.expiresAt) - (Number.isFinite(serverNow) ? serverNow : Date.now()) - CLOCK_MARGIN_MS;
	Object.assign(fx, { quote: q, from, to, key: crypto.randomUUID(), deadlineMs: Date.now() + leftMs, lifeS: Math.ceil(leftMs / 1000), spoken: new Set(), expired: false, busy: false, uncertain: false });
	const pay = formatMinor(q.fromAmount, q.from);
	const get = formatMinor(q.toAmount, q.to);
	const rate = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 6 }).format(Number(q.rate));
	const percent = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 2 }).format(q.spreadBps / 10_000);
	$("#fx-facts").replaceChildren(
		...fact("You pay", `${pay} from ${name(from)}`),
		...fact("You get", `${get} into ${name(to)}`),
		...fact("Rate", `1 ${q.from} = ${rate} ${q.to}`),
		...fact("Fee", `${formatMinor(q.spreadAmount ?? 0, q.to)} (${percent}), included in the rate`));
	const confirm = $("#fx-confirm");
	confirm.textContent = `Exchange ${pay} for ${get}`;
	confirm.disabled = false;
	const box = $("#fx-quote");
	box.dataset.state = "open";
	box.dataset.quoteId = q.id;
	box.hidden = false;
	announce(`Quote: you pay ${pay} and get ${get}. The price is held for ${fx.lifeS} seconds.`);
	tick();
	fx.timer = setInterval(tick, TICK_MS);
	$("#fx-quote-title").focus();
}

function announce(text) {
	$("#fx-announce").textContent = text;
}

function tick() {
	const leftMs = fx.deadlineMs - Date.now();
	const s = Math.max(0, Math.ceil(leftMs / 1000));
	const shown = $("#fx-countdown");
	shown.textContent = `Price held for ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
	shown.dataset.seconds = String(s);
	$("#fx-timebar").style.width = `${fx.lifeS > 0 ? Math.round((100 * s) / fx.lifeS) : 0}%`;
	// Only the last step crossed speaks (a page that slept past several says one thing).
	const due = ANNOUNCE_AT_S.filter(t => t < fx.lifeS && s <= t && s > 0 && !fx.spoken.has(t));
	for (const t of due) fx.spoken.add(t);
	if (due.length > 0) announce(`${Math.min(...due)} seconds left to exchange at this price.`);
	if (leftMs <= 0) expire("The price has expired. Get a new quote to exchange.");
}

/** The quote can no longer be confirmed: the countdown ran out, or the server said so. */
function expire(text) {
	clearInterval(fx.timer);
	// An exchange may be under way, or its answer was lost: the server decides, not the countdown.
	if (fx.busy) return;
	if (fx.uncertain) {
		$("#fx-countdown").textContent = "The price has run out. Press the button again to learn whether the exchange went through.";
		return;
	}
	fx.expired = true;
	const confirm = $("#fx-confirm");
	const hadFocus = document.activeElement === confirm;
	confirm.disabled = true;
	$("#fx-quote").dataset.state = "expired";
	const shown = $("#fx-countdown");
	shown.textContent = "This price has expired.";
	shown.dataset.seconds = "0";
	$("#fx-timebar").style.width = "0%";
	announce(text);
	// A disabled button drops focus to the page: it goes to the way on instead.
	if (hadFocus || document.activeElement === document.body) $("#fx-requote").focus();
}

function hideQuote() {
	clearInterval(fx.timer);
	Object.assign(fx, { quote: null, from: null, to: null, key: null, expired: false, busy: false, uncertain: false });
	$("#fx-quote").hidden = true;
	$("#fx-facts").replaceChildren();
	announce("");
}

async function convert() {
	const confirm = $("#fx-confirm");
	if (!fx.quote || fx.busy || fx.expired) return;
	const { quote: q, from, to, key } = fx;
	fx.busy = true;
	confirm.disabled = true;
	const r = await api("POST", "/fx/convert", { key, body: { quoteId: q.id, fromAccountId: from.id, toAccountId: to.id } }).catch(() => ({ status: 0, data: null }));
	fx.busy = false;
	if (r.status === 201) {
		const f = $("#fx-form");
		hideQuote();
		f.amount.value = "";
		f.querySelector("button[type=submit]").focus();
		say("fx", `Exchanged ${formatMinor(q.fromAmount, q.from)} for ${formatMinor(q.toAmount, q.to)}.`, true);
		return;
	}
	const code = r.data?.error?.code;
	if (r.status === 0 || r.status >= 500 || r.status === 429) {
		// The same key again is the same exchange: made once, whatever happened to this answer.
		fx.uncertain = r.status !== 429;
		confirm.disabled = false;
		confirm.focus();
		return say("fx", r.status === 429 ? WORDS.RATE_LIMITED : "Paymesh did not answer. Press the button again: it will not exchange twice.", false);
	}
	fx.uncertain = false;
	if (QUOTE_GONE.has(code)) {
		expire(wordsFor(r, "Get a new quote."));
		$("#fx-requote").focus();
		return say("fx", wordsFor(r, "Get a new quote."), false);
	}
	// Refused as a whole, nothing moved: the same quote may be tried again while it lasts.
	if (fx.deadlineMs <= Date.now()) expire("The price has expired. Get a new quote to exchange.");
	else confirm.disabled = false;
	(confirm.disabled ? $("#fx-requote") : confirm).focus();
	say("fx", wordsFor(r, "The exchange did not go through."), false);
}

function start() {
	$("#fx-form").addEventListener("submit", getQuote);
	$("#fx-form").from.addEventListener("change", () => {
		fillAccounts();
		$("#fx-form").amount.removeAttribute("aria-invalid");
	});
	$("#fx-confirm").addEventListener("click", convert);
	$("#fx-requote").addEventListener("click", () => $("#fx-form").requestSubmit());
	$("#fx-cancel").addEventListener("click", () => {
		hideQuote();
		say("fx", "No exchange made.", true);
		$("#fx-form").querySelector("button[type=submit]").focus();
	});
	document.addEventListener("paymesh:accounts", fillAccounts);
	document.addEventListener("paymesh:signed-out", () => {
		hideQuote();
		say("fx", "", true);
	});
}

if (typeof document !== "undefined") start();
