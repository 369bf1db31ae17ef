/**
 * Maps every error that reaches the gateway to the contract's shape
 * `{ "error": { "code", "message", "details"? } }` and an HTTP status. Client errors keep
 * their code; unavailable dependencies are 503; anything unexpected is a 500 whose
 * message is not shown to the client (it is logged with the request id).
 */
import { Errors } from "moleculer";

export interface HttpError {
	status: number;
	code: string;
	message: string;
	details?: unknown;
	retryAfterS?: number;
}

const UNAVAILABLE = new Set(["SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "REQUEST_TIMEOUT", "QUEUE_FULL", "CIRCUIT_BREAKER_OPEN", "REQUEST_SKIPPED", "REQUEST_REJECTED"]);

/** body-parser's own errors carry `status` and a dotted `type`. */
function bodyParserError(err: { status?: number; type?: string }): HttpError | null {
	if (err.type === "entity.too.large" || err.status === 413) return { status: 413, code: "PAYLOAD_TOO_LARGE", message: "request body is too large" };
	if (err.type === "entity.parse.failed") return { status: 400, code: "MALFORMED_JSON", message: "request body is not valid JSON" };
	if (typeof err.type === "string" && err.type.includes(".") && err.status && err.status >= 400 && err.status < 500) {
		return { status: err.status, code: "BAD_REQUEST", message: "request body could not be read" };
	}
	return null;
}

export function toHttpError(err: unknown): HttpError {
	const e = err as { code?: unknown; type?: unknown; message?: string; data?: unknown; status?: number; name?: string };
	const fromBody = bodyParserError(e as { status?: number; type?: string });
	if (fromBody) return fromBody;
	if (err instanceof Errors.ValidationError) {
		return { status: 400, code: "VALIDATION_ERROR", message: "request is invalid", details: sanitizeValidation(e.data) };
	}
	const type = typeof e.type === "string" ? e.type : "";
	const code = typeof e.code === "number" ? e.code : 0;
	// Also a lost transporter (BrokerDisconnectedError, 502) and any retryable server error: the client may try again.
	const retryable = (e as { retryable?: unknown }).retryable === true && code >= 500;
	if (UNAVAILABLE.has(type) || err instanceof Errors.RequestTimeoutError || err instanceof Errors.ServiceNotAvailableError || code === 503 || retryable || type === "BAD_GATEWAY") {
		return { status: 503, code: code === 503 && type && !UNAVAILABLE.has(type) ? type : "SERVICE_UNAVAILABLE", message: "a dependency is unavailable, retry later", retryAfterS: 1 };
	}
	if (code === 404 && type === "NOT_FOUND") return { status: 404, code: "NOT_FOUND", message: "not found" };
	if (code === 401 && (type === "NO_TOKEN" || type === "INVALID_TOKEN")) return { status: 401, code: "UNAUTHORIZED", message: "a valid access token is required" };
	if (err instanceof Errors.MoleculerClientError || (code >= 400 && code < 500 && type)) {
		const data = e.data as Record<string, unknown> | undefined;
		const retryAfterS = typeof data?.["retryAfterS"] === "number" ? data["retryAfterS"] : undefined;
		return {
			status: code >= 400 && code < 500 ? code : 400, code: type || "BAD_REQUEST", message: e.message ?? "request refused",
			...(data !== undefined ? { details: data } : {}), ...(retryAfterS !== undefined ? { retryAfterS } : {}),
		};
	}
	return { status: 500, code: "INTERNAL_ERROR", message: "internal error" };
}

/** Validation details name the field and the rule, never echo the (possibly huge or secret) value. */
function sanitizeValidation(data: unknown): unknown {
	if (!Array.isArray(data)) return undefined;
	return data.slice(0, 20).map((d: { field?: unknown; type?: unknown; message?: unknown }) => ({
		field: typeof d.field === "string" ? d.field.slice(0, 100) : undefined,
		rule: typeof d.type === "string" ? d.type : undefined,
		message: typeof d.message === "string" ? d.message.replace(/'[^']{40,}'/g, "'…'").slice(0, 200) : undefined,
	}));
}
