// The dashboard's everyday wallet (issue 18): find transactions across accounts (with an
// export), payment requests (ask, accept, decline, cancel) and standing orders (create,
// pause, resume, cancel), live through the
// notifications the server pushes. Amounts are read and written by the server's own
// rules (lib/amount.ts). Everything shown is set with textContent.
import { accessToken, accounts, api, el, formatMinor, readAmount, say } from "/app.js";
import { isCurrencyCode } from "/js/amount.js";

const $ = sel => document.querySelector(sel);
const CATEGORY_WORDS = {
	income: "Income", top_up: "Top-up", transfers: "Transfers", rent: "Rent", bills: "Bills", groceries: "Groceries", dining: "Eating out", transport: "Transport",
	shopping: "Shopping", entertainment: "Entertainment", health: "Health", travel: "Travel", fees: "Fees", exchange: "Currency exchange", refunds: "Refunds", other: "Other",
};
const STATUS_WORDS = {
	pending: "waiting for an answer", accepting: "being paid", paid: "paid", in_review: "paid, being checked", declined: "declined", cancelled: "cancelled", expired: "expired",
};
const FIND_PAGE = 20;
/**
 * The orders GET /transactions sorts by (its `sort`), each paged by its own cursor. By
 * amount, currencies come in alphabetical order and amounts within each (amounts of two
 * currencies do not compare).
 */
const SORTS = {
	newest: { column: "date", direction: "descending", words: "newest first" },
	oldest: { column: "date", direction: "ascending", words: "oldest first" },
	largest: { column: "amount", direction: "descending", words: "largest amount first, per currency" },
	smallest: { column: "amount", direction: "ascending", words: "smallest amount first, per currency" },
};
/** The search shown: its filters, order and next page; `asked` numbers the requests so only the latest one's answer is shown. */
const find = { cursor: null, query: "", sort: "newest", asked: 0 };

const when = iso => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

/** The filters of the search form as a query string (empty fields left out). */
function findQuery(form) {
	const q = new URLSearchParams();
	const text = form.q.value.trim();
	if (text) q.set("q", text);
	if (form.category.value) q.set("category", form.category.value);
	if (form.direction.value) q.set("direction", form.direction.value);
	// Dates are whole days in the person's calendar: from the start of "from" to the end of "to".
	if (form.from.value) q.set("from", new Date(`${form.from.value}T00:00:00`).toISOString());
	if (form.to.value) q.set("to", new Date(new Date(`${form.to.value}T00:00:00`).getTime() + 86_400_000).toISOString());
	return q.toString();
}

function transactionRow(t) {
	const signed = t.direction === "out" ? -t.amount : t.amount;
	return el("tr", { dataset: { transactionId: t.id } },
		el("td", {}, when(t.createdAt)),
		el("td", {}, t.counterparty.name),
		el("td", {}, t.description || "—"),
		el("td", { title: t.categoryReason }, CATEGORY_WORDS[t.category] ?? t.category),
		el("td", { class: `num ${t.direction}` }, formatMinor(signed, t.currency)));
}

/** The sortable headers say how the table is ordered (aria-sort on the one in use). */
function markSort() {
	const { column, direction } = SORTS[find.sort];
	for (const th of document.querySelectorAll("#find-results th[data-sort-by]")) {
		if (th.dataset.sortBy === column) th.setAttribute("aria-sort", direction);
		else th.removeAttribute("aria-sort");
	}
}

async function search(fresh) {
	const form = $("#find-form");
	if (fresh) {
		find.query = findQuery(form);
		find.cursor = null;
		find.sort = form.sort.value in SORTS ? form.sort.value : "newest";
		markSort();
	} else if (!find.cursor) return;
	const asked = ++find.asked;
	const q = new URLSearchParams(find.query);
	q.set("sort", find.sort);
	q.set("limit", String(FIND_PAGE));
	if (!fresh) q.set("cursor", find.cursor);
	const r = await api("GET", `/transactions?${q}`);
	// A search started since (another order or filter) has the table: this answer is not shown.
	if (asked !== find.asked) return;
	if (r.status !== 200) return say("find", r.data?.error?.message ?? "The search did not work. Try again.", false);
	const body = $("#find-results tbody");
	if (fresh) body.replaceChildren();
	const added = r.data.items.map(transactionRow);
	body.append(...added);
	find.cursor = r.data.nextCursor;
	const more = $("#find-more");
	const moreHadFocus = document.activeElement === more;
	more.hidden = !find.cursor;
	// The last page hides "More": its focus goes to the first row it brought, not to the page.
	if (moreHadFocus && more.hidden) {
		const first = added[0];
		if (first) {
			first.tabIndex = -1;
			first.focus();
		} else $("#find-title").focus();
	}
	const n = body.children.length;
	say("find", n === 0 ? "Nothing matches." : `${n}${find.cursor ? "+" : ""} transaction${n === 1 ? "" : "s"}, ${SORTS[find.sort].words}.`, true);
}

/** A sortable header pressed: its column in the other direction, or in its first one. */
function sortBy(column) {
	const form = $("#find-form");
	const now = SORTS[find.sort];
	form.sort.value = column === "date" ? (now.column === "date" && now.direction === "descending" ? "oldest" : "newest") : (now.column === "amount" && now.direction === "descending" ? "smallest" : "largest");
	void search(true);
}

async function exportCsv() {
	const r = await fetch(`/api/v1/transactions/export?${findQuery($("#find-form"))}`, { headers: await authHeader() });
	if (!r.ok) return say("find", "The download did not work. Try again.", false);
	const url = URL.createObjectURL(await r.blob());
	const a = el("a", { href: url, download: `transactions-${new Date().toISOString().slice(0, 10)}.csv` });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The access token, after a cheap authenticated call that refreshes it when it has run out. */
async function authHeader() {
	await api("GET", "/me");
	const token = accessToken();
	return token ? { authorization: `Bearer ${token}` } : {};
}

// ---- payment requests ---------------------------------------------------------------

function fillAccounts() {
	const s = $("#request-form").account;
	const chosen = s.value;
	s.replaceChildren(...accounts().filter(a => a.status === "active").map(a => el("option", { value: a.id }, `${a.label || a.currency} · ${formatMinor(a.balance.available, a.currency)}`)));
	if (chosen) s.value = chosen;
}

/** A new key per attempt: a retried click of the same form sends the same key, a new request a new one. */
let requestKey = null;

async function ask(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button");
	if (!accounts().some(a => a.id === f.account.value)) fillAccounts();
	const account = accounts().find(a => a.id === f.account.value);
	if (!account) return say("request", "Open an account first.", false);
	const email = f.email.value.trim();
	if (!email.includes("@")) {
		f.email.setAttribute("aria-invalid", "true");
		return say("request", "Enter the e-mail address of the person you ask.", false);
	}
	f.email.removeAttribute("aria-invalid");
	const read = readAmount(f.amount.value, account.currency);
	if (!("minor" in read)) {
		f.amount.setAttribute("aria-invalid", "true");
		f.amount.focus();
		return say("request", read.message, false);
	}
	f.amount.removeAttribute("aria-invalid");
	requestKey ??= crypto.randomUUID();
	button.disabled = true;
	try {
		const note = f.note.value.trim();
		const r = await api("POST", "/requests", { key: requestKey, body: { toAccountId: account.id, amount: read.minor, currency: account.currency, payerEmail: email, ...(note ? { note } : {}) } });
		// Focus goes back to the button before the message is announced, never to the page body.
		button.disabled = false;
		button.focus();
		if (r.status === 201) {
			requestKey = null;
			say("request", `Asked ${r.data.payer.name} for ${formatMinor(r.data.amount, r.data.currency)}.`, true);
			f.amount.value = "";
			f.note.value = "";
			await loadRequests();
		} else {
			requestKey = null;
			say("request", r.data?.error?.code === "RECIPIENT_NOT_FOUND" ? "Nobody with a verified address and an account in this currency has that e-mail." : r.data?.error?.message ?? "The request was not sent.", false);
		}
	} finally {
		button.disabled = false;
		button.focus();
	}
}

function requestItem(r, incoming) {
	const who = incoming ? `${r.requester.name} asks you for` : `You asked ${r.payer.name} for`;
	const li = el("li", { dataset: { requestId: r.id, status: r.status } },
		el("span", {}, `${who} ${formatMinor(r.amount, r.currency)}${r.note ? ` — “${r.note}”` : ""}: `),
		el("strong", { class: "status" }, STATUS_WORDS[r.status] ?? r.status));
	if (r.failureCode && r.status === "pending") li.append(el("span", { class: "bad" }, ` (last try: ${r.failureCode === "INSUFFICIENT_FUNDS" ? "not enough money" : "refused"})`));
	if (incoming && r.status === "pending") {
		const from = accounts().filter(a => a.currency === r.currency && a.status === "active");
		if (from.length > 0) {
			const select = el("select", { "aria-label": "Pay from" }, ...from.map(a => el("option", { value: a.id }, `${a.label || a.currency} · ${formatMinor(a.balance.available, a.currency)}`)));
			li.append(" ", select, " ",
				el("button", { type: "button", class: "accept", onclick: e => answer(r, "accept", e.target, select.value) }, `Pay ${formatMinor(r.amount, r.currency)}`), " ",
				el("button", { type: "button", class: "decline", onclick: e => answer(r, "decline", e.target) }, "Decline"));
		} else {
			li.append(el("span", {}, ` Open a ${r.currency} account to pay it.`));
		}
	}
	if (!incoming && r.status === "pending") li.append(" ", el("button", { type: "button", class: "cancel", onclick: e => answer(r, "cancel", e.target) }, "Cancel"));
	return li;
}

async function answer(r, op, button, fromAccountId) {
	button.disabled = true;
	const res = await api("POST", `/requests/${encodeURIComponent(r.id)}/${op}`, { body: op === "accept" ? { fromAccountId } : {} });
	if (res.status !== 200) say("request", res.data?.error?.code === "INSUFFICIENT_FUNDS" ? "Not enough money in that account to pay this request." : res.data?.error?.message ?? "That did not work.", false);
	await loadRequests();
	// Focus stays on the request just answered (its new state), not on the page body.
	const item = $(`[data-request-id="${CSS.escape(r.id)}"]`);
	if (item) {
		item.setAttribute("tabindex", "-1");
		item.focus();
	}
}

async function loadRequests() {
	const [incoming, outgoing] = await Promise.all([api("GET", "/requests?role=incoming&limit=20"), api("GET", "/requests?role=outgoing&limit=20")]);
	if (incoming.status === 200) $("#requests-in").replaceChildren(...incoming.data.items.map(r => requestItem(r, true)));
	if (outgoing.status === 200) $("#requests-out").replaceChildren(...outgoing.data.items.map(r => requestItem(r, false)));
}

// ---- standing orders --------------------------------------------------------------

const FREQUENCY_WORDS = { once: "once", daily: "every day", weekly: "every week", monthly: "every month" };
const ORDER_STATUS_WORDS = { active: "active", paused: "paused", cancelled: "cancelled", finished: "finished" };
let orderKey = null;

function fillOrderAccounts() {
	const s = $("#order-form").account;
	const chosen = s.value;
	s.replaceChildren(...accounts().filter(a => a.status === "active").map(a => el("option", { value: a.id }, `${a.label || a.currency} · ${formatMinor(a.balance.available, a.currency)}`)));
	if (chosen) s.value = chosen;
}

function orderItem(o) {
	const day = o.frequency === "monthly" ? ` on day ${o.dayOfMonth}` : "";
	const li = el("li", { dataset: { orderId: o.id, status: o.status } },
		el("span", {}, `${formatMinor(o.amount, o.currency)} to ${o.payeeName}, ${FREQUENCY_WORDS[o.frequency] ?? o.frequency}${day}${o.description ? ` — “${o.description}”` : ""}; `),
		el("span", {}, o.nextDue ? `next ${o.nextDue}` : "no more payments"),
		el("strong", { class: "status" }, ORDER_STATUS_WORDS[o.status] ?? o.status));
	const act = (op, label) => el("button", { type: "button", class: `secondary ${op}`, onclick: e => changeOrder(o, op, e.target) }, label);
	if (o.status === "active") li.append(act("pause", "Pause"), act("cancel", "Cancel"));
	if (o.status === "paused") li.append(act("resume", "Resume"), act("cancel", "Cancel"));
	return li;
}

async function loadOrders() {
	const r = await api("GET", "/schedules?limit=20");
	if (r.status === 200) $("#orders-list").replaceChildren(...r.data.items.map(orderItem));
}

async function changeOrder(o, op, button) {
	button.disabled = true;
	const r = await api("POST", `/schedules/${encodeURIComponent(o.id)}/${op}`, { body: {} });
	if (r.status !== 200) say("order", r.data?.error?.message ?? "That did not work.", false);
	await loadOrders();
	const item = $(`[data-order-id="${CSS.escape(o.id)}"]`);
	if (item) {
		item.setAttribute("tabindex", "-1");
		item.focus();
	}
}

async function createOrder(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button");
	if (!accounts().some(a => a.id === f.account.value)) fillOrderAccounts();
	const account = accounts().find(a => a.id === f.account.value);
	if (!account) return say("order", "Open an account first.", false);
	const read = readAmount(f.amount.value, account.currency);
	if (!("minor" in read)) {
		f.amount.setAttribute("aria-invalid", "true");
		f.amount.focus();
		return say("order", read.message, false);
	}
	f.amount.removeAttribute("aria-invalid");
	const to = f.to.value.trim();
	if (!f.start.value) return say("order", "Choose the date of the first payment.", false);
	const frequency = f.frequency.value;
	const body = {
		fromAccountId: account.id, amount: read.minor, currency: account.currency, frequency, startDate: f.start.value,
		...(to.includes("@") ? { toEmail: to } : { toAccountId: to }),
		...(frequency === "monthly" ? { dayOfMonth: Number(f.day.value) || 1 } : {}),
		...(f.end.value ? { endDate: f.end.value } : {}),
		...(f.description.value.trim() ? { description: f.description.value.trim() } : {}),
	};
	orderKey ??= crypto.randomUUID();
	button.disabled = true;
	const r = await api("POST", "/schedules", { key: orderKey, body });
	button.disabled = false;
	button.focus();
	orderKey = null;
	if (r.status === 201) {
		say("order", `Standing order to ${r.data.payeeName} created; first payment ${r.data.nextDue ?? "none"}.`, true);
		f.amount.value = "";
		await loadOrders();
	} else {
		say("order", r.data?.error?.code === "RECIPIENT_NOT_FOUND" ? "Nobody with a verified address and an account in this currency has that e-mail, or there is no such account." : r.data?.error?.message ?? "The standing order was not created.", false);
	}
}

// ---- where the money went ----------------------------------------------------------

async function loadSpending() {
	const month = $("#spending-form").month.value || new Date().toISOString().slice(0, 7);
	const r = await api("GET", `/insights?month=${encodeURIComponent(month)}`);
	if (r.status !== 200) return say("spending", r.data?.error?.message ?? "The figures could not be read.", false);
	const items = r.data.byCategory;
	const max = new Map();
	for (const c of items) max.set(c.currency, Math.max(max.get(c.currency) ?? 0, c.totalMinor));
	// Bar heights through the CSSOM (the Content-Security-Policy refuses style attributes); each bar says its figure.
	$("#spending-chart").replaceChildren(...items.map(c => el("div", {
		class: "col", style: { height: `${Math.max(2, Math.round((c.totalMinor / (max.get(c.currency) || 1)) * 100))}%` },
		title: `${CATEGORY_WORDS[c.category] ?? c.category}: ${formatMinor(c.totalMinor, c.currency)}`,
	}, el("span", {}, CATEGORY_WORDS[c.category] ?? c.category))));
	$("#spending-table tbody").replaceChildren(...items.map(c => el("tr", { dataset: { category: c.category } },
		el("td", {}, CATEGORY_WORDS[c.category] ?? c.category),
		el("td", { class: "num" }, formatMinor(c.totalMinor, c.currency)),
		el("td", { class: "num" }, c.historyAverageMinor > 0 ? formatMinor(c.historyAverageMinor, c.currency) : "—"))));
	$("#insights").replaceChildren(...r.data.insights.map(i => el("li", {}, i.why)));
	const out = r.data.totals.map(t => `${formatMinor(t.outMinor, t.currency)} out, ${formatMinor(t.inMinor, t.currency)} in`).join("; ");
	say("spending", items.length === 0 ? `Nothing spent in ${month}.` : `${month}: ${out}.`, true);
}

function start() {
	const cat = $("#find-form").category;
	cat.append(...Object.entries(CATEGORY_WORDS).map(([v, w]) => el("option", { value: v }, w)));
	$("#find-form").addEventListener("submit", e => {
		e.preventDefault();
		void search(true);
	});
	$("#find-more").addEventListener("click", () => search(false));
	for (const th of document.querySelectorAll("#find-results th[data-sort-by]")) th.querySelector("button").addEventListener("click", () => sortBy(th.dataset.sortBy));
	$("#find-export").addEventListener("click", exportCsv);
	$("#request-form").addEventListener("submit", ask);
	$("#request-form").account.addEventListener("focus", fillAccounts);
	$("#order-form").addEventListener("submit", createOrder);
	$("#spending-form").addEventListener("submit", e => {
		e.preventDefault();
		void loadSpending();
	});
	// A new insight (a payment far above the usual) updates the figures it comes from.
	document.addEventListener("paymesh:insight", () => void loadSpending());
	$("#order-form").account.addEventListener("focus", fillOrderAccounts);
	document.addEventListener("paymesh:signed-in", () => {
		fillAccounts();
		fillOrderAccounts();
		void loadOrders();
		void loadSpending();
		void loadRequests();
		void search(true);
	});
	// Live: a request made, paid, declined, cancelled or expired reaches both people as a notification.
	document.addEventListener("paymesh:notification", e => {
		fillAccounts();
		fillOrderAccounts();
		if (String(e.detail?.kind ?? "").startsWith("request.")) void loadRequests();
		if (String(e.detail?.kind ?? "").startsWith("schedule.")) void loadOrders();
	});
}

if (typeof document !== "undefined" && isCurrencyCode("USD")) start();
