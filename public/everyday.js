// The dashboard's everyday cards (issue 18): pay a bill (with a discount code, after a
// confirmation step), saved bills, saved payees, saved cards and bank accounts, and naming
// and closing accounts. The cards are built here and placed after the standing orders, so
// index.html only loads this file. Amounts are read and written by the server's own rules
// (lib/amount.ts through app.js); everything shown is set with textContent; refusals are
// said in words; focus stays on the form or button that acted.
import { accounts, api, el, formatMinor, isUuid, loadAccounts, say } from "/app.js";

const $ = sel => document.querySelector(sel);
const when = day => new Date(`${day}T00:00:00`).toLocaleDateString(undefined, { dateStyle: "medium" });
const monthOf = period => new Date(`${period}-01T00:00:00`).toLocaleDateString(undefined, { month: "long", year: "numeric" });

/** Refusals in words; anything else falls back to the server's sentence, then a plain one. */
const WORDS = {
	BILL_NOT_FOUND: "That biller does not know this reference. Check it on your bill.",
	BILL_ALREADY_PAID: "This bill is paid already.",
	COUPON_NOT_FOUND: "There is no discount with that code.",
	COUPON_NOT_APPLICABLE: "That discount code does not apply to this bill.",
	COUPON_EXHAUSTED: "That discount code has been used up.",
	QUOTE_EXPIRED: "The price was kept for 15 minutes and that time is over. Get the bill again.",
	QUOTE_USED: "This bill was paid with that price already.",
	QUOTE_NOT_FOUND: "That price is no longer known. Get the bill again.",
	INSUFFICIENT_FUNDS: "Not enough money in that account to pay this bill.",
	LIMIT_EXCEEDED: "This is above the limit of your verification tier.",
	ACCOUNT_FROZEN: "That account is frozen.",
	ACCOUNT_NOT_FOUND: "No account has that id.",
	CURRENCY_MISMATCH: "Pay from an account in the bill's currency.",
	SAME_ACCOUNT: "That is one of your own accounts.",
	PAYEE_LIMIT_REACHED: "You have saved as many payees as you can. Remove one first.",
	SAVED_BILL_LIMIT_REACHED: "You have saved as many bills as you can. Remove one first.",
	PROVIDER_DECLINED: "The card's bank refused it. Check the details or use another card.",
	CARD_EXPIRED: "That card has expired.",
	PAYMENT_METHOD_LIMIT_REACHED: "You have saved as many cards and bank accounts as you can. Remove one first.",
	TOO_MANY_ATTEMPTS: "Too many tries. Wait a while and try again.",
	ACCOUNT_NOT_EMPTY: "Move the money out first: only an empty account can be closed.",
	ACCOUNT_HAS_PENDING: "Payments are still in progress on this account. Close it when they are done.",
	RATE_LIMITED: "Too many requests. Wait a moment and try again.",
	VALIDATION_ERROR: "Please check the fields.",
};
const wordsFor = (r, fallback) => WORDS[r.data?.error?.code] ?? r.data?.error?.message ?? fallback;
const BILL_STATUS_WORDS = { unpaid: "not paid yet", processing: "being paid", paid: "paid" };
const PAYMENT_STATUS_WORDS = { pending: "being paid", debited: "being paid", paid: "paid", returning: "refused by the biller, the money is coming back", returned: "refused by the biller, the money came back", failed: "not paid" };
const BRAND_WORDS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover" };
const METHOD_STATUS_WORDS = { active: "ready to use", expired: "expired", removed: "removed" };

/** Keeps focus on an element that was re-rendered, found again by its selector. */
function refocus(sel) {
	const e = $(sel);
	if (!e) return;
	if (!e.matches("button, input, select, a")) e.setAttribute("tabindex", "-1");
	e.focus();
}

const accountName = a => `${a.label || `${a.currency} account`} · ${formatMinor(a.balance.available, a.currency)}`;

// ---- the cards ----------------------------------------------------------------------

function cards() {
	const label = (text, input) => el("label", {}, text, " ", input);
	const msg = name => el("p", { class: "msg", dataset: { for: name }, role: "status", "aria-live": "polite" });
	const bills = el("section", { class: "card", id: "bills", "aria-labelledby": "bills-title" },
		el("h2", { id: "bills-title" }, "Pay a bill"),
		el("form", { id: "bill-form", novalidate: "" },
			label("Biller", el("select", { name: "biller", required: "" })),
			label("Reference on your bill", el("input", { name: "reference", inputmode: "numeric", autocomplete: "off", required: "" })),
			label("Discount code (optional)", el("input", { name: "coupon", autocomplete: "off" })),
			el("button", { type: "submit" }, "Get the bill"),
			msg("bill")),
		el("div", { id: "bill-confirm", role: "group", "aria-labelledby": "bill-confirm-title", hidden: "" },
			el("h3", { id: "bill-confirm-title" }, "Confirm the payment"),
			el("dl", { class: "facts", id: "bill-facts" }),
			label("Pay from", el("select", { name: "from", id: "bill-from" })),
			el("div", { class: "inline" },
				el("button", { type: "button", id: "bill-pay" }, "Pay"),
				el("button", { type: "button", class: "secondary", id: "bill-cancel" }, "Not now"))),
		el("form", { id: "saved-bill-form", class: "inline", novalidate: "" },
			label("Name to save the bill above as", el("input", { name: "nickname", maxlength: "60", autocomplete: "off" })),
			el("button", { type: "submit", class: "secondary" }, "Save bill")),
		msg("saved-bill"),
		el("h3", {}, "Saved bills"),
		el("ul", { id: "saved-bills", class: "list" }),
		el("h3", {}, "Bills paid"),
		el("ul", { id: "bill-payments", class: "list" }));
	const payees = el("section", { class: "card", id: "payees", "aria-labelledby": "payees-title" },
		el("h2", { id: "payees-title" }, "Saved payees"),
		el("form", { id: "payee-form", novalidate: "" },
			label("Name", el("input", { name: "name", maxlength: "100", autocomplete: "off", required: "" })),
			label("Their e-mail or account id", el("input", { name: "to", autocomplete: "off", required: "" })),
			el("button", { type: "submit" }, "Save payee"),
			msg("payee")),
		el("ul", { id: "payees-list", class: "list" }));
	const thisYear = new Date().getFullYear();
	const methods = el("section", { class: "card", id: "methods", "aria-labelledby": "methods-title" },
		el("h2", { id: "methods-title" }, "Cards and bank accounts"),
		el("p", { class: "muted" }, "A card is used for top-ups, a bank account for payouts. The full number goes to the card's bank once and is never shown again."),
		el("form", { id: "method-form", novalidate: "" },
			label("Kind", el("select", { name: "kind" }, el("option", { value: "card" }, "Card"), el("option", { value: "bank" }, "Bank account"))),
			el("div", { id: "method-card" },
				label("Card number", el("input", { name: "number", inputmode: "numeric", autocomplete: "cc-number" })),
				el("div", { class: "inline" },
					label("Expiry month", el("input", { name: "expMonth", inputmode: "numeric", autocomplete: "cc-exp-month", placeholder: "MM" })),
					label("Expiry year", el("input", { name: "expYear", inputmode: "numeric", autocomplete: "cc-exp-year", placeholder: String(thisYear + 2) }))),
				label("Security code", el("input", { name: "cvc", inputmode: "numeric", autocomplete: "cc-csc" })),
				label("Name on the card", el("input", { name: "cardName", autocomplete: "cc-name" }))),
			el("div", { id: "method-bank", hidden: "" },
				label("IBAN", el("input", { name: "iban", autocomplete: "off" })),
				label("Account holder", el("input", { name: "bankName", autocomplete: "name" }))),
			label("Name for it (optional)", el("input", { name: "label", maxlength: "60", autocomplete: "off" })),
			el("button", { type: "submit" }, "Save"),
			msg("method")),
		el("ul", { id: "methods-list", class: "list" }));
	const manage = el("section", { class: "card", id: "manage-accounts", "aria-labelledby": "manage-title" },
		el("h2", { id: "manage-title" }, "Name or close accounts"),
		el("ul", { id: "manage-list", class: "list" }),
		msg("manage"));
	return [bills, payees, methods, manage];
}

// ---- bills --------------------------------------------------------------------------

let billers = [];
/** The quote on show for confirmation, and the key of the payment the person means to make with it. */
let quote = null;
let intended = null;

async function loadBillers() {
	const r = await api("GET", "/bills/billers");
	if (r.status !== 200) return;
	billers = r.data.items;
	const s = $("#bill-form").biller;
	const chosen = s.value;
	s.replaceChildren(...billers.map(b => el("option", { value: b.code }, `${b.name} (${b.currency})`)));
	if (chosen) s.value = chosen;
}

function readBill(f, msgFor) {
	const reference = f.reference.value.replace(/[\s-]/g, "");
	if (!/^[0-9]{6,16}$/.test(reference)) {
		f.reference.setAttribute("aria-invalid", "true");
		f.reference.focus();
		say(msgFor, "The reference is the 6 to 16 digits printed on your bill.", false);
		return null;
	}
	f.reference.removeAttribute("aria-invalid");
	return { billerCode: f.biller.value, reference };
}

async function getBill(e) {
	e.preventDefault();
	const f = $("#bill-form");
	const button = f.querySelector("button");
	const bill = readBill(f, "bill");
	if (!bill) return;
	const coupon = f.coupon.value.trim();
	if (coupon && !/^[A-Za-z0-9][A-Za-z0-9_-]{2,31}$/.test(coupon)) {
		f.coupon.setAttribute("aria-invalid", "true");
		f.coupon.focus();
		return say("bill", "A discount code is 3 to 32 letters, digits, dashes or underscores.", false);
	}
	f.coupon.removeAttribute("aria-invalid");
	button.disabled = true;
	const r = await api("POST", "/bills/quote", { body: { ...bill, ...(coupon ? { couponCode: coupon } : {}) } }).catch(() => null);
	button.disabled = false;
	button.focus();
	if (!r) return say("bill", "Could not reach Paymesh. Try again.", false);
	if (r.status !== 201) {
		hideConfirm();
		if (r.data?.error?.code?.startsWith("COUPON_")) f.coupon.setAttribute("aria-invalid", "true");
		return say("bill", wordsFor(r, "The bill could not be found."), false);
	}
	showConfirm(r.data);
}

function showConfirm(q) {
	quote = q;
	const fact = (term, value) => [el("dt", {}, term), el("dd", {}, value)];
	$("#bill-facts").replaceChildren(
		...fact("Biller", `${q.bill.billerName}, reference ${q.bill.reference}`),
		...fact("Bill", `${monthOf(q.bill.period)}, due ${when(q.bill.dueDate)}`),
		...fact("Amount", formatMinor(q.bill.amountDue, q.currency)),
		...(q.discount > 0 ? fact("Discount", `−${formatMinor(q.discount, q.currency)} with ${q.couponCode}`) : []),
		...fact("You pay", formatMinor(q.total, q.currency)),
		...fact("Price kept until", new Date(q.expiresAt).toLocaleTimeString(undefined, { timeStyle: "short" })));
	const from = accounts().filter(a => a.currency === q.currency && a.status === "active");
	$("#bill-from").replaceChildren(...from.map(a => el("option", { value: a.id }, accountName(a))));
	$("#bill-pay").textContent = `Pay ${formatMinor(q.total, q.currency)}`;
	$("#bill-pay").disabled = from.length === 0;
	$("#bill-confirm").hidden = false;
	const off = q.discount > 0 ? ` less ${formatMinor(q.discount, q.currency)} with ${q.couponCode}` : "";
	say("bill", from.length === 0
		? `${q.bill.billerName}: ${formatMinor(q.bill.amountDue, q.currency)}${off}. Open a ${q.currency} account to pay it.`
		: `${q.bill.billerName}: ${formatMinor(q.bill.amountDue, q.currency)}${off}, you pay ${formatMinor(q.total, q.currency)}. Check it below and confirm.`, from.length > 0);
}

function hideConfirm() {
	quote = null;
	$("#bill-confirm").hidden = true;
}

async function payBill() {
	if (!quote) return;
	const button = $("#bill-pay");
	const fromAccountId = $("#bill-from").value;
	// One key per intended payment: pressing again after a lost answer sends the same key, so
	// the bill is paid once; another quote or another account is another payment.
	if (!intended || intended.quoteId !== quote.id || intended.fromAccountId !== fromAccountId) intended = { quoteId: quote.id, fromAccountId, key: crypto.randomUUID() };
	button.disabled = true;
	const r = await api("POST", "/bills/pay", { key: intended.key, body: { quoteId: quote.id, fromAccountId } }).catch(() => null);
	button.disabled = false;
	if (!r || r.status >= 500) {
		button.focus();
		return say("bill", "Paymesh did not answer. Press Pay again: the bill will not be paid twice.", false);
	}
	intended = null;
	if (r.status === 201 || r.status === 200) {
		const p = r.data;
		hideConfirm();
		$("#bill-form").coupon.value = "";
		$("#bill-form").querySelector("button").focus();
		const off = p.discount > 0 ? ` (${formatMinor(p.discount, p.currency)} off)` : "";
		// The lists first: what the message announces is then on show with it.
		await Promise.allSettled([loadPayments(), loadSaved()]);
		say("bill", p.status === "paid" ? `Paid ${formatMinor(p.total, p.currency)} to ${p.billerName}${off}.` : `${formatMinor(p.total, p.currency)} to ${p.billerName}${off}: ${PAYMENT_STATUS_WORDS[p.status] ?? "being paid"}.`, p.status !== "failed");
		return;
	}
	const code = r.data?.error?.code;
	if (code === "QUOTE_EXPIRED" || code === "QUOTE_USED" || code === "QUOTE_NOT_FOUND" || code === "BILL_ALREADY_PAID") {
		hideConfirm();
		$("#bill-form").querySelector("button").focus();
	} else {
		button.focus();
	}
	say("bill", wordsFor(r, "The bill was not paid."), false);
}

function paymentItem(p) {
	const off = p.discount > 0 ? ` (${formatMinor(p.discount, p.currency)} off with ${p.couponCode})` : "";
	return el("li", { dataset: { billPaymentId: p.id, status: p.status } },
		el("span", {}, `${p.billerName}, ${monthOf(p.period)}: ${formatMinor(p.total, p.currency)}${off}`),
		el("strong", { class: "status" }, PAYMENT_STATUS_WORDS[p.status] ?? p.status));
}

async function loadPayments() {
	const r = await api("GET", "/bills/payments?limit=20");
	if (r.status === 200) $("#bill-payments").replaceChildren(...r.data.items.map(paymentItem));
}

// ---- saved bills --------------------------------------------------------------------

function savedItem(s) {
	const b = s.bill;
	const li = el("li", { dataset: { savedBillId: s.id } },
		el("span", {}, `${s.nickname} — ${s.billerName}, ${s.reference}: `),
		el("span", {}, b ? `${formatMinor(b.amountDue, b.currency)} due ${when(b.dueDate)}, ${BILL_STATUS_WORDS[b.status] ?? b.status}` : "the biller no longer knows this reference"));
	if (b && b.status === "unpaid") li.append(el("button", { type: "button", class: "secondary pay", "aria-label": `Pay ${s.nickname}`, onclick: () => paySaved(s) }, "Pay"));
	li.append(el("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${s.nickname}`, onclick: e => removeSaved(s, e.target) }, "Remove"));
	return li;
}

async function loadSaved() {
	const r = await api("GET", "/bills/saved");
	if (r.status === 200) $("#saved-bills").replaceChildren(...r.data.items.map(savedItem));
}

function paySaved(s) {
	const f = $("#bill-form");
	f.biller.value = s.billerCode;
	f.reference.value = s.reference;
	f.reference.focus();
	f.requestSubmit();
}

async function saveBill(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button");
	const nickname = f.nickname.value.trim();
	if (!nickname) {
		f.nickname.setAttribute("aria-invalid", "true");
		f.nickname.focus();
		return say("saved-bill", "Give the bill a name, such as Home electricity.", false);
	}
	f.nickname.removeAttribute("aria-invalid");
	const bill = readBill($("#bill-form"), "saved-bill");
	if (!bill) return;
	button.disabled = true;
	const r = await api("POST", "/bills/saved", { body: { ...bill, nickname } }).catch(() => null);
	button.disabled = false;
	button.focus();
	if (!r) return say("saved-bill", "Could not reach Paymesh. Try again.", false);
	if (r.status !== 201 && r.status !== 200) return say("saved-bill", wordsFor(r, "The bill was not saved."), false);
	f.nickname.value = "";
	say("saved-bill", r.data.replay ? `${r.data.billerName} ${r.data.reference} is saved already, as “${r.data.nickname}”.` : `Saved as “${r.data.nickname}”. You will be reminded before it is due.`, true);
	await loadSaved();
}

async function removeSaved(s, button) {
	button.disabled = true;
	const r = await api("DELETE", `/bills/saved/${encodeURIComponent(s.id)}`);
	await loadSaved();
	say("saved-bill", r.status === 200 ? `“${s.nickname}” removed.` : wordsFor(r, "It was not removed."), r.status === 200);
	refocus("#saved-bill-form button");
}

// ---- payees ---------------------------------------------------------------------------

function payeeItem(p) {
	return el("li", { dataset: { payeeId: p.id } },
		el("span", {}, `${p.name} — ${p.email ?? `account ${p.accountId}`}`),
		el("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${p.name}`, onclick: e => removePayee(p, e.target) }, "Remove"));
}

async function loadPayees() {
	const r = await api("GET", "/payees?limit=50");
	if (r.status === 200) $("#payees-list").replaceChildren(...r.data.items.map(payeeItem));
}

async function savePayee(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button");
	const name = f.name.value.trim();
	const to = f.to.value.trim();
	if (!name) {
		f.name.setAttribute("aria-invalid", "true");
		f.name.focus();
		return say("payee", "Enter the payee's name.", false);
	}
	f.name.removeAttribute("aria-invalid");
	const where = to.includes("@") ? { email: to } : isUuid(to) ? { accountId: to.toLowerCase() } : null;
	if (!where) {
		f.to.setAttribute("aria-invalid", "true");
		f.to.focus();
		return say("payee", "Enter their e-mail address or the id of their account.", false);
	}
	f.to.removeAttribute("aria-invalid");
	button.disabled = true;
	const r = await api("POST", "/payees", { body: { name, ...where } }).catch(() => null);
	button.disabled = false;
	button.focus();
	if (!r) return say("payee", "Could not reach Paymesh. Try again.", false);
	if (r.status !== 201 && r.status !== 200) return say("payee", wordsFor(r, "The payee was not saved."), false);
	f.reset();
	say("payee", `${r.data.name} saved.`, true);
	await loadPayees();
}

async function removePayee(p, button) {
	button.disabled = true;
	const r = await api("DELETE", `/payees/${encodeURIComponent(p.id)}`);
	await loadPayees();
	say("payee", r.status === 200 ? `${p.name} removed.` : wordsFor(r, "The payee was not removed."), r.status === 200);
	refocus("#payee-form button");
}

// ---- cards and bank accounts --------------------------------------------------------------

/** The card-number check digit (Luhn), so a mistyped number is caught before it is sent. */
function luhn(digits) {
	let sum = 0;
	for (let i = 0; i < digits.length; i++) {
		let d = Number(digits[digits.length - 1 - i]);
		if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
		sum += d;
	}
	return sum % 10 === 0;
}

function methodItem(m) {
	const what = m.kind === "card"
		? `${BRAND_WORDS[m.brand] ?? "Card"} ending ${m.last4}, expires ${String(m.expMonth).padStart(2, "0")}/${m.expYear}`
		: `Bank account ending ${m.last4}`;
	const li = el("li", { dataset: { methodId: m.id, status: m.status } },
		el("span", {}, `${what}${m.label ? ` — “${m.label}”` : ""}`),
		el("strong", { class: "status" }, METHOD_STATUS_WORDS[m.status] ?? m.status));
	if (m.status !== "removed") li.append(el("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${what}`, onclick: e => removeMethod(m, what, e.target) }, "Remove"));
	return li;
}

async function loadMethods() {
	const r = await api("GET", "/payment-methods");
	if (r.status === 200) $("#methods-list").replaceChildren(...r.data.items.filter(m => m.status !== "removed").map(methodItem));
}

function invalid(f, field, text) {
	f[field].setAttribute("aria-invalid", "true");
	f[field].focus();
	say("method", text, false);
	return null;
}

function readMethod(f) {
	for (const n of ["number", "expMonth", "expYear", "cvc", "cardName", "iban", "bankName"]) f[n].removeAttribute("aria-invalid");
	const label = f.label.value.trim();
	if (f.kind.value === "bank") {
		const iban = f.iban.value.replace(/\s/g, "").toUpperCase();
		if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(iban)) return invalid(f, "iban", "Enter the IBAN as it is on your bank statement, such as GB82 WEST 1234 5698 7654 32.");
		const holderName = f.bankName.value.trim();
		if (!holderName) return invalid(f, "bankName", "Enter the name the bank account is in.");
		return { bankAccount: { iban, holderName }, ...(label ? { label } : {}) };
	}
	const number = f.number.value.replace(/[\s-]/g, "");
	if (!/^[0-9]{12,19}$/.test(number) || !luhn(number)) return invalid(f, "number", "That card number is not right. Check the digits on the card.");
	const expMonth = Number(f.expMonth.value);
	if (!Number.isInteger(expMonth) || expMonth < 1 || expMonth > 12) return invalid(f, "expMonth", "Enter the expiry month as a number from 1 to 12.");
	let expYear = Number(f.expYear.value);
	if (Number.isInteger(expYear) && expYear >= 0 && expYear < 100) expYear += 2000;
	if (!Number.isInteger(expYear) || expYear < 2000 || expYear > 2100) return invalid(f, "expYear", "Enter the expiry year, such as 2030.");
	const cvc = f.cvc.value.trim();
	if (!/^[0-9]{3,4}$/.test(cvc)) return invalid(f, "cvc", "The security code is the 3 or 4 digits on the card.");
	const holderName = f.cardName.value.trim();
	if (!holderName) return invalid(f, "cardName", "Enter the name on the card.");
	return { card: { number, expMonth, expYear, cvc, holderName }, ...(label ? { label } : {}) };
}

async function saveMethod(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button[type=submit]");
	const body = readMethod(f);
	if (!body) return;
	// The number and the code leave the page once: the fields are emptied before the answer comes.
	f.number.value = "";
	f.cvc.value = "";
	button.disabled = true;
	const r = await api("POST", "/payment-methods", { body }).catch(() => null);
	button.disabled = false;
	button.focus();
	if (!r) return say("method", "Could not reach Paymesh. Enter the card again to try again.", false);
	if (r.status !== 201 && r.status !== 200) return say("method", `${wordsFor(r, "It was not saved.")}${body.card ? " Enter the number and code again to try again." : ""}`, false);
	const m = r.data;
	for (const n of ["expMonth", "expYear", "cardName", "iban", "bankName", "label"]) f[n].value = "";
	say("method", m.kind === "card" ? `${BRAND_WORDS[m.brand] ?? "Card"} ending ${m.last4} saved.` : `Bank account ending ${m.last4} saved.`, true);
	await loadMethods();
}

async function removeMethod(m, what, button) {
	button.disabled = true;
	const r = await api("DELETE", `/payment-methods/${encodeURIComponent(m.id)}`);
	await loadMethods();
	say("method", r.status === 200 ? `${what} removed.` : wordsFor(r, "It was not removed."), r.status === 200);
	refocus("#method-form button[type=submit]");
}

// ---- naming and closing accounts ------------------------------------------------------

const STATUS_WORDS = { active: "open", frozen: "frozen", closed: "closed" };

function manageItem(a) {
	const name = a.label || `${a.currency} account`;
	const li = el("li", { dataset: { accountId: a.id, status: a.status } },
		el("span", {}, `${name} (${a.currency}, ending ${a.id.slice(-6)}): ${formatMinor(a.balance.available, a.currency)}`),
		el("strong", { class: "status" }, STATUS_WORDS[a.status] ?? a.status));
	if (a.status === "closed") return li;
	const input = el("input", { name: "label", maxlength: "60", autocomplete: "off", value: a.label, "aria-label": `New name for the ${a.currency} account ending ${a.id.slice(-6)}` });
	li.append(el("form", { class: "inline rename", novalidate: "", onsubmit: e => rename(e, a, input) }, input, el("button", { type: "submit", class: "secondary" }, "Rename")));
	const close = el("button", { type: "button", class: "secondary close", onclick: () => askClose(a, li, close) }, "Close account");
	li.append(close);
	return li;
}

function renderManage() {
	$("#manage-list").replaceChildren(...accounts().map(manageItem));
}

async function rename(e, a, input) {
	e.preventDefault();
	const label = input.value.trim();
	if (/[\u0000-\u001f\u007f]/.test(label)) return say("manage", "A name cannot have control characters.", false);
	const r = await api("PATCH", `/accounts/${encodeURIComponent(a.id)}`, { body: { label } });
	await loadAccounts();
	renderManage();
	refocus(`#manage-list li[data-account-id="${CSS.escape(a.id)}"] form.rename button`);
	if (r.status === 200) say("manage", label ? `The ${a.currency} account is now called “${label}”.` : `The ${a.currency} account has no name now.`, true);
	else say("manage", wordsFor(r, "The account was not renamed."), false);
}

function askClose(a, li, button) {
	const name = a.label || `${a.currency} account`;
	const yes = el("button", { type: "button", class: "confirm-close", onclick: () => closeAccount(a) }, `Yes, close ${name}`);
	const no = el("button", { type: "button", class: "secondary", onclick: () => { ask.remove(); button.hidden = false; button.focus(); } }, "Keep it open");
	const ask = el("div", { class: "inline", role: "group", "aria-label": `Close ${name}?` }, el("span", {}, "Closed for good: its history stays, no money can move to or from it."), yes, no);
	button.hidden = true;
	li.append(ask);
	yes.focus();
}

async function closeAccount(a) {
	const r = await api("POST", `/accounts/${encodeURIComponent(a.id)}/close`, { body: {} });
	await loadAccounts();
	renderManage();
	const name = a.label || `${a.currency} account`;
	if (r.status === 200) {
		refocus(`#manage-list li[data-account-id="${CSS.escape(a.id)}"]`);
		say("manage", `${name} is closed.`, true);
	} else {
		refocus(`#manage-list li[data-account-id="${CSS.escape(a.id)}"] button.close`);
		const balance = r.data?.error?.code === "ACCOUNT_NOT_EMPTY" ? ` It holds ${formatMinor(a.balance.available, a.currency)}.` : "";
		say("manage", `${wordsFor(r, "The account was not closed.")}${balance}`, false);
	}
}

// ---- start --------------------------------------------------------------------------

function start() {
	$("#orders").after(...cards());
	$("#bill-form").addEventListener("submit", getBill);
	$("#bill-pay").addEventListener("click", payBill);
	$("#bill-cancel").addEventListener("click", () => {
		hideConfirm();
		say("bill", "Not paid.", true);
		$("#bill-form").querySelector("button").focus();
	});
	$("#saved-bill-form").addEventListener("submit", saveBill);
	$("#payee-form").addEventListener("submit", savePayee);
	$("#method-form").addEventListener("submit", saveMethod);
	$("#method-form").kind.addEventListener("change", e => {
		$("#method-card").hidden = e.target.value !== "card";
		$("#method-bank").hidden = e.target.value !== "bank";
	});
	// The accounts table is redrawn on every balance or account change: follow it, except
	// while the person is typing a name or choosing to close (their field would be replaced).
	new MutationObserver(() => {
		if (!$("#manage-list").contains(document.activeElement)) renderManage();
	}).observe($("#accounts"), { childList: true });
	document.addEventListener("paymesh:signed-in", () => {
		renderManage();
		void loadBillers();
		void loadSaved();
		void loadPayments();
		void loadPayees();
		void loadMethods();
	});
	document.addEventListener("paymesh:signed-out", () => {
		hideConfirm();
		intended = null;
		for (const sel of ["#saved-bills", "#bill-payments", "#payees-list", "#methods-list", "#manage-list"]) $(sel).replaceChildren();
	});
	// A bill paid or returned, or a reminder, reaches the customer as a notification.
	document.addEventListener("paymesh:notification", e => {
		if (String(e.detail?.kind ?? "").startsWith("bill.")) {
			void loadPayments();
			void loadSaved();
		}
	});
}

if (typeof document !== "undefined") start();
