// Webhooks (issue 18, dashboard second edition): the customer's endpoints, adding one (its
// signing secret shown once, then gone from the page), a new secret (after a confirmation:
// the old one stops at once), deleting one (after a confirmation; the API disables it, and
// it stays listed as deleted with its delivery log), and each endpoint's deliveries with
// their status and last answer. Everything shown is set with textContent; the secret is
// kept nowhere but the one element that shows it.
import { api, el, isUuid, pathOf, say } from "/app.js";

const $ = sel => document.querySelector(sel);
const DELIVERIES_PAGE = 20;
/** What POST /webhooks takes as `events`: at most 3 (none means all of them). */
const EVENTS_MAX = 3;
const EVENT_WORDS = {
	"transfer.completed": "Money moved",
	"payment.status_changed": "A payment changed status",
	"payment.refunded": "A payment was refunded",
	"balance.updated": "A balance changed",
	"hold.created": "Money was held",
	"hold.posted": "Held money was paid",
	"hold.voided": "Held money was released",
	"hold.expired": "A hold ran out",
};
const DELIVERY_WORDS = { pending: "waiting or retrying", delivered: "delivered", dead: "given up" };
const WORDS = {
	WEBHOOK_LIMIT_REACHED: "You have as many endpoints as you can. Delete one first.",
	WEBHOOK_NOT_FOUND: "That endpoint is deleted or not yours.",
	VALIDATION_ERROR: "Enter the full address of your endpoint, starting with https://, on a public server.",
	RATE_LIMITED: "Too many requests. Wait a moment and try again.",
};
const wordsFor = (r, fallback) => WORDS[r?.data?.error?.code] ?? r?.data?.error?.message ?? fallback;
const when = iso => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** The endpoint whose deliveries are on show. */
let shown = null;

function refocus(sel) {
	const e = $(sel);
	if (!e) return false;
	if (!e.matches("button, input, select, a")) e.setAttribute("tabindex", "-1");
	e.focus();
	return true;
}

// ---- adding, and the secret shown once -----------------------------------------------------

function showSecret(endpoint, what) {
	$("#webhook-secret-title").textContent = `${what} for ${endpoint.url}`;
	$("#webhook-secret-value").textContent = endpoint.secret;
	$("#webhook-secret").dataset.endpointId = endpoint.id;
	$("#webhook-secret").hidden = false;
	$("#webhook-secret-title").focus();
}

function forgetSecret() {
	$("#webhook-secret-value").textContent = "";
	$("#webhook-secret").hidden = true;
	delete $("#webhook-secret").dataset.endpointId;
}

async function add(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button[type=submit]");
	f.url.removeAttribute("aria-invalid");
	const url = f.url.value.trim();
	if (!/^https?:\/\/[\x21-\x7e]+$/i.test(url) || url.length > 2_000) {
		f.url.setAttribute("aria-invalid", "true");
		f.url.focus();
		return say("webhook", "Enter the full address of your endpoint, such as https://example.com/paymesh.", false);
	}
	const events = [...f.querySelectorAll("input[name=event]:checked")].map(i => i.value);
	if (events.length > EVENTS_MAX && events.length < Object.keys(EVENT_WORDS).length) {
		f.querySelector("input[name=event]").focus();
		return say("webhook", `Choose up to ${EVENTS_MAX} events, or none for all of them.`, false);
	}
	forgetSecret();
	button.disabled = true;
	const r = await api("POST", "/webhooks", { body: { url, ...(events.length > 0 && events.length <= EVENTS_MAX ? { events } : {}) } }).catch(() => null);
	button.disabled = false;
	if (!r || r.status !== 201) {
		button.focus();
		if (r?.data?.error?.code === "VALIDATION_ERROR") f.url.setAttribute("aria-invalid", "true");
		return say("webhook", r ? wordsFor(r, "The endpoint was not added.") : "Could not reach Paymesh. Try again.", false);
	}
	f.reset();
	say("webhook", `Endpoint added: ${r.data.url}. Copy its secret now.`, true);
	await load();
	showSecret(r.data, "Signing secret");
}

// ---- the list -----------------------------------------------------------------------------

function endpointItem(w) {
	const events = w.events.length === Object.keys(EVENT_WORDS).length ? "every event" : w.events.map(x => EVENT_WORDS[x] ?? x).join(", ");
	const li = el("li", { dataset: { webhookId: w.id, status: w.status } },
		el("code", {}, w.url),
		el("span", {}, `${events}; added ${when(w.createdAt)}`),
		el("strong", { class: "status" }, w.status === "active" ? "sending" : "deleted"));
	li.append(el("button", { type: "button", class: "secondary deliveries", "aria-label": `Deliveries to ${w.url}`, onclick: () => openDeliveries(w) }, "Deliveries"));
	if (w.status === "active") {
		const rotateButton = el("button", { type: "button", class: "secondary rotate", "aria-label": `New secret for ${w.url}` }, "New secret");
		rotateButton.addEventListener("click", () => ask(li, rotateButton, `Make a new secret for ${w.url}? The current one stops working at once: your server needs the new one to check events.`, "Yes, make a new secret", () => rotate(w)));
		const deleteButton = el("button", { type: "button", class: "secondary delete", "aria-label": `Delete ${w.url}` }, "Delete");
		deleteButton.addEventListener("click", () => ask(li, deleteButton, `Delete ${w.url}? No more events are sent to it; this cannot be undone. Its delivery log stays.`, "Yes, delete it", () => remove(w)));
		li.append(rotateButton, deleteButton);
	}
	return li;
}

/** A confirmation in the item: the question, yes and no; focus starts on the harmless answer. */
function ask(li, button, question, yesText, action) {
	li.querySelector(".confirm")?.remove();
	const no = el("button", { type: "button", class: "secondary no" }, "Keep it");
	const yes = el("button", { type: "button", class: "yes" }, yesText);
	const box = el("div", { class: "confirm inline", role: "group", "aria-label": question }, el("span", {}, question), yes, no);
	no.addEventListener("click", () => {
		box.remove();
		button.focus();
	});
	yes.addEventListener("click", async () => {
		yes.disabled = true;
		no.disabled = true;
		await action();
	});
	li.append(box);
	no.focus();
}

async function load() {
	const r = await api("GET", "/webhooks");
	if (r.status !== 200) return;
	$("#webhooks-list").replaceChildren(...r.data.items.map(endpointItem));
}

async function rotate(w) {
	const r = await api("POST", pathOf`/webhooks/${w.id}/rotate`, { body: {} }).catch(() => null);
	await load();
	if (r?.status === 200) {
		say("webhook", `New secret made for ${w.url}; the old one no longer works. Copy the new one now.`, true);
		showSecret(r.data, "New signing secret");
	} else {
		say("webhook", r ? wordsFor(r, "No new secret was made.") : "Could not reach Paymesh. Try again.", false);
		refocus(`#webhooks-list li[data-webhook-id="${CSS.escape(w.id)}"] button.rotate`) || refocus("#webhook-form button[type=submit]");
	}
}

async function remove(w) {
	const r = await api("POST", pathOf`/webhooks/${w.id}/disable`, { body: {} }).catch(() => null);
	if (r?.status === 200 && $("#webhook-secret").dataset.endpointId === w.id) forgetSecret();
	await load();
	const ok = r?.status === 200;
	say("webhook", ok ? `${w.url} is deleted: no more events go to it.` : r ? wordsFor(r, "It was not deleted.") : "Could not reach Paymesh. Try again.", ok);
	refocus(`#webhooks-list li[data-webhook-id="${CSS.escape(w.id)}"]`);
}

// ---- deliveries -----------------------------------------------------------------------------

function deliveryRow(d) {
	const answer = d.lastStatus !== null ? `HTTP ${d.lastStatus}` : d.lastError ? d.lastError : "none yet";
	return el("tr", { dataset: { deliveryId: d.id, status: d.status } },
		el("td", {}, when(d.createdAt)),
		el("td", {}, EVENT_WORDS[d.event] ?? d.event),
		el("td", {}, DELIVERY_WORDS[d.status] ?? d.status),
		el("td", { class: "num" }, String(d.attempts)),
		el("td", {}, answer));
}

async function loadDeliveries() {
	if (!shown || !isUuid(shown.id)) return;
	const r = await api("GET", `${pathOf`/webhooks/${shown.id}/deliveries`}?limit=${DELIVERIES_PAGE}`);
	if (r.status !== 200) return say("webhook", wordsFor(r, "The deliveries could not be read."), false);
	$("#webhook-deliveries-table tbody").replaceChildren(...r.data.items.map(deliveryRow));
	const n = r.data.items.length;
	$("#webhook-deliveries-title").textContent = `Deliveries to ${shown.url}: ${n === 0 ? "none yet" : `${n}${r.data.nextCursor ? "+" : ""}`}`;
}

async function openDeliveries(w) {
	shown = w;
	// Shown once this endpoint's rows are in, so the panel never opens on another endpoint's
	// rows, and the focus moves to its title in the same step.
	$("#webhook-deliveries-table tbody").replaceChildren();
	await loadDeliveries();
	if (shown !== w) return;
	$("#webhook-deliveries").hidden = false;
	$("#webhook-deliveries-title").focus();
}

function start() {
	$("#webhook-events").replaceChildren(...Object.entries(EVENT_WORDS).map(([value, words]) =>
		el("label", { class: "check" }, el("input", { type: "checkbox", name: "event", value }), el("span", {}, `${words} `, el("code", {}, value)))));
	$("#webhook-form").addEventListener("submit", add);
	$("#webhook-secret-done").addEventListener("click", () => {
		forgetSecret();
		say("webhook", "The secret is no longer shown.", true);
		$("#webhook-form").querySelector("button[type=submit]").focus();
	});
	$("#webhook-deliveries-refresh").addEventListener("click", async () => {
		await loadDeliveries();
		$("#webhook-deliveries-refresh").focus();
	});
	$("#webhook-deliveries-close").addEventListener("click", () => {
		const id = shown?.id;
		shown = null;
		$("#webhook-deliveries").hidden = true;
		if (!id || !refocus(`#webhooks-list li[data-webhook-id="${CSS.escape(id)}"] button.deliveries`)) refocus("#webhook-form button[type=submit]");
	});
	document.addEventListener("paymesh:signed-in", () => void load());
	document.addEventListener("paymesh:signed-out", () => {
		forgetSecret();
		shown = null;
		$("#webhook-deliveries").hidden = true;
		$("#webhooks-list").replaceChildren();
		say("webhook", "", true);
	});
}

if (typeof document !== "undefined") start();
