// The Paymesh dashboard: plain ES modules, no build step. Data from /api/v1, live updates
// from Socket.IO. Everything shown is set with textContent (never parsed as HTML).
import { io } from "/socket.io/socket.io.esm.min.js";
// The server's own amount rules and ISO 4217 table (lib/amount.ts, served with its types stripped).
import { formatAmount, isCurrencyCode, parseAmount } from "/js/amount.js";
const HISTORY_PAGE = 20;

const MESSAGES = {
	INSUFFICIENT_FUNDS: "Not enough money in this account.",
	LIMIT_EXCEEDED: "This is above the limit of your verification tier.",
	FRAUD_DECLINED: "This payment was declined by our risk checks.",
	ACCOUNT_FROZEN: "One of the accounts is frozen.",
	ACCOUNT_NOT_FOUND: "That account does not exist.",
	RECIPIENT_NOT_FOUND: "No account in this currency for that recipient.",
	CURRENCY_MISMATCH: "The accounts hold different currencies.",
	SAME_ACCOUNT: "Choose a different account to send to.",
	VALIDATION_ERROR: "Please check the fields.",
	IDEMPOTENCY_MISMATCH: "This attempt was already used for a different payment. Submit again.",
	RATE_LIMITED: "Too many requests. Wait a moment and try again.",
	PROVIDER_UNAVAILABLE: "The provider is not available right now. Try again shortly.",
	SERVICE_UNAVAILABLE: "Paymesh is busy. Try again: the payment will not be made twice.",
	INVALID_CREDENTIALS: "E-mail or password is wrong.",
	TOO_MANY_ATTEMPTS: "Too many attempts. Wait a few minutes.",
	INVALID_OTP: "That code is not valid.",
	WEAK_PASSWORD: "Choose a stronger password (10+ characters, mixed).",
	EMAIL_TAKEN: "Another account has verified this address.",
	EMAIL_NOT_VERIFIED: "The e-mail address must be verified first.",
	INVALID_CODE: "That code is wrong, used or expired. Ask for a new one.",
	INVALID_RESET_TOKEN: "That reset token is wrong, used or expired. Ask for a new one.",
	MFA_REQUIRED: "Enter the current code from your authenticator app.",
	MFA_NOT_SET_UP: "Start the set-up first.",
	SESSION_NOT_FOUND: "That session has ended already.",
	MAIL_UNAVAILABLE: "No mail can be sent right now. Try again later.",
	DOCUMENT_TOO_LARGE: "The file is too large (5 MB at most).",
	UNSUPPORTED_DOCUMENT: "Only PDF, PNG or JPEG files, as they really are.",
	DOCUMENT_LIMIT_REACHED: "Enough documents are waiting for review already.",
	DOCUMENT_NOT_FOUND: "That document is not there any more.",
	EMAIL_NOT_VERIFIED: "The user must verify their e-mail address first.",
	ILLEGAL_TRANSITION: "That payment can no longer be changed.",
	FORBIDDEN: "Your role does not allow this.",
};
const messageFor = body => MESSAGES[body?.error?.code] ?? body?.error?.message ?? "Something went wrong.";

const $ = sel => document.querySelector(sel);
const state = {
	access: null, refresh: sessionStorage.getItem("paymesh.refresh"), user: null,
	accounts: new Map(), payments: new Map(), attempts: new Map(), socket: null, refreshing: null,
	history: { accountId: null, cursor: null },
};

// ---- money ------------------------------------------------------------------------------

/** The person's locale, for separators ("1,5" means 1.50 to a German reader, nothing clear to an English one). */
export const LOCALE = typeof navigator !== "undefined" ? navigator.language || "en" : "en";

/** What a person typed as an amount of `currency`: { minor } (a safe integer), or { message } saying what is wrong. */
export function readAmount(text, currency) {
	if (!isCurrencyCode(currency)) return { message: `Unknown currency ${currency}.` };
	const r = parseAmount(String(text ?? ""), currency, LOCALE);
	return r.ok ? { minor: Number(r.minor) } : { message: r.message };
}

/** "12.5" in USD -> 1250, without floats; null when the text is not an amount in that currency. */
export function toMinor(text, currency) {
	const r = readAmount(text, currency);
	return "minor" in r ? r.minor : null;
}

export function formatMinor(minor, currency) {
	return isCurrencyCode(currency) ? formatAmount(BigInt(minor), currency, LOCALE) : `${minor} ${currency}`;
}

// ---- ids in paths ------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a canonical UUID (every id the API hands out), so typed input can be checked before use. */
export function isUuid(text) {
	return typeof text === "string" && UUID.test(text);
}

/**
 * A path from fixed parts and values, each value percent-encoded as one segment: a value
 * can never add a segment, climb with "..", or start a query or fragment.
 */
export function pathOf(strings, ...values) {
	return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(String(values[i])) : ""), "");
}

/**
 * The admin path to freeze or unfreeze an account typed into the staff box; null unless
 * the text is an account id (a UUID) and the operation one of the two. Typed text such as
 * "../payments/<id>/approve#" never becomes a request.
 */
export function adminAccountPath(typedId, op) {
	const id = String(typedId ?? "").trim();
	if (!isUuid(id) || (op !== "freeze" && op !== "unfreeze")) return null;
	return pathOf`/admin/accounts/${id}/${op}`;
}

// ---- HTTP with a quiet token refresh ----------------------------------------------------

export async function api(method, path, { body, key } = {}) {
	for (let attempt = 0; ; attempt++) {
		const headers = { "content-type": "application/json" };
		if (state.access) headers.authorization = `Bearer ${state.access}`;
		if (key) headers["idempotency-key"] = key;
		const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
		if (res.status === 401 && attempt === 0 && state.refresh && !path.startsWith("/auth/") && (await refreshTokens())) continue;
		const data = res.status === 204 ? null : await res.json().catch(() => null);
		// The headers too: the FX card reads the server's clock (Date) to count a quote down.
		return { status: res.status, data, headers: res.headers };
	}
}

/** One refresh at a time; every caller waiting on it gets its outcome. */
function refreshTokens() {
	state.refreshing ??= (async () => {
		try {
			const res = await fetch("/api/v1/auth/refresh", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refreshToken: state.refresh }) });
			if (!res.ok) {
				signedOut("Your session ended. Please log in again.");
				return false;
			}
			const pair = await res.json();
			keepTokens(pair.accessToken, pair.refreshToken);
			return true;
		} catch {
			return false;
		} finally {
			setTimeout(() => (state.refreshing = null), 0);
		}
	})();
	return state.refreshing;
}

function keepTokens(access, refresh) {
	state.access = access;
	state.refresh = refresh;
	sessionStorage.setItem("paymesh.refresh", refresh);
	// Refresh a minute before the access token runs out.
	try {
		const { exp } = JSON.parse(atob(access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
		clearTimeout(state.refreshTimer);
		state.refreshTimer = setTimeout(() => void refreshTokens(), Math.max(5_000, exp * 1000 - Date.now() - 60_000));
	} catch {
		// A token we cannot read is refreshed on its first 401 instead.
	}
}

// ---- small DOM helpers ------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (k === "class") e.className = v;
		else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
		else if (k === "dataset") Object.assign(e.dataset, v);
		// Through the CSSOM: the Content-Security-Policy refuses style attributes.
		else if (k === "style") Object.assign(e.style, v);
		else e.setAttribute(k, v);
	}
	for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
	return e;
}

export function say(form, text, ok) {
	const p = document.querySelector(`.msg[data-for="${form}"]`);
	p.textContent = text;
	p.className = `msg ${ok ? "ok" : "bad"}`;
}

function toast(text) {
	const t = $("#toast");
	t.textContent = text;
	t.hidden = false;
	clearTimeout(state.toastTimer);
	state.toastTimer = setTimeout(() => (t.hidden = true), 4_000);
}

// ---- sign in and out --------------------------------------------------------------------

async function login(e) {
	e.preventDefault();
	const f = e.target;
	const body = { email: f.email.value.trim(), password: f.password.value };
	if (!$("#otp-row").hidden && f.otp.value) body.otp = f.otp.value.trim();
	const r = await api("POST", "/auth/login", { body }).catch(() => null);
	if (!r) return say("login", "Could not reach Paymesh.", false);
	if (r.status === 401 && r.data?.error?.code === "MFA_REQUIRED") {
		$("#otp-row").hidden = false;
		f.otp.focus();
		return say("login", "Enter the code from your authenticator app.", false);
	}
	if (r.status !== 200) return say("login", messageFor(r.data), false);
	f.reset();
	$("#otp-row").hidden = true;
	await signedIn(r.data);
}

async function register(e) {
	e.preventDefault();
	const f = e.target;
	const r = await api("POST", "/auth/register", { body: { name: f.name.value.trim(), email: f.email.value.trim(), password: f.password.value } }).catch(() => null);
	if (!r) return say("register", "Could not reach Paymesh.", false);
	if (r.status !== 201) return say("register", messageFor(r.data), false);
	f.reset();
	await signedIn(r.data);
}

async function signedIn(session) {
	keepTokens(session.accessToken, session.refreshToken);
	const me = await api("GET", "/me");
	state.user = me.data;
	$("#who").textContent = `${state.user.name} (${state.user.email})`;
	// The login or registration form goes away: focus goes to the page's first heading, not to its body.
	const lost = document.activeElement === document.body || $("#signed-out").contains(document.activeElement);
	$("#signed-out").hidden = true;
	$("#signed-in").hidden = false;
	$("#logout").hidden = false;
	if (lost) $("#overview-title").focus();
	$("#staff").hidden = !state.user.roles.some(r => r === "support" || r === "admin");
	renderVerified();
	connectSocket();
	await Promise.all([loadAccounts(), loadPayments(), loadNotifications(), loadSessions(), loadDocuments()]);
	if (!$("#staff").hidden) await loadStaff();
	document.dispatchEvent(new CustomEvent("paymesh:signed-in", { detail: { user: state.user, accounts: [...state.accounts.values()] } }));
}

/** The caller's accounts as loaded (other dashboard modules read them). */
export function accounts() {
	return [...state.accounts.values()];
}

/** The signed-in user as GET /me answered (null when signed out). */
export function currentUser() {
	return state.user;
}

/** Takes the answer of PATCH /me (the profile card): the header's name and the verification box follow it. */
export function userChanged(user) {
	state.user = { ...state.user, ...user };
	$("#who").textContent = `${state.user.name} (${state.user.email})`;
	renderVerified();
}

/** The current access token, for a download other modules fetch themselves (a CSV). */
export function accessToken() {
	return state.access;
}

function signedOut(message) {
	state.socket?.disconnect();
	state.socket = null;
	state.access = null;
	state.refresh = null;
	state.user = null;
	sessionStorage.removeItem("paymesh.refresh");
	clearTimeout(state.refreshTimer);
	$("#signed-in").hidden = true;
	$("#signed-out").hidden = false;
	$("#logout").hidden = true;
	$("#who").textContent = "";
	// Nothing of the last user's security settings stays on the page.
	$("#mfa-setup").hidden = true;
	$("#mfa-secret").textContent = "";
	$("#sessions").replaceChildren();
	$("#documents").replaceChildren();
	$("#kyc-queue").replaceChildren();
	for (const c of state.dailyCharts ?? []) c.destroy();
	state.dailyCharts = [];
	$("#chart").replaceChildren();
	setConn("offline");
	document.dispatchEvent(new CustomEvent("paymesh:signed-out"));
	if (message) say("login", message, false);
}

async function logout() {
	await api("POST", "/auth/logout").catch(() => null);
	signedOut("");
}

// ---- security: the address, the password, two-step sign-in, sessions --------------------

function renderVerified() {
	const verified = state.user?.emailVerified === true;
	$("#verify-box").hidden = verified;
	$("#verified-note").hidden = !verified;
	// The profile card shows the user too.
	document.dispatchEvent(new CustomEvent("paymesh:user", { detail: state.user }));
}

async function verifyEmail(e) {
	e.preventDefault();
	const f = e.target;
	const r = await api("POST", "/auth/email/verify", { body: { code: f.code.value.trim() } });
	if (r.status !== 200) return say("verify", messageFor(r.data), false);
	f.reset();
	state.user.emailVerified = true;
	renderVerified();
	toast("Your e-mail address is verified.");
}

async function resendCode() {
	const r = await api("POST", "/auth/email/code");
	say("verify", r.status === 202 ? "A new code is on its way to your address." : messageFor(r.data), r.status === 202);
}

/** A form that needs the current MFA code once the server says so: shows its code field. */
function askForCode(row, form, input) {
	$(row).hidden = false;
	input.focus();
	say(form, MESSAGES.MFA_REQUIRED, false);
}

async function changePassword(e) {
	e.preventDefault();
	const f = e.target;
	const body = { password: f.password.value, newPassword: f.newPassword.value };
	if (!$("#password-otp-row").hidden && f.otp.value) body.otp = f.otp.value.trim();
	const r = await api("POST", "/auth/password", { body });
	if (r.status === 401 && r.data?.error?.code === "MFA_REQUIRED") return askForCode("#password-otp-row", "password", f.otp);
	if (r.status !== 200) return say("password", messageFor(r.data), false);
	f.reset();
	$("#password-otp-row").hidden = true;
	// Every session ended, this one too: carry on with the new one in the answer.
	keepTokens(r.data.accessToken, r.data.refreshToken);
	connectSocket();
	say("password", "Password changed. Every other session was signed out.", true);
	await loadSessions();
}

async function setUpMfa(e) {
	e.preventDefault();
	const f = e.target;
	const body = { password: f.password.value };
	if (!$("#mfa-otp-row").hidden && f.otp.value) body.otp = f.otp.value.trim();
	const r = await api("POST", "/auth/mfa/setup", { body });
	if (r.status === 401 && r.data?.error?.code === "MFA_REQUIRED") return askForCode("#mfa-otp-row", "mfa", f.otp);
	if (r.status !== 200) return say("mfa", messageFor(r.data), false);
	f.reset();
	$("#mfa-otp-row").hidden = true;
	$("#mfa-secret").textContent = r.data.secret;
	$("#mfa-link").setAttribute("href", r.data.otpauthUrl);
	$("#mfa-setup").hidden = false;
	say("mfa", "Add the key to your app, then enter its code to turn two-step sign-in on.", true);
}

async function confirmMfa(e) {
	e.preventDefault();
	const f = e.target;
	const r = await api("POST", "/auth/mfa/verify", { body: { otp: f.otp.value.trim() } });
	if (r.status !== 200) return say("mfa", messageFor(r.data), false);
	f.reset();
	$("#mfa-setup").hidden = true;
	$("#mfa-secret").textContent = "";
	say("mfa", "Two-step sign-in is on: logging in asks for a code from your app.", true);
}

async function loadSessions() {
	const r = await api("GET", "/auth/sessions");
	if (r.status !== 200) return;
	$("#sessions").replaceChildren(...r.data.items.map(s => {
		const li = el("li", { dataset: { sessionId: s.id, current: String(s.current) } },
			el("span", {}, `${s.userAgent ?? "Unknown device"} · ${s.ip ?? "unknown address"} · last active ${new Date(s.lastSeenAt).toLocaleString()}`));
		if (s.current) li.append(el("span", { class: "badge" }, "this device"));
		else li.append(el("button", { type: "button", class: "secondary", onclick: () => revokeSession(s.id) }, "Sign out"));
		return li;
	}));
}

async function revokeSession(id) {
	if (!isUuid(id)) return;
	const r = await api("DELETE", pathOf`/auth/sessions/${id}`);
	say("sessions", r.status === 204 ? "That session is signed out." : messageFor(r.data), r.status === 204);
	await loadSessions();
}

async function forgotPassword(e) {
	e.preventDefault();
	const r = await api("POST", "/auth/password/forgot", { body: { email: e.target.email.value.trim() } }).catch(() => null);
	if (!r) return say("forgot", "Could not reach Paymesh.", false);
	// The same answer for every address: whether it has an account is told only to its mailbox.
	say("forgot", r.status === 202 ? "If an account has this address, a reset token is on its way to it." : messageFor(r.data), r.status === 202);
}

async function resetPassword(e) {
	e.preventDefault();
	const f = e.target;
	const r = await api("POST", "/auth/password/reset", { body: { token: f.token.value.trim(), newPassword: f.newPassword.value } }).catch(() => null);
	if (!r) return say("reset", "Could not reach Paymesh.", false);
	if (r.status !== 200) return say("reset", messageFor(r.data), false);
	f.reset();
	say("reset", "Your new password is set, and every session was signed out. Log in with it.", true);
}

// ---- identity documents -----------------------------------------------------------------

const DOCUMENT_TYPES = ["application/pdf", "image/png", "image/jpeg"];
const DOCUMENT_BYTES_MAX = 5 * 1024 * 1024;
const DOCUMENT_NAMES = { passport: "Passport", id_card: "Identity card", driving_licence: "Driving licence", proof_of_address: "Proof of address" };

/** Base64 of a file's bytes, a slice at a time (no spread of megabytes into one call). */
function base64Of(buffer) {
	const bytes = new Uint8Array(buffer);
	let text = "";
	for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
	return btoa(text);
}

async function uploadDocument(e) {
	e.preventDefault();
	const f = e.target;
	const file = f.file.files[0];
	if (!file) return say("kyc", "Choose a file.", false);
	if (!DOCUMENT_TYPES.includes(file.type)) return say("kyc", MESSAGES.UNSUPPORTED_DOCUMENT, false);
	if (file.size > DOCUMENT_BYTES_MAX) return say("kyc", MESSAGES.DOCUMENT_TOO_LARGE, false);
	const body = { kind: f.kind.value, requestedTier: Number(f.tier.value), contentType: file.type, content: base64Of(await file.arrayBuffer()) };
	const r = await api("POST", "/kyc/documents", { body });
	if (r.status !== 201) return say("kyc", messageFor(r.data), false);
	f.reset();
	say("kyc", "Uploaded: support will check it.", true);
	await loadDocuments();
}

function documentItem(d, ...actions) {
	return el("li", { dataset: { documentId: d.id } },
		el("span", {}, `${DOCUMENT_NAMES[d.kind] ?? d.kind} for tier ${d.requestedTier} · ${new Date(d.createdAt).toLocaleDateString()}`),
		el("span", { class: "status", dataset: { status: d.status } }, d.status), ...actions);
}

async function loadDocuments() {
	const r = await api("GET", "/kyc/documents");
	if (r.status === 200) $("#documents").replaceChildren(...r.data.items.map(d => documentItem(d)));
}

async function loadKycQueue() {
	const r = await api("GET", "/admin/kyc/documents");
	if (r.status !== 200) return;
	$("#kyc-queue").replaceChildren(...r.data.items.map(d => documentItem(d,
		el("button", { type: "button", class: "secondary", onclick: () => openDocument(d.id) }, "Open"),
		el("button", { type: "button", onclick: () => decideDocument(d.id, "approve") }, "Approve"),
		el("button", { type: "button", class: "secondary", onclick: () => decideDocument(d.id, "reject") }, "Reject"),
	)));
}

/** Downloads a document for review (the server checks it against its SHA-256 first). */
async function openDocument(id) {
	if (!isUuid(id)) return;
	const r = await api("GET", pathOf`/admin/kyc/documents/${id}/content`);
	if (r.status !== 200) return toast(messageFor(r.data));
	const bytes = Uint8Array.from(atob(r.data.content), c => c.charCodeAt(0));
	const url = URL.createObjectURL(new Blob([bytes], { type: r.data.contentType }));
	const a = el("a", { href: url, download: `document-${id}` });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function decideDocument(id, op) {
	if (!isUuid(id)) return;
	const r = await api("POST", pathOf`/admin/kyc/documents/${id}/${op}`);
	// Four eyes: a 403 here is either the role or one's own document.
	if (r.status === 403) toast("Nobody decides their own documents.");
	else toast(r.status === 200 ? `Document ${op === "approve" ? "approved: the tier is raised" : "rejected"}.` : messageFor(r.data));
	await loadKycQueue();
}

// ---- the live feed ----------------------------------------------------------------------

function setConn(s) {
	const c = $("#conn");
	c.dataset.state = s;
	c.textContent = s === "live" ? "live" : s === "reconnecting" ? "reconnecting…" : "offline";
}

function connectSocket() {
	state.socket?.disconnect();
	// The auth callback runs on every (re)connect, so a refreshed token is used.
	const socket = io({ path: "/socket.io", auth: cb => cb({ token: state.access }), reconnectionDelayMax: 5_000 });
	state.socket = socket;
	socket.on("connect", () => {
		setConn("live");
		// Events may have been missed while away: read what the feed updates again.
		void loadAccounts();
		void loadHistory(true);
		void loadPayments();
		void loadNotifications();
	});
	socket.on("disconnect", reason => {
		setConn("reconnecting");
		// The server closed it (a node restarting, the token running out): socket.io does not
		// come back by itself after that, so reconnect, with a fresh token if need be.
		if (reason === "io server disconnect") setTimeout(() => state.socket === socket && socket.connect(), 1_000);
	});
	socket.io.on("reconnect_attempt", () => setConn("reconnecting"));
	socket.on("connect_error", async err => {
		setConn("reconnecting");
		// A refused token: refresh it, then try again (socket.io does not retry refusals itself).
		if (err.message === "UNAUTHORIZED" && state.refresh && (await refreshTokens())) socket.connect();
		else setTimeout(() => state.socket === socket && !socket.connected && socket.connect(), 2_000);
	});
	socket.on("balance.updated", onBalance);
	socket.on("transaction.new", d => {
		if (d.direction === "in") toast(`Received ${formatMinor(d.amount, d.currency)}`);
		if (state.history.accountId === d.accountId) void loadHistory(true);
		document.dispatchEvent(new CustomEvent("paymesh:transaction", { detail: d }));
	});
	socket.on("insight.new", i => {
		toast(i.why);
		document.dispatchEvent(new CustomEvent("paymesh:insight", { detail: i }));
	});
	socket.on("notification.new", n => {
		document.dispatchEvent(new CustomEvent("paymesh:notification", { detail: n }));
		$("#notifications").prepend(notificationItem(n));
		$("#unread").textContent = String(Number($("#unread").textContent) + 1);
	});
	socket.on("payment.updated", p => {
		const known = state.payments.get(p.paymentId);
		if (!known) return void loadPayments();
		known.status = p.status;
		known.failureCode = p.failureCode;
		renderPayments();
		if (!$("#staff").hidden) void loadStaff();
	});
}

/** Applies a balance event, or re-reads the account when a version is missing in between. */
async function onBalance(d) {
	const a = state.accounts.get(d.accountId);
	if (!a) return void loadAccounts();
	if (d.version <= a.version) return;
	if (d.previousVersion !== a.version) {
		const r = await api("GET", pathOf`/accounts/${d.accountId}`);
		if (r.status === 200) state.accounts.set(d.accountId, r.data);
	} else {
		a.balance = { posted: d.posted, pending: d.pending, available: d.available };
		a.version = d.version;
	}
	renderAccounts();
}

// ---- accounts ---------------------------------------------------------------------------

/** Reads the accounts again and redraws them (other dashboard modules call it after renaming or closing one). */
export async function loadAccounts() {
	const r = await api("GET", "/accounts");
	if (r.status !== 200) return;
	state.accounts = new Map(r.data.items.map(a => [a.id, a]));
	renderAccounts();
}

function renderAccounts() {
	const body = $("#accounts");
	body.replaceChildren(...[...state.accounts.values()].map(a => el("tr", { dataset: { accountId: a.id } },
		el("td", {}, el("code", { title: a.id }, a.id)),
		el("td", {}, a.currency),
		el("td", { class: "num available" }, formatMinor(a.balance.available, a.currency)),
		el("td", { class: "num pending" }, formatMinor(a.balance.pending, a.currency)),
		el("td", {}, a.status),
		el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => showHistory(a.id) }, "History")),
	)));
	for (const sel of ["#send-form [name=from]", "#pay-form [name=account]", "#history-account"]) {
		const s = $(sel);
		const keep = s.value;
		s.replaceChildren(...[...state.accounts.values()].map(a => el("option", { value: a.id }, `${a.currency} · ${formatMinor(a.balance.available, a.currency)} · ${a.id.slice(-6)}`)));
		if (state.accounts.has(keep)) s.value = keep;
	}
	if (!state.history.accountId && state.accounts.size > 0) void showHistory([...state.accounts.keys()][0]);
	// Every balance or account change, live or read: other cards (the overview, exchange) follow it.
	document.dispatchEvent(new CustomEvent("paymesh:accounts"));
}

async function openAccount(e) {
	e.preventDefault();
	const r = await api("POST", "/accounts", { body: { currency: e.target.currency.value } });
	if (r.status === 201) await loadAccounts();
	else toast(messageFor(r.data));
}

// ---- moving money: one idempotency key per attempt ---------------------------------------

/**
 * The key for this form's current attempt: kept while the same request is retried (a
 * double click, a network error, a 503), replaced when the request changes or ends.
 */
function attemptKey(form, request) {
	const fingerprint = JSON.stringify(request);
	const a = state.attempts.get(form);
	if (a && a.fingerprint === fingerprint) return a.key;
	const key = crypto.randomUUID();
	state.attempts.set(form, { fingerprint, key });
	return key;
}

async function submitMoney(form, button, path, body) {
	if (button.disabled) return null;
	const key = attemptKey(form, { path, body });
	button.disabled = true;
	try {
		const r = await api("POST", path, { body, key });
		// A definite answer ends the attempt; unavailability keeps the key for the retry.
		if (r.status < 500 && r.status !== 429) state.attempts.delete(form);
		return r;
	} catch {
		return { status: 0, data: { error: { code: "SERVICE_UNAVAILABLE" } } };
	} finally {
		button.disabled = false;
	}
}

async function send(e) {
	e.preventDefault();
	const f = e.target;
	const from = state.accounts.get(f.from.value);
	if (!from) return say("send", "Open an account first.", false);
	const read = readAmount(f.amount.value, from.currency);
	if (!("minor" in read)) return say("send", read.message, false);
	const amount = read.minor;
	const to = f.to.value.trim();
	const description = f.description.value.trim();
	const byEmail = to.includes("@");
	const path = byEmail ? "/payments/p2p" : "/transfers";
	const body = byEmail
		? { accountId: from.id, toEmail: to, amount, currency: from.currency, ...(description ? { description } : {}) }
		: { fromAccountId: from.id, toAccountId: to, amount, currency: from.currency, ...(description ? { description } : {}) };
	const r = await submitMoney("send", $("#send-button"), path, body);
	if (!r) return;
	if (r.status === 201) {
		say("send", `Sent ${formatMinor(amount, from.currency)}.`, true);
		f.amount.value = "";
		f.description.value = "";
	} else if (r.status === 202) {
		say("send", "The payment is being reviewed. You will see the outcome here.", true);
	} else {
		say("send", messageFor(r.data), false);
	}
	await loadPayments();
}

async function pay(e) {
	e.preventDefault();
	const f = e.target;
	const account = state.accounts.get(f.account.value);
	if (!account) return say("pay", "Open an account first.", false);
	const read = readAmount(f.amount.value, account.currency);
	if (!("minor" in read)) return say("pay", read.message, false);
	const amount = read.minor;
	const kind = f.kind.value;
	const body = { accountId: account.id, amount, currency: account.currency, provider: f.provider.value, ...(kind === "payout" ? { destination: f.destination.value.trim() } : {}) };
	const r = await submitMoney("pay", f.querySelector("button"), pathOf`/payments/${kind}`, body);
	if (!r) return;
	if (r.status === 201) {
		const name = kind === "topup" ? "Top-up" : "Payout";
		const words = { completed: "done", pending_review: "is being checked by our team; you will see the outcome here", processing: "is on its way", created: "is on its way" }[r.data.status];
		if (r.data.status === "failed") say("pay", `${name} failed: ${MESSAGES[r.data.failureCode] ?? "the provider refused it"}`, false);
		else say("pay", `${name} of ${formatMinor(amount, account.currency)} ${words ?? r.data.status.replace("_", " ")}.`, true);
		// A second press must not make a second top-up: the amount is asked for again.
		f.amount.value = "";
	} else say("pay", messageFor(r.data), false);
	await loadPayments();
}

async function loadPayments() {
	const r = await api("GET", "/payments?limit=10");
	if (r.status !== 200) return;
	state.payments = new Map(r.data.items.map(p => [p.id, p]));
	renderPayments();
}

function renderPayments() {
	$("#payments").replaceChildren(...[...state.payments.values()].map(p => el("li", { dataset: { paymentId: p.id } },
		el("span", {}, `${({ topup: "Top-up", payout: "Payout", p2p: "Payment" })[p.type] ?? p.type} ${formatMinor(p.amount, p.currency)}`),
		el("span", { class: "status", dataset: { status: p.status } }, p.status.replace("_", " ")),
		p.failureCode ? el("span", {}, MESSAGES[p.failureCode] ?? p.failureCode) : "",
		// A P2P payment's detail (public/after-payment.js): its refunds and what is left of it.
		p.type === "p2p" && p.transferId ? detailsButton(p.transferId) : "",
		// Only a payment waiting for review can be cancelled (a created one is still running).
		p.status === "pending_review"
			? el("button", { type: "button", class: "secondary", onclick: () => cancelPayment(p.id) }, "Cancel")
			: "",
	)));
}

/** Opens a payment's detail (public/after-payment.js listens), from the transfer that moved its money. */
function detailsButton(transferId) {
	return el("button", { type: "button", class: "secondary details", onclick: e => document.dispatchEvent(new CustomEvent("paymesh:open-payment", { detail: { transferId, opener: e.currentTarget } })) }, "Details");
}

async function cancelPayment(id) {
	const r = await api("POST", pathOf`/payments/${id}/cancel`);
	if (r.status !== 200) toast(messageFor(r.data));
	await loadPayments();
}

// ---- history and statements -------------------------------------------------------------

async function showHistory(accountId) {
	state.history = { accountId, cursor: null };
	$("#history-account").value = accountId;
	await loadHistory(true);
}

async function loadHistory(fresh) {
	const { accountId, cursor } = state.history;
	if (!accountId) return;
	const r = await api("GET", `${pathOf`/accounts/${accountId}/transactions`}?limit=${HISTORY_PAGE}${!fresh && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
	if (r.status !== 200) return;
	const currency = state.accounts.get(accountId)?.currency ?? "USD";
	const rows = r.data.items.map(x => el("tr", {},
		el("td", {}, new Date(x.createdAt).toLocaleString()),
		el("td", {}, x.description || x.kind),
		el("td", { class: "num" }, formatMinor(x.amount, currency)),
		el("td", { class: "num" }, formatMinor(x.balanceAfter, currency)),
		el("td", {}, x.kind === "payment" || x.kind === "hold_post" || x.kind === "refund" ? detailsButton(x.transferId) : ""),
	));
	if (fresh) $("#history").replaceChildren(...rows);
	else $("#history").append(...rows);
	state.history.cursor = r.data.nextCursor;
	$("#history-more").hidden = !r.data.nextCursor;
}

async function downloadStatement(e) {
	e.preventDefault();
	const id = $("#history-account").value;
	if (!id) return;
	const res = await fetch(`/api/v1/reports/statement?accountId=${encodeURIComponent(id)}&format=csv`, { headers: { authorization: `Bearer ${state.access}` } });
	if (!res.ok) return toast("The statement could not be made.");
	const url = URL.createObjectURL(await res.blob());
	const a = el("a", { href: url, download: `statement-${id}.csv` });
	document.body.append(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- notifications ----------------------------------------------------------------------

function notificationItem(n) {
	const li = el("li", { class: n.read ? "" : "unread", dataset: { notificationId: n.id } }, el("span", {}, n.body));
	if (!n.read) {
		li.append(el("button", { type: "button", class: "secondary", onclick: async () => {
			const r = await api("POST", pathOf`/notifications/${n.id}/read`);
			if (r.status === 200) await loadNotifications();
		} }, "Mark read"));
	}
	return li;
}

async function loadNotifications() {
	const r = await api("GET", "/notifications?limit=20");
	if (r.status !== 200) return;
	$("#notifications").replaceChildren(...r.data.items.map(notificationItem));
	$("#unread").textContent = String(r.data.unreadCount);
}

// ---- support and admin ------------------------------------------------------------------

async function loadStaff() {
	const [reviews, frozen, daily] = await Promise.all([api("GET", "/admin/reviews"), api("GET", "/admin/accounts/frozen"), api("GET", "/admin/reports/daily")]);
	if (reviews.status === 200) {
		$("#reviews").replaceChildren(...reviews.data.items.map(p => el("li", { dataset: { paymentId: p.id } },
			el("span", {}, `${p.type} ${formatMinor(p.amount, p.currency)} by ${p.userId.slice(-6)}`),
			el("button", { type: "button", onclick: () => decide(p.id, "approve") }, "Approve"),
			el("button", { type: "button", class: "secondary", onclick: () => decide(p.id, "decline") }, "Decline"),
		)));
	}
	if (frozen.status === 200) $("#frozen").replaceChildren(...frozen.data.items.map(a => el("li", {}, el("code", {}, a.id), ` ${a.currency}`)));
	if (daily.status === 200) await renderChart(daily.data).catch(() => $("#chart").replaceChildren(el("p", { class: "muted" }, "The chart could not be drawn.")));
	await Promise.all([loadBreaks(), loadKycQueue()]);
}

/** Reconciliation breaks not resolved yet: open ones can be picked for a proposal, proposed ones approved (by someone else). */
async function loadBreaks() {
	const [open, proposed] = await Promise.all([api("GET", "/admin/recon/breaks?status=open&limit=50"), api("GET", "/admin/recon/breaks?status=proposed&limit=50")]);
	if (open.status !== 200 || proposed.status !== 200) return;
	const item = b => {
		const amount = b.theirAmount ?? b.ourAmount;
		const what = `#${b.id} ${b.type.replace(/_/g, " ")}${b.kind === "refund" ? " (refund)" : ""} · ${b.provider} ${b.day}${amount === null ? "" : ` · ${formatMinor(amount, b.currency)}`}`;
		const li = el("li", { dataset: { breakId: String(b.id), status: b.status } }, el("span", { title: b.detail }, what));
		if (b.proposal) {
			li.append(el("span", { class: "muted" }, ` ${b.proposal.resolution} proposed: ${b.proposal.note}`));
			li.append(el("button", { type: "button", onclick: () => approveBreak(b.id) }, "Approve"));
		} else {
			li.append(el("button", { type: "button", class: "secondary", onclick: () => ($("#break-form").elements.id.value = String(b.id)) }, "Pick"));
		}
		return li;
	};
	$("#breaks").replaceChildren(...proposed.data.items.map(item), ...open.data.items.map(item));
}

async function proposeBreak(e) {
	e.preventDefault();
	const f = e.target.elements;
	const id = String(f.id.value).trim();
	if (!/^[1-9][0-9]{0,15}$/.test(id)) {
		toast("Pick a break from the list (its number).");
		return;
	}
	const r = await api("POST", pathOf`/admin/recon/breaks/${id}/propose`, { body: { resolution: f.resolution.value, note: f.note.value } });
	toast(r.status === 200 ? `Resolution of break ${id} proposed; someone else approves it.` : messageFor(r.data));
	await loadBreaks();
}

async function approveBreak(id) {
	const r = await api("POST", pathOf`/admin/recon/breaks/${id}/approve`);
	// Four eyes: a 403 here is either the role or the proposer approving their own proposal.
	if (r.status === 403) toast("Approval needs the admin role and someone other than the proposer.");
	else toast(r.status === 200 ? `Break ${id} resolved.` : messageFor(r.data));
	await loadBreaks();
}

async function decide(id, op) {
	const r = await api("POST", pathOf`/admin/payments/${id}/${op}`);
	if (r.status !== 200) toast(messageFor(r.data));
	else toast(`Payment ${op === "approve" ? "approved" : "declined"}.`);
	await loadStaff();
}

async function freeze(e) {
	e.preventDefault();
	const op = e.submitter?.value ?? "freeze";
	const path = adminAccountPath(e.target.id.value, op);
	if (!path) {
		toast("Enter an account id (a UUID such as 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b).");
		return;
	}
	const r = await api("POST", path);
	toast(r.status === 200 ? `Account ${op === "freeze" ? "frozen" : "unfrozen"}.` : messageFor(r.data));
	await loadStaff();
}

/** UTC days of the daily report (YYYY-MM-DD), oldest first, at most this many. */
const DAILY_DAYS_MAX = 92;

/**
 * The daily volume per currency (GET /admin/reports/daily, summed over kinds as bigint):
 * a bar chart each (public/charts.js: uPlot with axes, a summary, the keyboard and a table
 * of every day's transfers and volume). Each currency is on its own scale: amounts of
 * different currencies do not compare.
 */
async function renderChart(report) {
	const { dayChart, longDay, money } = await import("/charts.js");
	const days = [];
	for (let t = Date.parse(report.from.slice(0, 10)); t < Date.parse(report.to) && days.length < DAILY_DAYS_MAX; t += 86_400_000) days.push(new Date(t).toISOString().slice(0, 10));
	const byCurrency = new Map();
	for (const i of report.items) {
		const at = days.indexOf(i.day);
		if (at < 0 || !isCurrencyCode(i.currency)) continue;
		const c = byCurrency.get(i.currency) ?? { volume: days.map(() => 0n), count: days.map(() => 0) };
		c.volume[at] += BigInt(i.volume);
		c.count[at] += i.count;
		byCurrency.set(i.currency, c);
	}
	// The day as the calendar shows it, whatever the reader's time zone.
	const dates = days.map(d => new Date(`${d}T00:00:00`));
	for (const c of state.dailyCharts ?? []) c.destroy();
	state.dailyCharts = [...byCurrency].map(([currency, c]) => {
		const total = c.volume.reduce((a, b) => a + b, 0n);
		const busiest = c.volume.reduce((best, v, i) => (v > c.volume[best] ? i : best), 0);
		const transfers = c.count.reduce((a, b) => a + b, 0);
		return dayChart({
			key: "daily", currency, days: dates, values: c.volume, counts: c.count, valueName: "Volume", bars: true, caption: `${currency} moved per day`,
			summary: `${currency} moved per day from ${longDay(dates[0])} to ${longDay(dates.at(-1))}: ${money(total, currency)} in ${transfers} transfer${transfers === 1 ? "" : "s"}, the most on ${longDay(dates[busiest])} (${money(c.volume[busiest], currency)}).`,
		});
	});
	$("#chart").replaceChildren(...(state.dailyCharts.length > 0 ? state.dailyCharts.map(c => c.figure) : [el("p", { class: "muted" }, "No money moved in these days.")]));
	await Promise.all(state.dailyCharts.map(c => c.draw()));
}

// ---- start ------------------------------------------------------------------------------

function start() {
	$("#login-form").addEventListener("submit", login);
	$("#register-form").addEventListener("submit", register);
	$("#logout").addEventListener("click", logout);
	$("#open-form").addEventListener("submit", openAccount);
	$("#send-form").addEventListener("submit", send);
	$("#pay-form").addEventListener("submit", pay);
	$("#history-account").addEventListener("change", e => showHistory(e.target.value));
	$("#history-more").addEventListener("click", () => loadHistory(false));
	$("#statement").addEventListener("click", downloadStatement);
	$("#read-all").addEventListener("click", async () => {
		await api("POST", "/notifications/read-all");
		await loadNotifications();
	});
	$("#freeze-form").addEventListener("submit", freeze);
	$("#break-form").addEventListener("submit", proposeBreak);
	$("#forgot-form").addEventListener("submit", forgotPassword);
	$("#reset-form").addEventListener("submit", resetPassword);
	$("#verify-form").addEventListener("submit", verifyEmail);
	$("#verify-resend").addEventListener("click", resendCode);
	$("#password-form").addEventListener("submit", changePassword);
	$("#mfa-form").addEventListener("submit", setUpMfa);
	$("#mfa-verify-form").addEventListener("submit", confirmMfa);
	$("#sessions-refresh").addEventListener("click", loadSessions);
	$("#kyc-form").addEventListener("submit", uploadDocument);
	// A reload keeps the session: the refresh token in sessionStorage gets a new access token.
	if (state.refresh) {
		void refreshTokens().then(async ok => {
			if (ok) await signedIn({ accessToken: state.access, refreshToken: state.refresh });
		});
	}
}

if (typeof document !== "undefined") start();
