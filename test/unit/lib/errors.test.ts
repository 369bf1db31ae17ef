import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isDatabaseUnavailable, unavailable } from "../../../lib/errors.ts";
import { toHttpError } from "../../../services/api/http-errors.ts";

/** An error shaped as Node's net module makes it for a failed socket call. */
const socketError = (code: string, syscall: string) => Object.assign(new Error(`${syscall} ${code}`), { code, syscall, errno: -1 });
/** An error shaped as pg makes it from a server's ErrorResponse. */
const serverError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: "ERROR" });

describe("isDatabaseUnavailable", () => {
	it("knows a connection the server dropped: refused, reset, and written to after the server went away (EPIPE)", () => {
		for (const [code, syscall] of [["ECONNREFUSED", "connect"], ["ECONNRESET", "read"], ["EPIPE", "write"], ["ETIMEDOUT", "connect"], ["ENOTCONN", "write"], ["EHOSTUNREACH", "connect"]] as const) {
			assert.equal(isDatabaseUnavailable(socketError(code, syscall)), true, code);
		}
		// The same failure known by its message only, as some drivers rethrow it.
		assert.equal(isDatabaseUnavailable(new Error("write EPIPE")), true);
		assert.equal(isDatabaseUnavailable(new Error("Connection terminated unexpectedly")), true);
		assert.equal(isDatabaseUnavailable(new Error("Client was closed and is not queryable")), true);
		assert.equal(isDatabaseUnavailable(new Error("Knex: Timeout acquiring a connection. The pool is probably full.")), true);
	});

	it("knows the server's own transient refusals by SQLSTATE", () => {
		const transient = {
			"57P01": "terminating connection due to administrator command", "57P03": "the database system is shutting down", "08006": "connection failure",
			"53300": "sorry, too many clients already", "57014": "canceling statement due to statement timeout", "40001": "could not serialize access",
			"40P01": "deadlock detected", "55P03": "canceling statement due to lock timeout",
		};
		for (const [code, message] of Object.entries(transient)) assert.equal(isDatabaseUnavailable(serverError(code, message)), true, code);
		assert.equal(isDatabaseUnavailable(new Error("the database system is in recovery mode")), true);
	});

	it("leaves bugs and the request's own faults alone", () => {
		const faults = { "23505": "duplicate key value violates unique constraint", "42601": "syntax error at or near", "23514": "violates check constraint", "22003": "bigint out of range", "42P01": "relation does not exist" };
		for (const [code, message] of Object.entries(faults)) assert.equal(isDatabaseUnavailable(serverError(code, message)), false, code);
		assert.equal(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined")), false);
		assert.equal(isDatabaseUnavailable(Object.assign(new Error("no such file"), { code: "ENOENT" })), false);
		assert.equal(isDatabaseUnavailable(undefined), false);
		assert.equal(isDatabaseUnavailable("EPIPE"), false, "only errors, not bare strings");
	});

	it("becomes a 503 with Retry-After at the gateway once a service has mapped it", () => {
		const mapped = toHttpError(unavailable("DATABASE_UNAVAILABLE", "the ledger database is unavailable, retry later"));
		assert.deepEqual([mapped.status, mapped.code, mapped.retryAfterS], [503, "DATABASE_UNAVAILABLE", 1]);
		// Unmapped, the same socket error is a bug as far as the gateway can tell.
		assert.equal(toHttpError(socketError("EPIPE", "write")).status, 500);
	});
});
