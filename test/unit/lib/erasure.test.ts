import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ERASED_NAME, mentionsOf, replaceMentions, scrubEvents, scrubPayload } from "../../../lib/erasure.ts";
import { erasedAddress } from "../../../lib/email.ts";

const USER = "018f0000-0000-7000-8000-0000000000a1";
const OTHER = "018f0000-0000-7000-8000-0000000000b2";
const person = { userId: USER, name: "Gil Erasmus", email: "gil@example.com" };

describe("mentions of an erased person", () => {
	it("names the address and the name with their pseudonyms, longest first, without repeats or already erased ones", () => {
		assert.deepEqual(mentionsOf(person, ["gil erasmus", "Gilly"]), [
			{ text: "gil@example.com", replacement: erasedAddress(USER) },
			{ text: "Gil Erasmus", replacement: ERASED_NAME },
			{ text: "Gilly", replacement: ERASED_NAME },
		]);
		// Asked again after the profile was erased: nothing to look for.
		assert.deepEqual(mentionsOf({ userId: USER, name: ERASED_NAME, email: erasedAddress(USER) }), []);
		// A one-letter name would match every such word.
		assert.deepEqual(mentionsOf({ ...person, name: "G" }).map(m => m.text), ["gil@example.com"]);
	});

	it("adds each word of the name only when asked (text about the person, not about anyone)", () => {
		assert.deepEqual(mentionsOf(person, [], { parts: true }).map(m => m.text), ["gil@example.com", "Gil Erasmus", "Erasmus", "Gil"]);
	});

	it("replaces whole words in any case, leaves words that only contain them, and keeps within a length", () => {
		const m = mentionsOf(person, [], { parts: true });
		assert.equal(replaceMentions("GIL ERASMUS (gil@example.com) called; Mr Erasmus again", m), `Erased user (${erasedAddress(USER)}) called; Mr Erased user again`);
		assert.equal(replaceMentions("Gilbert and gil-erasmus.txt", m), "Gilbert and Erased user-Erased user.txt");
		assert.equal(replaceMentions("Gil paid", m, 8), "Erased u");
		// One pass: a pseudonym put in is not looked through again (a word of the name may be one of its words).
		assert.equal(replaceMentions("Erased Smith, Smith and Erased", mentionsOf({ ...person, name: "Erased Smith" }, [], { parts: true })), "Erased user, Erased user and Erased user");
		// Regular-expression characters in a name are taken as they are.
		assert.equal(replaceMentions("to A.B. (x) now", mentionsOf({ ...person, name: "A.B. (x)" })), "to Erased user now");
		assert.equal(replaceMentions("to AxB. (x) now", mentionsOf({ ...person, name: "A.B. (x)" })), "to AxB. (x) now");
	});
});

describe("scrubbing logged events", () => {
	const mentions = mentionsOf(person);
	it("rewrites only events that carry one of the person's ids, in values and not keys, blanking the person's own texts", () => {
		const mine = { event: "request.created", partitionKey: "r1", payload: { requester: { id: USER, name: "Gil Erasmus" }, note: "Gil Erasmus says hi", nickname: "My flat", "Gil Erasmus": 1 } };
		const theirs = { event: "request.created", partitionKey: "r2", payload: { requester: { id: OTHER, name: "Gil Erasmus" }, note: "My flat" } };
		const out = scrubEvents([mine, theirs], new Set([USER]), mentions, new Set(["My flat"]));
		assert.deepEqual(out, [
			{ ...mine, payload: { requester: { id: USER, name: ERASED_NAME }, note: "Erased user says hi", nickname: "", "Gil Erasmus": 1 } },
			theirs,
		]);
		assert.equal(scrubEvents([theirs], new Set([USER]), mentions), null, "nothing of the person's: the row is left as it is");
		assert.equal(scrubPayload({ ownerId: USER, amount: 5 }, new Set([USER]), mentions), null, "nothing to change");
		assert.deepEqual(scrubPayload({ ownerId: USER, payee: { email: ["gil@example.com", 7, null] } }, new Set([USER]), mentions), { ownerId: USER, payee: { email: [erasedAddress(USER), 7, null] } });
	});

	it("rewrites only free text (names, labels, descriptions, notes, addresses), never codes, ids, currencies or statuses", () => {
		// A person named like a currency or a status (hostile review of erasure, finding 3).
		const event = { userId: USER, currency: "USD", status: "completed", failureCode: "USD", provider: "card", amount: 100, description: "USD for completed", requester: { id: USER, name: "USD" }, items: ["USD"], reasons: ["completed"] };
		assert.deepEqual(scrubPayload(event, new Set([USER]), mentionsOf({ userId: USER, name: "USD", email: "x@example.com" })), {
			...event, description: "Erased user for completed", requester: { id: USER, name: ERASED_NAME },
		});
		assert.deepEqual(scrubPayload(event, new Set([USER]), mentionsOf({ userId: USER, name: "completed", email: "x@example.com" })), {
			...event, description: "USD for Erased user", requester: { id: USER, name: "USD" },
		});
		// The person's own texts are blanked only where they are free text too.
		assert.deepEqual(scrubPayload({ userId: USER, currency: "USD", note: "USD" }, new Set([USER]), [], new Set(["USD"])), { userId: USER, currency: "USD", note: "" });
	});
});
