/**
 * The gateway (moleculer-web): liveness, readiness with per-dependency status, Prometheus
 * metrics, the /api/v1 contract with its OpenAPI document, and the dashboard's static
 * files. Access tokens are checked here without a database round trip; rate limits per
 * IP and per user share a Redis counter store when REDIS_URL is set.
 */
import { Periodic } from "../../lib/periodic.ts";
import { withTimeout } from "../../lib/timeout.ts";
import ApiGateway from "moleculer-web";
import { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import { createServer, ServerResponse as NodeServerResponse, type IncomingMessage, type ServerResponse } from "node:http";
import { Errors, type Context, type ServiceBroker, type ServiceSchema, type ServiceSettingSchema, type Logger } from "moleculer";
import type { Config } from "../../config/index.ts";
import { GatewayPrometheusReporter } from "../../moleculer.config.ts";
import { createCounterStore, FallbackCounterStore, type CounterStore } from "../../lib/ratelimit.ts";
import { addressGroup, clientAddress, trustedProxies, type TrustedProxies } from "../../lib/client-address.ts";
import { verifyAccessToken } from "../auth/tokens.ts";
import { CLIENT_SCOPES_BY_ACTION, KYC_UPLOAD_ALIASES, kycBodyLimitBytes } from "./identity.ts";
import { catchUpRevocations } from "../auth/revocations.ts";
import type { SessionUser } from "../auth/auth.service.ts";
import { toHttpError } from "./http-errors.ts";
import { verifySignature } from "../../lib/signature.ts";
import { PROVIDERS } from "../payments/providers.ts";
import { openApiDocument } from "./openapi.ts";
import { assertParams, callDetached } from "../../lib/contract.ts";
import { ledger } from "../../contracts/ledger.ts";
import { payments } from "../../contracts/payments.ts";
import { defineService } from "../../lib/service.ts";
import { markAuthenticated } from "../../lib/caller-identity.ts";
import { PRIVATE_ALIASES, PROVIDER_CALLBACK_ROUTE, PUBLIC_ALIASES, v1Actions, type GatewayMeta } from "./v1.ts";
import { SHARED_MODULE_ALIASES } from "./shared-modules.ts";

const READY_CHECK_TIMEOUT_MS = 2_000;
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const CALLBACK_BODY_BYTES_MAX = 16 * 1024;
/** How long start-up waits for the rate-limit store, and how often its outage is logged. */
const STORE_READY_WAIT_MS = 2_000;
const STORE_WARN_INTERVAL_MS = 10_000;
/** How often revoked sessions whose tokens have expired are forgotten. */
const REVOKED_SWEEP_MS = 60_000;
const CALLBACK_PATH = /^\/api\/v1\/providers\/([a-z_]{1,32})\/callbacks\/?(?:\?.*)?$/;

type Check = { status: "ok" | "down" | "absent"; detail?: string };

interface ApiRequest extends IncomingMessage {
	$ctx?: Context<unknown, GatewayMeta>;
}

interface ApiThis {
	broker: ServiceBroker;
	logger: Logger;
	redis: Redis | null;
	counters: CounterStore;
	/** When the last "rate limit store unavailable" warning was logged (one per STORE_WARN_INTERVAL_MS). */
	storeWarnedAtMs: number;
	/** Sessions logged out, with the time their last access token expires. */
	revokedSessions: Map<string, number>;
	/** Forgets revoked sessions whose tokens have expired anyway. */
	revokedSweeper: Periodic;
	readiness(): Promise<{ ready: boolean; checks: Record<string, Check> }>;
	limit(key: string, max: number): Promise<void>;
	providerCallback(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
	res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers });
	res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: unknown, requestId: string | undefined): void {
	const e = toHttpError(err);
	const headers: Record<string, string> = requestId ? { "X-Request-Id": requestId } : {};
	if (e.retryAfterS !== undefined) headers["Retry-After"] = String(e.retryAfterS);
	sendJson(res, e.status, { error: { code: e.code, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}) } }, headers);
}

/** The raw request body as text, refused past the limit: a signature is over the exact bytes. */
async function rawBody(req: IncomingMessage, bytesMax: number): Promise<string> {
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of req) {
		size += (chunk as Buffer).length;
		if (size > bytesMax) throw new Errors.MoleculerClientError("request body is too large", 413, "PAYLOAD_TOO_LARGE");
		chunks.push(chunk as Buffer);
	}
	return Buffer.concat(chunks).toString("utf8");
}

/**
 * Headers every gateway response carries, set when the response is created, before any
 * route, static file, Socket.IO answer or error handler writes it (each may add its own;
 * none removes these). The dashboard (public/) loads its script and style from files and
 * sets no inline style or script, so the policy allows only this origin. There is no TLS
 * setting on the gateway (TLS ends at the proxy in front), so no Strict-Transport-Security
 * here: the proxy that terminates TLS sends it.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
	"Content-Security-Policy": [
		"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'", "connect-src 'self'",
		"manifest-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
	].join("; "),
	"X-Frame-Options": "DENY",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy": "no-referrer",
};

/** The gateway's response class: every response starts with SECURITY_HEADERS. */
class SecureServerResponse<Request extends IncomingMessage = IncomingMessage> extends NodeServerResponse<Request> {
	constructor(req: Request) {
		super(req);
		for (const [name, value] of Object.entries(SECURITY_HEADERS)) this.setHeader(name, value);
	}
}

/** The client's address: the peer, or what trusted proxies in front of it say (lib/client-address.ts). */
function clientIp(req: IncomingMessage, proxies: TrustedProxies): string {
	return clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], proxies);
}

export function apiService(config: Config): ServiceSchema {
	const proxies = trustedProxies(config.http.trustedProxies);
	const windowMs = config.http.rateLimitWindowS * 1000;
	const bodyParsers = { json: { limit: config.http.bodyLimitBytes, strict: true }, urlencoded: false };
	const cors = config.http.corsOrigins.length > 0
		? {
			origin: config.http.corsOrigins, methods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"], credentials: false, maxAge: 600,
			allowedHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"], exposedHeaders: ["X-Request-Id", "Retry-After"],
		}
		: undefined;

	const v1Route = (path: string, aliases: Record<string, string>, authentication: boolean) => ({
		path,
		mappingPolicy: "restrict",
		authentication,
		authorization: false,
		bodyParsers,
		...(cors ? { cors } : {}),
		aliases,
		async onBeforeCall(this: ApiThis, ctx: Context<unknown, GatewayMeta>, _route: unknown, req: IncomingMessage) {
			const ip = clientIp(req, proxies);
			ctx.meta.ip = ip;
			ctx.meta.requestId = ctx.requestID ?? undefined;
			const ua = req.headers["user-agent"];
			// For the session list (auth keeps at most 200 printable characters of it).
			if (typeof ua === "string") Object.assign(ctx.meta, { userAgent: ua.slice(0, 512) });
			const key = req.headers["idempotency-key"];
			if (typeof key === "string") ctx.meta.idempotencyKey = key;
			// IPv6 clients are counted per /64 (one subscriber's block), IPv4 per address.
			await this.limit(`ip:${addressGroup(ip)}`, config.http.rateLimitPerIp);
		},
	});

	// moleculer-web's setting types miss the function form of rootCallOptions it accepts: the settings are taken as plain data.
	const schema = defineService<ApiThis, ServiceSettingSchema & Record<string, unknown>>({
		name: "api",
		mixins: [ApiGateway],
		settings: {
			port: config.port,
			ip: config.host,
			server: true,
			log4XXResponses: false,
			logRequestParams: null,
			logResponseData: null,
			logRequest: "debug",
			logResponse: "debug",
			// The currency of the tiers' limits, for the profile (GET /me).
			limitsBaseCurrency: config.limits.baseCurrency,
			// Accept a well-formed X-Request-Id from the caller, otherwise make one; it is the
			// context's requestID, so it reaches every call, event and log line.
			rootCallOptions(options: { requestID?: string; retries?: number }, req: IncomingMessage) {
				const given = req.headers["x-request-id"];
				options.requestID = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
				// The calls a route makes have their own retry policy; retrying the whole HTTP
				// request handler would re-run it on a response already used (and answer 404).
				options.retries = 0;
			},
			// The v1 routes come first: moleculer-web picks the first route whose path prefixes the URL.
			routes: [
				v1Route("/api/v1/auth", PUBLIC_ALIASES, false),
				{
					// Providers' asynchronous confirmations. No bearer token: the HMAC signature over
					// the raw body is the authentication, so the body is read unparsed.
					path: "/api/v1/providers",
					mappingPolicy: "restrict",
					authorization: false,
					bodyParsers: false,
					aliases: {
						async [PROVIDER_CALLBACK_ROUTE](this: ApiThis, req: IncomingMessage, res: ServerResponse) {
							await this.providerCallback(req, res);
						},
					},
				},
				// KYC documents: the one route whose body may be larger than HTTP_BODY_LIMIT_BYTES.
				{ ...v1Route("/api/v1/kyc", KYC_UPLOAD_ALIASES, true), bodyParsers: { json: { limit: kycBodyLimitBytes(config.kyc.documentBytesMax), strict: true }, urlencoded: false } },
				v1Route("/api/v1", PRIVATE_ALIASES, true),
				{
					path: "/",
					mappingPolicy: "restrict",
					authorization: false,
					bodyParsers: false,
					aliases: {
						"GET /health/live"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							sendJson(res, 200, { status: "ok", nodeId: this.broker.nodeID, uptimeS: Math.round(process.uptime()) });
						},
						async "GET /health/ready"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							try {
								const { ready, checks } = await this.readiness();
								sendJson(res, ready ? 200 : 503, { status: ready ? "ok" : "unavailable", checks });
							} catch (err) {
								sendJson(res, 503, { status: "unavailable", error: (err as Error).message });
							}
						},
						"GET /metrics"(this: ApiThis, _req: IncomingMessage, res: ServerResponse) {
							const reporter = this.broker.metrics?.reporter?.find(r => r instanceof GatewayPrometheusReporter);
							if (!reporter) {
								res.writeHead(404, { "Content-Type": "text/plain" });
								res.end("metrics are disabled (METRICS_ENABLED=false)\n");
								return;
							}
							res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
							res.end((reporter as GatewayPrometheusReporter).generatePrometheusResponse());
						},
						"GET /api/v1/openapi.json"(_req: IncomingMessage, res: ServerResponse) {
							sendJson(res, 200, openApiDocument(), { "Cache-Control": "public, max-age=300" });
						},
						// lib/amount.ts and its currency table for the dashboard (services/api/shared-modules.ts).
						...SHARED_MODULE_ALIASES,
					},
				},
			],
			assets: { folder: new URL("../../public", import.meta.url).pathname, options: { index: "index.html" } },
			onError(this: ApiThis, req: ApiRequest, res: ServerResponse, err: unknown) {
				const e = toHttpError(err);
				const requestId = req.$ctx?.requestID ?? undefined;
				if (e.status >= 500) {
					this.logger.error("request failed", { requestId, method: req.method, path: req.url?.split("?")[0], error: (err as Error)?.message, code: e.code });
				}
				sendError(res, err, requestId);
			},
		},

		actions: v1Actions,

		events: {
			"auth.session.revoked"(this: ApiThis, ctx: Context<{ sid?: string }>) {
				const sid = ctx.params.sid;
				if (typeof sid === "string") this.revokedSessions.set(sid, Date.now() + config.auth.accessTokenTtlS * 1000);
			},
		},

		methods: {
			/**
			 * moleculer-web's own createServer without TLS (the gateway has no TLS setting), with
			 * the response class that sets the security headers on every response, including the
			 * ones Socket.IO writes on this server.
			 */
			createServer(this: ApiThis & { server?: unknown; isHTTPS?: boolean; httpHandler(req: IncomingMessage, res: ServerResponse): void }) {
				if (this.server) return;
				this.server = createServer({ ServerResponse: SecureServerResponse }, (req, res) => this.httpHandler(req, res));
				this.isHTTPS = false;
			},

			/** Verifies the bearer token locally: signature, algorithm, expiry, and not logged out. */
			async authenticate(this: ApiThis, ctx: Context<unknown, GatewayMeta>, _route: unknown, req: IncomingMessage, _res: unknown, alias?: { action?: string }): Promise<SessionUser> {
				const header = req.headers.authorization;
				const token = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7).trim() : "";
				const claims = token ? verifyAccessToken(token, config.auth.jwtSecret) : null;
				if (!claims || (this.revokedSessions.get(claims.sid) ?? 0) > Date.now()) {
					throw new Errors.MoleculerClientError("a valid access token is required", 401, "UNAUTHORIZED");
				}
				// An OAuth2 client's token: only on a route one of its scopes allows (services/api/identity.ts).
				if (claims.scopes) {
					const needed = CLIENT_SCOPES_BY_ACTION[alias?.action ?? ""];
					if (!needed || !claims.scopes.includes(needed)) throw new Errors.MoleculerClientError("this token's scopes do not allow this route", 403, "FORBIDDEN");
				}
				await this.limit(`user:${claims.sub}`, config.http.rateLimitPerUser);
				// Marked: the one user object this gateway signs for (a user named by a call over the bus never is).
				ctx.meta.user = markAuthenticated(ctx.meta, { id: claims.sub, roles: claims.roles, sid: claims.sid, ...(claims.scopes ? { scopes: claims.scopes } : {}) });
				return ctx.meta.user;
			},

			/** Checks a provider callback's signature and hands it to payments; 401 for a bad signature. */
			async providerCallback(this: ApiThis, req: IncomingMessage, res: ServerResponse): Promise<void> {
				const given = req.headers["x-request-id"];
				const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
				try {
					await this.limit(`ip:${addressGroup(clientIp(req, proxies))}`, config.http.rateLimitPerIp);
					const provider = CALLBACK_PATH.exec((req as { originalUrl?: string }).originalUrl ?? req.url ?? "")?.[1];
					if (!provider || !(PROVIDERS as readonly string[]).includes(provider)) throw new Errors.MoleculerClientError("unknown provider", 404, "NOT_FOUND");
					const body = await rawBody(req, CALLBACK_BODY_BYTES_MAX);
					const signature = req.headers["paymesh-signature"];
					if (!verifySignature(config.payments.webhookSecret, typeof signature === "string" ? signature : undefined, body)) {
						throw new Errors.MoleculerClientError("the callback signature is missing, stale or wrong", 401, "INVALID_SIGNATURE");
					}
					let parsed: unknown;
					try {
						parsed = JSON.parse(body);
					} catch {
						throw new Errors.MoleculerClientError("the callback body is not JSON", 400, "MALFORMED_JSON");
					}
					if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
						throw new Errors.MoleculerClientError("the callback body must be an object", 400, "VALIDATION_ERROR");
					}
					// Checked here, at the edge, with the action's own schema (the same refusal the action would give).
					const params = { ...parsed, provider };
					assertParams(this.broker, payments.providerCallback, params);
					const answer = await callDetached(this.broker, payments.providerCallback, params, { requestID: requestId, meta: { requestId }, retries: 0 });
					sendJson(res, 200, { received: true, outcome: answer.outcome }, { "X-Request-Id": requestId });
				} catch (err) {
					if (toHttpError(err).status >= 500) this.logger.error("provider callback failed", { requestId, error: (err as Error).message });
					sendError(res, err, requestId);
				}
			},

			async limit(this: ApiThis, key: string, max: number): Promise<void> {
				// The limiter's store being down must not take payments down with it, nor lift the
				// limits: this node counts on its own meanwhile (FallbackCounterStore).
				const hit = await this.counters.hit(key, windowMs);
				if (hit.count > max) {
					throw new Errors.MoleculerClientError("too many requests", 429, "RATE_LIMITED", { retryAfterS: Math.max(1, Math.ceil(hit.resetMs / 1000)) });
				}
			},

			/** Ready when every configured dependency answers within the check timeout. */
			async readiness(this: ApiThis) {
				const checks: Record<string, Check> = {};
				checks["database"] = await callDetached(this.broker, ledger.health, {}, { timeout: READY_CHECK_TIMEOUT_MS, retries: 0 })
					.then(() => ({ status: "ok" as const }))
					.catch((err: Error) => ({ status: "down" as const, detail: err.message }));
				if (config.transporter) {
					const connected = Boolean(this.broker.transit?.connected);
					checks["transporter"] = connected ? { status: "ok" } : { status: "down", detail: "not connected" };
				}
				if (this.redis) {
					checks["redis"] = await withTimeout(this.redis.ping(), READY_CHECK_TIMEOUT_MS)
						.then(() => ({ status: "ok" as const }))
						.catch((err: Error) => ({ status: "down" as const, detail: err.message }));
				}
				const ready = Object.values(checks).every(c => c.status === "ok");
				return { ready, checks };
			},
		},

		created(this: ApiThis) {
			this.revokedSessions = new Map();
			this.revokedSweeper = new Periodic(async () => {
				const now = Date.now();
				for (const [sid, until] of this.revokedSessions) if (until <= now) this.revokedSessions.delete(sid);
			}, REVOKED_SWEEP_MS, err => this.logger.warn("revoked-session sweep failed", { error: err.message }));
			this.counters = new FallbackCounterStore(createCounterStore(config.redisUrl, `${config.namespace}:rl:`), err => {
				if (Date.now() - this.storeWarnedAtMs < STORE_WARN_INTERVAL_MS) return;
				this.storeWarnedAtMs = Date.now();
				const e = err as Error & { cause?: unknown };
				this.logger.warn("rate limit store unavailable; counting on this node", { error: e.message, cause: e.cause instanceof Error ? e.cause.message : undefined });
			});
			this.redis = config.redisUrl
				? new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: READY_CHECK_TIMEOUT_MS })
				: null;
			// Readiness reports Redis down; the client's own error events would only repeat it.
			this.redis?.on("error", () => undefined);
		},
		async started(this: ApiThis & { server?: { keepAliveTimeout: number; headersTimeout: number } }) {
			this.storeWarnedAtMs = 0;
			if (this.server) {
				// Node closes idle keep-alive connections after 5 s by default (see config).
				this.server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
				// Must exceed the keep-alive timeout, or a request on a reused connection can be cut off.
				this.server.headersTimeout = config.http.keepAliveTimeoutMs + 1_000;
			}
			if (this.redis) await this.redis.connect().catch((err: Error) => this.logger.warn("redis not reachable at start", { error: err.message }));
			if (!(await this.counters.ready(STORE_READY_WAIT_MS))) this.logger.warn("rate limit store not reachable at start; counting on this node until it is");
			this.revokedSweeper.start();
			// Sessions revoked before this gateway joined (it missed their broadcast).
			void catchUpRevocations(this.broker, this.revokedSessions, this.logger);
		},
		async stopped(this: ApiThis) {
			await this.revokedSweeper.stop();
			this.redis?.disconnect();
			await this.counters.close();
		},
	});
	return schema;
}
