// The profile (issue 18, dashboard second edition): who the customer is to Paymesh (name,
// e-mail, whether the address is verified, the tier and its limits, from GET /me) and what
// they may change themselves (PATCH /me: the name, a mobile number and how they are told
// about payments). Verification, the password, two-step sign-in, sessions and identity
// documents live in the Security card: the profile links to them instead of repeating
// them. Everything shown is set with textContent.
import { api, currentUser, el, formatMinor, say, userChanged } from "/app.js";

const $ = sel => document.querySelector(sel);
const TIER_MAX = 3;
/** What PATCH /me takes as a number: E.164, a plus and 7 to 15 digits. */
const PHONE = /^\+[1-9][0-9]{6,14}$/;

const WORDS = {
	VALIDATION_ERROR: "Please check the name and the number.",
	USER_NOT_FOUND: "Your profile could not be found. Log in again.",
	RATE_LIMITED: "Too many requests. Wait a moment and try again.",
};

function fact(term, value, key) {
	return [el("dt", {}, term), el("dd", { dataset: { fact: key } }, value)];
}

/** The tier's limits in a sentence. */
export function limitsText(u) {
	const l = u.limits;
	if (!l) return "";
	if (l.perTransferMinor === 0) return "At this tier you cannot send money. Verify your e-mail address and upload an identity document to raise it.";
	const more = u.kycTier < TIER_MAX ? " An identity document raises your tier and its limits." : "";
	return `Up to ${formatMinor(l.perTransferMinor, l.currency)} a payment and ${formatMinor(l.perDayMinor, l.currency)} a day, all your currencies together (each payment counted in ${l.currency}).${more}`;
}

function render(u) {
	if (!u) return;
	const staff = (u.roles ?? []).filter(r => r !== "user");
	$("#profile-facts").replaceChildren(
		...fact("Name", u.name, "name"),
		...fact("E-mail", u.email, "email"),
		...fact("Address", u.emailVerified ? "verified" : "not verified yet", "verified"),
		...fact("Tier", `${u.kycTier} of ${TIER_MAX}`, "tier"),
		...(staff.length > 0 ? fact("Staff roles", staff.join(", "), "roles") : []));
	$("#profile-limits").textContent = limitsText(u);
	$("#profile-verify-link").hidden = u.emailVerified === true;
	const f = $("#profile-form");
	// The form is filled from the profile unless the person is editing it.
	if (f.contains(document.activeElement)) return;
	f.elements.name.value = u.name;
	f.phone.value = u.preferences?.phone ?? "";
	f.notifyEmail.checked = u.preferences?.notifyEmail !== false;
	f.notifySms.checked = u.preferences?.notifySms === true;
}

function invalid(f, field, text) {
	f[field].setAttribute("aria-invalid", "true");
	f[field].focus();
	say("profile", text, false);
}

async function save(e) {
	e.preventDefault();
	const f = e.target;
	const button = f.querySelector("button[type=submit]");
	for (const n of ["name", "phone"]) f.elements[n].removeAttribute("aria-invalid");
	const name = f.elements.name.value.trim();
	if (!name) return invalid(f.elements, "name", "Enter your name.");
	if (/[\u0000-\u001f\u007f]/.test(name)) return invalid(f.elements, "name", "A name cannot have control characters.");
	const phone = f.phone.value.replace(/[\s().-]/g, "");
	const saved = currentUser()?.preferences?.phone;
	if (phone && !PHONE.test(phone)) return invalid(f.elements, "phone", "Enter the number with its country code, such as +44 7700 900123.");
	if (!phone && saved) return invalid(f.elements, "phone", "A saved number cannot be removed here yet: untick text messages to stop them.");
	if (f.notifySms.checked && !phone) return invalid(f.elements, "phone", "Text messages need a mobile number.");
	const preferences = { notifyEmail: f.notifyEmail.checked, notifySms: f.notifySms.checked, ...(phone ? { phone } : {}) };
	button.disabled = true;
	const r = await api("PATCH", "/me", { body: { name, preferences } }).catch(() => null);
	button.disabled = false;
	button.focus();
	if (!r) return say("profile", "Could not reach Paymesh. Try again.", false);
	if (r.status !== 200) return say("profile", WORDS[r.data?.error?.code] ?? r.data?.error?.message ?? "The profile was not saved.", false);
	userChanged(r.data);
	say("profile", "Profile saved.", true);
}

function start() {
	$("#profile-form").addEventListener("submit", save);
	document.addEventListener("paymesh:user", e => render(e.detail));
	document.addEventListener("paymesh:signed-out", () => {
		$("#profile-facts").replaceChildren();
		$("#profile-limits").textContent = "";
		$("#profile-form").reset();
		say("profile", "", true);
	});
}

if (typeof document !== "undefined") start();
