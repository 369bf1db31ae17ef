/**
 * Issue 16, finding 10: `a@x.com,b@y.com` registered as one address, and the mailer then
 * delivered that user's mail to both. Registration now takes exactly one plain address.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { SINGLE_ADDRESS } from "../../lib/email.ts";
import { startNodeOnDatabase, type NodeOnDatabase } from "../support/node.ts";
import { client, gatewayPort } from "../support/http.ts";

const PASSWORD = "Correct-Horse-Battery-9";

/** Addresses a mailer would read as more than one recipient, or as something else than an address. */
const NOT_ONE_ADDRESS = [
	"a@x.com,b@y.com", "a@x.com, b@y.com", "a@x.com;b@y.com", "a@x.com b@y.com", "Boss <boss@x.com>", "\"a,b\"@x.com", "\"a@x.com\"@y.com",
	"a@x.com,", ",a@x.com", "group: a@x.com, b@y.com;", "a(comment)@x.com", "a@x.com\nBcc: c@z.com", "a@[127.0.0.1]", "a@localhost", "a@x", "a..b@x.com",
	".a@x.com", "a.@x.com", "a@-x.com", "a@x-.com", "a@x.c", `${"a".repeat(65)}@x.com`, `a@${"x".repeat(250)}.com`, "a@@x.com", "@x.com", "a@",
];
const ONE_ADDRESS = ["a@x.com", "First.Last+tag@Example.COM", "o'brien@example.ie", "x_y-z@mail.sub.example.co.uk", "1@2.io", `${"a".repeat(64)}@x.com`];

let node: NodeOnDatabase;
let http: ReturnType<typeof client>;

before(async () => {
	node = await startNodeOnDatabase({ PORT: "0", HOST: "127.0.0.1" });
	http = client(`http://127.0.0.1:${gatewayPort(node.broker)}`);
});

after(async () => {
	await node?.stop();
});

describe("finding 10: one e-mail address per account", () => {
	it("the address rule takes one plain address and nothing else", () => {
		for (const e of NOT_ONE_ADDRESS) assert.equal(SINGLE_ADDRESS.test(e), false, e);
		for (const e of ONE_ADDRESS) assert.equal(SINGLE_ADDRESS.test(e), true, e);
	});

	it("refuses to register a list of addresses (or any other non-address) with 400 VALIDATION_ERROR", async () => {
		for (const email of NOT_ONE_ADDRESS) {
			const r = await http<{ error: { code: string; details: { field: string }[] } }>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "List" } });
			assert.equal(r.status, 400, `${email}: ${r.status} ${JSON.stringify(r.body)}`);
			assert.equal(r.body.error.code, "VALIDATION_ERROR");
			assert.equal(r.body.error.details[0]?.field, "email");
		}
		const stored = await node.sql.query<{ n: string }>("SELECT count(*)::text AS n FROM auth.credentials");
		assert.equal(stored.rows[0]?.n, "0");
	});

	it("still registers single addresses, stored normalized", async () => {
		for (const email of ONE_ADDRESS) {
			const r = await http<{ user: { email: string } }>("POST", "/api/v1/auth/register", { body: { email, password: PASSWORD, name: "One" } });
			assert.equal(r.status, 201, `${email}: ${JSON.stringify(r.body)}`);
			assert.equal(r.body.user.email, email.toLowerCase());
		}
	});
});
