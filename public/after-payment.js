// After the payment (issue 17) in the dashboard: a payment's detail, from which its
// recipient refunds it in parts or whole (support too, on the customer's request, with a
// reason), with the refunds made and what is left; and the staff's disputes view (the
// customer, state, deadline, held amount, evidence, the provider's outcome recorded by an
// admin). Amounts are read by the server's own rules (lib/amount.ts). One idempotency key per
// intended refund: made when the refund is reviewed, kept until a definite answer, so a
// double click or a retry after a network error never refunds twice. Everything shown is
// set with textContent.
import { accounts, api, el, formatMinor, isUuid, pathOf, readAmount, say } from "/app.js";

const $ = sel => document.querySelector(sel);
const when = iso => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
const PAYMENT_HASH = /^#payment=([0-9a-f-]{36})$/i;

let me = null;
/** The payment on show: how it was opened, its figures, and the refund being confirmed (with its key). */
const detail = { ref: null, paymentId: null, currency: null, refundable: 0, canRefund: false, staff: false, pending: null, busy: false, seq: 0, latest: null };

// ---- words -------------------------------------------------------------------------

function refusal(body, currency) {
	const e = body?.error ?? {};
	const left = e.details?.refundableMinor;
	switch (e.code) {
		case "REFUND_EXCEEDS_PAYMENT":
			return left === "0" || left === 0 ? "Nothing is left to refund: this payment is fully refunded." : `That is more than what is left to refund (${formatMinor(Number(left ?? 0), currency)}).`;
		case "PAYMENT_NOT_FOUND": return "Only the person who received this payment can refund it.";
		case "ALREADY_REVERSED": return "Our team reversed this payment already, so it cannot be refunded.";
		case "INSUFFICIENT_FUNDS": return "Not enough money in your account to give this back.";
		case "ACCOUNT_FROZEN": return "One of the accounts is frozen, so no money can move.";
		case "FORBIDDEN": return "Nobody refunds a payment they made or received, and only support refunds for a customer.";
		case "VALIDATION_ERROR": return "Please check the amount and the reason (3 characters at least).";
		case "IDEMPOTENCY_MISMATCH": return "This attempt was used for a different refund already. Review the refund again.";
		case "RATE_LIMITED": return "Too many requests. Wait a moment and try again.";
		case "SERVICE_UNAVAILABLE": return "Paymesh is busy. Try again: the refund will not be made twice.";
		default: return e.message ?? "The refund did not go through.";
	}
}

// ---- a payment's detail ------------------------------------------------------------

function fact(term, value) {
	return [el("dt", {}, term), el("dd", {}, value)];
}

function person(p, fallback) {
	return p ? `${p.name} (${p.email})` : fallback;
}

/**
 * Opens a payment: from a transfer the customer can see (history, payments list: the
 * payment itself, the post of a reviewed payment, or one of its refunds), or for staff by
 * the payment's id. Reads it again when called with the same one (a live update).
 */
export function openPayment(ref, { focus = true } = {}) {
	const fresh = detail.ref?.transferId !== ref.transferId || detail.ref?.paymentId !== ref.paymentId;
	if (fresh) {
		detail.pending = null;
		$("#refund-confirm").hidden = true;
		say("refund", "", true);
		$("#refund-form").reset();
	}
	detail.ref = ref;
	detail.staff = ref.staff === true;
	const seq = ++detail.seq;
	const reading = (detail.staff ? loadForStaff(ref.paymentId) : loadForCustomer(ref.transferId)).catch(() => ({ ok: false, message: "Could not reach Paymesh. Try again." }));
	const drawn = draw(ref, seq, reading, focus);
	detail.latest = drawn;
	return drawn;
}

async function draw(ref, seq, reading, focus) {
	const loaded = await reading;
	const card = $("#payment-detail");
	// A newer opening (a live update, another payment) was asked for while this one read: the
	// caller resolves once that one is drawn, so what it does next (a message, the focus)
	// follows what is on show, never a drawing about to be replaced.
	if (seq !== detail.seq) {
		await detail.latest;
		if (focus && !card.hidden) $("#detail-title").focus();
		return;
	}
	card.hidden = false;
	if (!loaded.ok) {
		$("#detail-facts").replaceChildren();
		$("#detail-refunds").replaceChildren();
		$("#refund-form").hidden = true;
		$("#detail-note").textContent = loaded.message;
	} else {
		render(loaded);
	}
	if (!detail.staff && ref.transferId) history.replaceState(null, "", `#payment=${ref.transferId}`);
	if (focus) {
		card.scrollIntoView({ block: "start" });
		$("#detail-title").focus();
	}
}

async function loadForCustomer(transferId) {
	if (!isUuid(transferId)) return { ok: false, message: "That is not a payment." };
	let t = await api("GET", pathOf`/transfers/${transferId}`);
	if (t.status === 200 && t.data.kind === "refund" && t.data.reversesTransferId) t = await api("GET", pathOf`/transfers/${t.data.reversesTransferId}`);
	if (t.status !== 200) return { ok: false, message: "This payment is not yours to see, or it does not exist." };
	const paymentId = t.data.kind === "hold_post" ? t.data.holdId : t.data.kind === "payment" ? t.data.id : null;
	if (!paymentId) return { ok: false, message: "Only payments between people can be refunded here." };
	const r = await api("GET", pathOf`/payments/${paymentId}/refunds`);
	if (r.status !== 200) return { ok: false, message: "Only payments between people can be refunded here." };
	const mine = new Set(accounts().map(a => a.id));
	const payee = mine.has(t.data.toAccountId);
	return {
		ok: true, paymentId, refunds: r.data, createdAt: t.data.createdAt, description: t.data.description,
		who: payee ? ["Paid to", "you"] : ["Paid by", "you"], payee, staff: false,
	};
}

async function loadForStaff(paymentId) {
	if (!isUuid(paymentId)) return { ok: false, message: "Enter a payment id (a UUID)." };
	const r = await api("GET", pathOf`/admin/payments/${paymentId}/refunds`);
	if (r.status === 404) return { ok: false, message: "No payment between people has that id." };
	if (r.status !== 200) return { ok: false, message: refusal(r.data, "USD") };
	return { ok: true, paymentId, refunds: r.data, createdAt: r.data.createdAt, description: r.data.description, payer: r.data.payer, payeePerson: r.data.payee, payee: false, staff: true };
}

function render(d) {
	const r = d.refunds;
	detail.paymentId = d.paymentId;
	detail.currency = r.currency;
	detail.refundable = r.refundableAmount;
	detail.canRefund = (d.payee || d.staff) && r.refundableAmount > 0;
	$("#detail-title").textContent = `Payment of ${formatMinor(r.amount, r.currency)}`;
	$("#payment-detail").dataset.paymentId = d.paymentId;
	$("#payment-detail").dataset.refundable = String(r.refundableAmount);
	$("#detail-facts").replaceChildren(
		...(d.staff ? [...fact("Paid by", person(d.payer, "someone without a profile")), ...fact("Paid to", person(d.payeePerson, "a system account"))] : fact(d.who[0], d.who[1])),
		...fact("When", when(d.createdAt)),
		...(d.description ? fact("What for", d.description) : []),
		...fact("Refunded", formatMinor(r.refundedAmount, r.currency)),
		...fact("Left to refund", formatMinor(r.refundableAmount, r.currency)),
	);
	$("#detail-refunds").replaceChildren(...(r.items.length === 0
		? [el("li", {}, "No refunds yet.")]
		: r.items.map(x => el("li", { dataset: { refundId: x.id } }, el("span", {}, `${formatMinor(x.amount, x.currency)} refunded`), el("span", { class: "muted" }, when(x.createdAt))))));
	$("#detail-note").textContent = r.refundableAmount === 0
		? "Fully refunded: nothing is left to refund."
		: d.payee || d.staff ? `You can refund up to ${formatMinor(r.refundableAmount, r.currency)}, in one go or in parts.` : "Only the person you paid can refund this payment.";
	$("#refund-form").hidden = !detail.canRefund;
	$("#refund-reason-row").hidden = !d.staff;
}

/** Step one: the amount read by the currency's rules and checked against what is left; then the confirmation, with this refund's key. */
function review(e) {
	e.preventDefault();
	const f = e.target;
	const read = readAmount(f.amount.value, detail.currency);
	if (!("minor" in read)) return refuseField(f.amount, read.message);
	if (read.minor > detail.refundable) {
		return refuseField(f.amount, detail.refundable === 0 ? "Nothing is left to refund: this payment is fully refunded." : `That is more than what is left to refund (${formatMinor(detail.refundable, detail.currency)}).`);
	}
	f.amount.removeAttribute("aria-invalid");
	const reason = f.reason.value.trim();
	if (detail.staff && reason.length < 3) return refuseField(f.reason, "Say why: the customer's request, in a few words.");
	f.reason.removeAttribute("aria-invalid");
	const same = detail.pending && detail.pending.amount === read.minor && detail.pending.reason === reason && detail.pending.paymentId === detail.paymentId;
	// One key per intended refund: the same refund reviewed again keeps it.
	if (!same) detail.pending = { paymentId: detail.paymentId, amount: read.minor, reason, key: crypto.randomUUID() };
	const left = detail.refundable - read.minor;
	$("#refund-confirm-text").textContent = `Refund ${formatMinor(read.minor, detail.currency)} to ${detail.staff ? "the payer" : "the person who paid you"}? ${left === 0 ? "Nothing will be left to refund." : `${formatMinor(left, detail.currency)} will be left to refund.`} A refund cannot be undone.`;
	$("#refund-confirm").hidden = false;
	say("refund", "", true);
	$("#refund-yes").focus();
}

function refuseField(input, message) {
	input.setAttribute("aria-invalid", "true");
	input.focus();
	say("refund", message, false);
}

/** Step two: the refund, once, under the key made at review. */
async function confirmRefund() {
	const p = detail.pending;
	const button = $("#refund-yes");
	if (!p || detail.busy) return;
	detail.busy = true;
	button.disabled = true;
	let r;
	try {
		r = detail.staff
			? await api("POST", pathOf`/admin/payments/${p.paymentId}/refunds`, { key: p.key, body: { amount: p.amount, reason: p.reason } })
			: await api("POST", pathOf`/payments/${p.paymentId}/refunds`, { key: p.key, body: { amount: p.amount } });
	} catch {
		r = { status: 0, data: { error: { code: "SERVICE_UNAVAILABLE" } } };
	} finally {
		detail.busy = false;
		button.disabled = false;
	}
	const currency = detail.currency;
	// Unavailable: the key stays for the retry, which the server answers once.
	if (r.status === 0 || r.status >= 500 || r.status === 429) {
		button.focus();
		return say("refund", refusal(r.data?.error ? r.data : { error: { code: "SERVICE_UNAVAILABLE" } }, currency), false);
	}
	detail.pending = null;
	$("#refund-confirm").hidden = true;
	const form = $("#refund-form");
	if (r.status === 201) {
		form.amount.value = "";
		form.reason.value = "";
		await openPayment(detail.ref, { focus: false });
		say("refund", `Refunded ${formatMinor(r.data.amount, currency)}. ${r.data.refundableAmount === 0 ? "The payment is fully refunded." : `${formatMinor(r.data.refundableAmount, currency)} is left to refund.`}`, true);
	} else {
		await openPayment(detail.ref, { focus: false });
		say("refund", refusal(r.data, currency), false);
	}
	// Focus stays in the card: on the amount when more can be refunded, else on its title.
	if (!form.hidden) form.amount.focus();
	else $("#detail-title").focus();
}

function cancelReview() {
	$("#refund-confirm").hidden = true;
	$("#refund-form").amount.focus();
}

function closeDetail() {
	const opener = detail.ref?.opener;
	detail.ref = null;
	detail.pending = null;
	$("#payment-detail").hidden = true;
	if (PAYMENT_HASH.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
	if (opener?.isConnected) opener.focus();
	else $("#history-title")?.focus?.();
}

function lookup(e) {
	e.preventDefault();
	const id = e.target.id.value.trim();
	if (!isUuid(id)) {
		e.target.id.setAttribute("aria-invalid", "true");
		e.target.id.focus();
		return say("lookup", "Enter the payment's id (a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b).", false);
	}
	e.target.id.removeAttribute("aria-invalid");
	say("lookup", "", true);
	void openPayment({ paymentId: id, staff: true, opener: e.target.querySelector("button") });
}

// ---- disputes (staff) --------------------------------------------------------------

const DISPUTE_WORDS = { open: "open", evidence_submitted: "evidence sent", deciding: "being decided", won: "won", lost: "lost" };
const dispute = { id: null, data: null, outcome: null, busy: false };
const isAdmin = () => me?.roles?.includes("admin") === true;
const isStaff = () => me?.roles?.some(r => r === "support" || r === "admin") === true;
// An outcome is recorded from the moment it claims the dispute (deciding), before its money has moved.
const decided = d => d.status === "deciding" || d.status === "won" || d.status === "lost";

function customerOf(d) {
	return d.customer ? `${d.customer.name} (${d.customer.email})` : `a customer without a profile (…${d.userId.slice(-6)})`;
}

function deadlineOf(d) {
	const passed = new Date(d.deadline).getTime() < Date.now();
	return `${when(d.deadline)}${passed && !decided(d) ? " (passed)" : ""}`;
}

function disputeItem(d) {
	const held = `${formatMinor(d.heldAmount, d.currency)} held${d.shortfall > 0 ? `, ${formatMinor(d.shortfall, d.currency)} not covered` : ""}`;
	return el("li", { dataset: { disputeId: d.id, status: d.status } },
		el("span", {}, `${customerOf(d)} · ${formatMinor(d.amount, d.currency)} disputed · ${held} · evidence by ${deadlineOf(d)}`),
		el("strong", { class: "status", dataset: { status: d.status } }, DISPUTE_WORDS[d.status] ?? d.status),
		el("button", { type: "button", class: "secondary", "aria-label": `Open the dispute of ${formatMinor(d.amount, d.currency)} by ${d.customer?.name ?? "a customer"}`, onclick: () => showDispute(d.id) }, "Open"));
}

async function loadDisputes() {
	const status = $("#disputes-filter").status.value;
	const r = await api("GET", `/admin/disputes?limit=50${status ? `&status=${encodeURIComponent(status)}` : ""}`);
	if (r.status !== 200) return say("disputes", "The disputes could not be read. Try again.", false);
	$("#disputes-list").replaceChildren(...r.data.items.map(disputeItem));
	const n = r.data.items.length;
	say("disputes", n === 0 ? "No disputes." : `${n} dispute${n === 1 ? "" : "s"}.`, true);
}

async function showDispute(id, { focus = true } = {}) {
	if (!isUuid(id)) return;
	const r = await api("GET", pathOf`/admin/disputes/${id}`);
	if (r.status !== 200) return say("disputes", "That dispute could not be read.", false);
	if (dispute.id !== id) {
		dispute.outcome = null;
		$("#outcome-confirm").hidden = true;
		$("#evidence-form").reset();
		$("#outcome-form").reset();
		say("dispute", "", true);
	}
	dispute.id = id;
	dispute.data = r.data;
	const d = r.data;
	$("#dispute-title").textContent = `Dispute of ${formatMinor(d.amount, d.currency)} by ${d.customer?.name ?? "a customer"}`;
	$("#dispute-detail").dataset.disputeId = d.id;
	$("#dispute-detail").dataset.status = d.status;
	$("#dispute-facts").replaceChildren(
		...fact("Customer", customerOf(d)),
		...fact("State", DISPUTE_WORDS[d.status] ?? d.status),
		...fact("Evidence by", deadlineOf(d)),
		...fact("Disputed", formatMinor(d.amount, d.currency)),
		...fact("Held from the account", formatMinor(d.heldAmount, d.currency)),
		...(d.shortfall > 0 ? fact("Not covered (suspense pays if lost)", formatMinor(d.shortfall, d.currency)) : []),
		...(d.alreadyRefunded > 0 ? fact("Of it, already refunded (send the refund as evidence)", formatMinor(d.alreadyRefunded, d.currency)) : []),
		...fact("Provider", `${d.provider} · ${d.providerDisputeId}`),
		...(d.reason ? fact("Their reason", d.reason) : []),
		...(d.decidedAt ? fact("Decided", when(d.decidedAt)) : []),
	);
	$("#dispute-evidence").replaceChildren(...(d.evidence.length === 0
		? [el("li", {}, "No evidence yet.")]
		: d.evidence.map(e => el("li", { dataset: { evidenceId: e.id } }, el("span", {}, e.note), e.fileName ? el("span", { class: "muted" }, `${e.fileName} · ${e.bytes} bytes`) : "", el("span", { class: "muted" }, when(e.createdAt))))));
	const passed = new Date(d.deadline).getTime() < Date.now();
	$("#evidence-form").hidden = decided(d) || passed;
	$("#outcome-form").hidden = decided(d) || !isAdmin();
	$("#dispute-note").textContent = decided(d)
		? (d.status === "deciding" ? `Being decided (${d.outcome}): the money is moving.` : d.status === "won" ? "Won: the held money went back to the customer." : "Lost: the held money went to the provider.")
		: passed ? "The deadline for evidence has passed." : "";
	$("#dispute-detail").hidden = false;
	if (focus) {
		$("#dispute-detail").scrollIntoView({ block: "start" });
		$("#dispute-title").focus();
	}
}

const EVIDENCE_TYPES = ["application/pdf", "image/png", "image/jpeg", "text/plain"];
const EVIDENCE_BYTES_MAX = 256 * 1024;

function base64Of(buffer) {
	const bytes = new Uint8Array(buffer);
	let text = "";
	for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
	return btoa(text);
}

async function addEvidence(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button");
	const note = f.note.value.trim();
	if (note.length < 3) {
		f.note.setAttribute("aria-invalid", "true");
		f.note.focus();
		return say("dispute", "Write a note of a few words: what the evidence shows.", false);
	}
	f.note.removeAttribute("aria-invalid");
	const file = f.file.files[0];
	if (file && !EVIDENCE_TYPES.includes(file.type)) return say("dispute", "Only PDF, PNG, JPEG or text files.", false);
	if (file && file.size > EVIDENCE_BYTES_MAX) return say("dispute", "The file is too large (256 KB at most).", false);
	const body = { note, ...(file ? { document: { name: file.name.slice(0, 200), contentType: file.type, base64: base64Of(await file.arrayBuffer()) } } : {}) };
	button.disabled = true;
	const r = await api("POST", pathOf`/admin/disputes/${dispute.id}/evidence`, { body });
	button.disabled = false;
	const words = {
		DISPUTE_DEADLINE_PASSED: "The deadline for evidence has passed.", ILLEGAL_TRANSITION: "The dispute is decided already.",
		FORBIDDEN: "Nobody handles a dispute of their own.", VALIDATION_ERROR: "Please check the note and the file.",
	};
	if (r.status === 201) f.reset();
	await showDispute(dispute.id, { focus: false });
	await loadDisputes();
	say("dispute", r.status === 201 ? "Evidence added." : words[r.data?.error?.code] ?? "The evidence was not added.", r.status === 201);
	button.focus();
}

function reviewOutcome(e) {
	e.preventDefault();
	const f = e.target;
	const outcome = e.submitter?.value;
	if (outcome !== "won" && outcome !== "lost") return;
	const reason = f.reason.value.trim();
	if (reason.length < 3) {
		f.reason.setAttribute("aria-invalid", "true");
		f.reason.focus();
		return say("dispute", "Say where the provider's decision came from, in a few words.", false);
	}
	f.reason.removeAttribute("aria-invalid");
	const d = dispute.data;
	dispute.outcome = { id: d.id, outcome, reason };
	const held = formatMinor(d.heldAmount, d.currency);
	$("#outcome-confirm-text").textContent = outcome === "won"
		? `Record that the provider decided for us? The ${held} held goes back to ${d.customer?.name ?? "the customer"}.`
		: `Record that the provider decided against us? The ${held} held goes to the provider${d.shortfall > 0 ? `, and suspense pays the ${formatMinor(d.shortfall, d.currency)} not covered` : ""}.`;
	$("#outcome-confirm").hidden = false;
	say("dispute", "", true);
	$("#outcome-yes").focus();
}

async function recordOutcome() {
	const o = dispute.outcome;
	const button = $("#outcome-yes");
	if (!o || dispute.busy) return;
	dispute.busy = true;
	button.disabled = true;
	const r = await api("POST", pathOf`/admin/disputes/${o.id}/outcome`, { body: { outcome: o.outcome, reason: o.reason } }).catch(() => ({ status: 0, data: null }));
	dispute.busy = false;
	button.disabled = false;
	if (r.status === 0 || r.status >= 500) {
		button.focus();
		return say("dispute", "Paymesh is busy. Try again: the outcome is recorded once.", false);
	}
	dispute.outcome = null;
	$("#outcome-confirm").hidden = true;
	const words = { ILLEGAL_TRANSITION: "The dispute was decided otherwise already.", FORBIDDEN: "Only an admin records an outcome, and never for a dispute of their own." };
	await showDispute(o.id, { focus: false });
	await loadDisputes();
	say("dispute", r.status === 200 ? `Recorded: ${o.outcome}.` : words[r.data?.error?.code] ?? "The outcome was not recorded.", r.status === 200);
	$("#dispute-title").focus();
}

// ---- start -------------------------------------------------------------------------

function reset() {
	me = null;
	// The next person to sign in on this page does not open the last one's payment.
	if (PAYMENT_HASH.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
	detail.ref = null;
	detail.pending = null;
	dispute.id = null;
	dispute.data = null;
	for (const sel of ["#payment-detail", "#disputes", "#dispute-detail"]) $(sel).hidden = true;
	for (const sel of ["#detail-facts", "#detail-refunds", "#disputes-list", "#dispute-facts", "#dispute-evidence"]) $(sel).replaceChildren();
}

function start() {
	$("#refund-form").addEventListener("submit", review);
	$("#refund-yes").addEventListener("click", confirmRefund);
	$("#refund-no").addEventListener("click", cancelReview);
	$("#detail-close").addEventListener("click", closeDetail);
	$("#lookup-form").addEventListener("submit", lookup);
	$("#disputes-filter").addEventListener("submit", e => {
		e.preventDefault();
		void loadDisputes();
	});
	$("#evidence-form").addEventListener("submit", addEvidence);
	$("#outcome-form").addEventListener("submit", reviewOutcome);
	$("#outcome-yes").addEventListener("click", recordOutcome);
	$("#outcome-no").addEventListener("click", () => {
		dispute.outcome = null;
		$("#outcome-confirm").hidden = true;
		$("#outcome-form").reason.focus();
	});
	document.addEventListener("paymesh:open-payment", e => void openPayment({ transferId: e.detail.transferId, opener: e.detail.opener }));
	document.addEventListener("paymesh:signed-in", e => {
		me = e.detail.user;
		$("#disputes").hidden = !isStaff();
		if (isStaff()) void loadDisputes();
		// A reload keeps the payment on show.
		const m = PAYMENT_HASH.exec(location.hash);
		if (m) void openPayment({ transferId: m[1] }, { focus: false });
	});
	document.addEventListener("paymesh:signed-out", reset);
	// Live: money moved on one of the caller's accounts (a refund made or received); the payment on show is read again.
	document.addEventListener("paymesh:transaction", () => {
		if (detail.ref && !$("#payment-detail").hidden) void openPayment(detail.ref, { focus: false });
	});
}

if (typeof document !== "undefined") start();
