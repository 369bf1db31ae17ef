/**
 * Every setting comes from the environment, is parsed into a typed object once at
 * start-up, and a bad value stops start-up with a message that names the variable and
 * what it accepts. Nothing else in the code reads process.env.
 */

import { createHmac, randomBytes } from "node:crypto";
import { PROVIDERS } from "../services/payments/providers.ts";
import { parseCidr } from "../lib/client-address.ts";
import { DOCUMENT_BYTES_LIMIT, type S3StoreConfig } from "../lib/document-store.ts";
import { derivedSigningKey, publicKeyOf, signingKeyProblem, verifyKeyProblem } from "../lib/caller-identity.ts";
import { CURRENCY_CODES, type CurrencyCode } from "./currencies.ts";

export class ConfigError extends Error {
	override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const ALL_SERVICES = ["api", "realtime", "auth", "users", "ledger", "payments", "providers", "fx", "fraud", "notifications", "audit", "webhooks", "reports", "recon", "requests", "schedules", "bills", "methods"] as const;
export type ServiceName = (typeof ALL_SERVICES)[number];

/** See Config.dbIdleTransactionTimeoutMs; also the default of callers that build no config (tests, tools). */
export const DB_IDLE_TRANSACTION_TIMEOUT_MS_DEFAULT = 60_000;
/** See Config.dbStatementTimeoutMs; also the default of callers that build no config. */
export const DB_STATEMENT_TIMEOUT_MS_DEFAULT = 30_000;

export interface Config {
	port: number;
	host: string;
	dataDir: string;
	databaseUrl: string | null;
	dbPoolMax: number;
	/** PostgreSQL ends a session whose transaction sits idle this long, releasing its locks. */
	dbIdleTransactionTimeoutMs: number;
	/**
	 * PostgreSQL cancels a statement that runs longer (SQLSTATE 57014, a 503 to the caller).
	 * A caller that timed out does not stop its query; this bounds the database work left
	 * behind. Migrations and the invariant check set their own, longer bound.
	 */
	dbStatementTimeoutMs: number;
	/** A streaming replica of DATABASE_URL that reads may use, with read-your-writes (lib/replica.ts); null: none. */
	databaseReplicaUrl: string | null;
	/** How long a read waits for the replica to replay past the caller's write before it goes to the primary. */
	dbReplicaWaitMs: number;
	transporter: string | null;
	namespace: string;
	redisUrl: string | null;
	/** Transporter protection: NATS credentials and TLS, and end-to-end packet encryption between nodes. */
	transit: {
		natsToken: string | null;
		natsUser: string | null;
		natsPassword: string | null;
		natsTls: boolean;
		natsTlsCaFile: string | null;
		natsTlsCertFile: string | null;
		natsTlsKeyFile: string | null;
		/**
		 * TRANSIT_KEY, shared by every node and required with a transporter: every packet is
		 * sealed with it (AES-256-GCM, topic bound, replay window; lib/transit-crypto.ts).
		 */
		encryptionKey: string | null;
		/** TRANSIT_KEYS_PREVIOUS: opened on receipt but never sent with, so two keys overlap during a rotation. */
		previousKeys: string[];
		/** A packet older than this (by its sender's clock) is dropped; its nonce is remembered this long. */
		replayWindowS: number;
		/** A packet from further in the future than this is dropped. */
		clockSkewS: number;
		/** Most nonces remembered; past it packets are refused, not let through unchecked. */
		replayCacheMax: number;
	};
	tracing: {
		exporter: "none" | "console" | "event";
		/**
		 * OTEL_EXPORTER_OTLP_ENDPOINT: spans also go to an OpenTelemetry collector over OTLP/HTTP
		 * JSON (lib/otlp.ts), which turns the tracer on; null: off.
		 */
		otlp: OtlpConfig | null;
	};
	/**
	 * AUDIT_KEY: the HMAC key of the audit chain (services/audit/chain.ts), outside the
	 * database so a database writer cannot rebuild the chain. An audit node with a transporter
	 * refuses to start without it; a single node without it keeps a generated key in
	 * DATA_DIR/audit.key (services/audit/keys.ts).
	 * AUDIT_KEYS_PREVIOUS: retired keys, for verifying the blocks written under them.
	 */
	audit: { key: string | null; previousKeys: string[] };
	/**
	 * SECRETS_KEY: the key-encryption key of the secrets stored for reading back (TOTP and
	 * webhook secrets, lib/secret-box.ts), outside the database. Required with a transporter
	 * on auth and webhooks nodes; a single node without it keeps DATA_DIR/secrets.key.
	 * SECRETS_KEYS_PREVIOUS: retired keys, still opening what was sealed under them.
	 */
	secrets: { key: string | null; previousKeys: string[] };
	/**
	 * Who the caller of a money or staff action is (lib/caller-identity.ts, docs/identity.md):
	 * the gateway signs it, every node checks it.
	 */
	callerIdentity: {
		/**
		 * GATEWAY_SIGNING_KEY, the gateway's Ed25519 private key (a 32-byte seed, base64url):
		 * kept only on a node that runs the gateway (api), null on every other. Without a
		 * transporter it is derived from JWT_SECRET when not given.
		 */
		signingKey: string | null;
		/** GATEWAY_VERIFY_KEYS: the gateways' public keys, current first (two during a rotation). */
		verifyKeys: string[];
		/**
		 * Every call of a guarded action must carry the gateway's assertion: always with a
		 * transporter, or with CALLER_SIGNATURES=required. Otherwise (one process) a call that
		 * carries one is checked, one that carries none runs (tests call actions directly).
		 */
		required: boolean;
	};
	/** Health and metrics port of a node without a gateway (null: none). */
	opsPort: number | null;
	services: ServiceName[];
	nodeId: string | null;
	logLevel: LogLevel;
	logFormat: "short" | "json" | "full";
	metricsEnabled: boolean;
	requestTimeoutMs: number;
	shutdownTimeoutMs: number;
	maxCallLevel: number;
	heartbeatIntervalS: number;
	heartbeatTimeoutS: number;
	/** How a node balances calls to actions without a strategy of their own (lib/balancer.ts). */
	balancer: "least-requests" | "round-robin";
	bulkheadConcurrency: number;
	bulkheadQueueSizeMax: number;
	ledger: {
		batchSizeMax: number;
		batchConcurrencyMax: number;
		batchWaitMs: number;
		queueLengthMax: number;
		holdSweepIntervalMs: number;
		holdTimeoutMsMax: number;
	};
	outbox: {
		pollIntervalMs: number;
		batchSizeMax: number;
		/** Least time between two relay cycles of one node: under load, kicks within it share one cycle. */
		relayGapMs: number;
		/** Positioned rows older than this are pruned; a consumer further behind loses events (and is told). */
		retentionDays: number;
		pruneIntervalMs: number;
		/**
		 * The ledger writes its events packed (lib/packed-json.ts) where the database allows it
		 * (ledger.outbox_format) and every ledger node in the registry reads packed rows
		 * (services/ledger/ledger.service.ts, packsEvents); false keeps them json.
		 */
		packEvents: boolean;
	};
	retention: {
		/** Per-day counters (spending limits, fraud day totals) older than this many UTC days are deleted; the rules read today's only. */
		dailyCountersDays: number;
	};
	auth: {
		/** HMAC key for access tokens; random per process when not configured on a single node. */
		jwtSecret: string;
		jwtSecretGenerated: boolean;
		accessTokenTtlS: number;
		refreshTokenTtlS: number;
		/**
		 * Absolute lifetime of a refresh-token family, from the login that started it: refreshing
		 * rotates the token but never carries the session past this (each token's expiry is capped by it).
		 */
		refreshFamilyTtlS: number;
		loginFailuresMax: number;
		loginFailureWindowS: number;
		/** Registrations (each an argon2 hash) per client address (IPv6 per /64) per window. */
		registrationsPerAddressMax: number;
		registrationWindowS: number;
		/** Lifetime of an OAuth2 client-credentials access token. */
		clientTokenTtlS: number;
		/** How long a client's previous secret keeps working after a rotation. */
		clientSecretOverlapS: number;
	};
	payments: {
		providerLatencyMs: number;
		providerFailurePercent: number;
		/** Simulation: share of provider calls that answer only after the caller gave up (the provider may still have acted). */
		providerTimeoutPercent: number;
		/** How long payments waits for a provider's answer before treating it as unknown. */
		providerTimeoutMs: number;
		/** 0: Math.random; otherwise the simulated providers draw from a PRNG with this seed. */
		providerSeed: number;
		/** Where the simulated providers keep their day journals and write their settlement files (default DATA_DIR/settlements). */
		settlementDir: string;
		/** Simulation: breaks injected into a settlement file, per thousand operations (reconciliation's test material). */
		settlementBreakPermille: number;
		/** How often the recon service reconciles yesterday's file of each provider that has no finished run for it; 0: never (runs only when asked). */
		reconScheduleIntervalMs: number;
		resumeAfterMs: number;
		breakerRequestsMin: number;
		breakerWindowS: number;
		breakerHalfOpenMs: number;
		/** Providers that confirm asynchronously by a signed callback to the gateway; the rest answer at once. */
		webhookProviders: string[];
		/** HMAC key of provider callbacks; derived from JWT_SECRET unless PROVIDER_WEBHOOK_SECRET is set. */
		webhookSecret: string;
		/** Where the simulated providers post their callbacks; null: this node's own gateway (or PORT on 127.0.0.1). */
		callbackUrl: string | null;
		/** Simulation: share of callbacks sent twice, and of payments whose interim notice arrives after the final one. */
		callbackDuplicatePercent: number;
		callbackReorderPercent: number;
		/** Simulation: share of top-up refunds the providers decline (by the refund's id, so asking again gives the same answer). */
		refundDeclinePercent: number;
	};
	events: {
		/** Tries per event before a consumer dead-letters it, and the first retry delay (doubling). */
		attemptsMax: number;
		retryDelayMs: number;
		pollIntervalMs: number;
		/** Least time between two small pages of one consumer: under load, pages gather more events. */
		pumpGapMs: number;
	};
	notifications: {
		/** smtp:// or smtps:// URL of the mail server; the e-mail channel is off without it. */
		smtpUrl: string | null;
		mailFrom: string;
		/** Simulation: share of SMS sends that fail (and are retried). */
		smsFailurePercent: number;
		deliveryAttemptsMax: number;
		deliveryRetryDelayMs: number;
	};
	/**
	 * KYC documents (services/users/kyc.ts): where they are kept, and the largest accepted.
	 * KYC_STORAGE=s3 keeps them in an S3-compatible bucket (s3, lib/document-store.ts) instead
	 * of the directory; null: the directory.
	 */
	kyc: { storageDir: string; documentBytesMax: number; s3: S3StoreConfig | null };
	webhooks: {
		attemptsMax: number;
		retryDelayMs: number;
		retryDelayMsMax: number;
		timeoutMs: number;
		endpointsPerUserMax: number;
		/** Deliver to loopback and private addresses too (local development and tests only). */
		allowPrivateUrls: boolean;
	};
	limits: {
		/**
		 * The currency of every customer's one spending budget: tier limits are in it, and
		 * each outgoing amount is converted to it at the day's reference rate (docs/ledger.md).
		 */
		baseCurrency: CurrencyCode;
	};
	fx: {
		spreadBps: number;
		quoteTtlMs: number;
		refreshIntervalMs: number;
	};
	http: {
		bodyLimitBytes: number;
		/**
		 * How long an idle keep-alive connection stays open. Longer than the idle timeout of
		 * the client or load balancer in front (60 s on the common ones), so it is always the
		 * client that closes an idle connection: when the server closes first, a request sent
		 * at that moment meets a reset (a 502 behind a balancer, ECONNRESET in a client).
		 */
		keepAliveTimeoutMs: number;
		corsOrigins: string[];
		/**
		 * CIDRs of the proxies in front of the gateway (TRUSTED_PROXIES). Only a direct peer in
		 * one of them may name the client in X-Forwarded-For; empty: the peer is the client.
		 */
		trustedProxies: string[];
		rateLimitPerUser: number;
		rateLimitPerIp: number;
		rateLimitWindowS: number;
	};
}

/**
 * Words that mark a value as a placeholder someone forgot to replace, compared after lower
 * casing and dropping everything but letters and digits ("REPLACE_ME", "change-me"…).
 */
const PLACEHOLDER_WORDS = ["replaceme", "changeme", "placeholder", "yoursecret", "secretgoeshere", "donotuse", "insecure", "example"];
/**
 * Distinct characters a secret must have (fewer for short NATS passwords: a third of the
 * length). 32 random hex characters show 14 on average and fewer than 6 about once in a
 * million; base64 shows more.
 */
const SECRET_DISTINCT_CHARS_MIN = 6;

/**
 * Why a configured secret cannot be used, or null. Length is checked by the caller; this
 * refuses placeholders and values with too little variety to be random ("x" * 32,
 * "abababab…"), which no key generator produces.
 */
export function secretProblem(value: string): string | null {
	const folded = value.toLowerCase().replace(/[^a-z0-9]/g, "");
	const word = PLACEHOLDER_WORDS.find(w => folded.includes(w));
	if (word) return `looks like a placeholder (contains "${word}"): generate one, e.g. openssl rand -base64 48`;
	const distinct = new Set(value).size;
	const needed = Math.min(SECRET_DISTINCT_CHARS_MIN, Math.ceil(value.length / 3));
	if (distinct < needed) return `has too little variety to be random (${distinct} distinct characters, expected at least ${needed}): generate one, e.g. openssl rand -base64 48`;
	for (let period = 1; period <= value.length / 2; period++) {
		if (value.slice(period) === value.slice(0, value.length - period)) return `repeats a pattern of ${period} characters, so it is not random: generate one, e.g. openssl rand -base64 48`;
	}
	return null;
}

function checkedSecret(name: string, raw: string, lengthMin: number): string {
	if (raw.length < lengthMin) throw new ConfigError(`${name} is too short: expected at least ${lengthMin} characters`);
	const problem = secretProblem(raw);
	if (problem) throw new ConfigError(`${name} ${problem}`);
	return raw;
}

/** Each secret serves one purpose: a value shared by two keys is refused, naming both (never the value). */
function distinctSecrets(env: Env, names: readonly string[]): void {
	const seen = new Map<string, string>();
	for (const name of names) {
		const v = env[name];
		if (v === undefined || v === "") continue;
		const other = seen.get(v);
		if (other) throw new ConfigError(`${name} has the same value as ${other}: every key needs its own value`);
		seen.set(v, name);
	}
}

/**
 * NATS_PASSWORD. nats-server reads `password: $NATS_PASSWORD` (deploy/nats.conf) as a config
 * value, not as text: a value that begins like a number ("9e5…", which `openssl rand -hex`
 * gives now and then) stops the server from starting. So it must begin with a letter (the
 * deploy files make it as `p` followed by random hex).
 */
function natsPasswordVar(env: Env): string | null {
	const value = optionalSecret(env, "NATS_PASSWORD", 8);
	if (value !== null && !/^[A-Za-z]/.test(value)) {
		throw new ConfigError("NATS_PASSWORD must begin with a letter: nats-server reads it as a config value, and one that begins like a number (9e5…) stops it starting (make one with: echo p$(openssl rand -hex 32))");
	}
	return value;
}

export const SECRET_VARS = ["JWT_SECRET", "TRANSIT_KEY", "PROVIDER_WEBHOOK_SECRET", "NATS_TOKEN", "NATS_PASSWORD", "AUDIT_KEY", "SECRETS_KEY", "KYC_S3_SECRET_ACCESS_KEY", "GATEWAY_SIGNING_KEY"] as const;

function secretVar(env: Env, clustered: boolean): { secret: string; generated: boolean } {
	const raw = env["JWT_SECRET"];
	if (raw !== undefined && raw !== "") {
		return { secret: checkedSecret("JWT_SECRET", raw, 32), generated: false };
	}
	// Several gateway nodes must share one key: a cluster refuses to start without it.
	if (clustered) throw new ConfigError("JWT_SECRET is required when TRANSPORTER is set: expected at least 32 characters shared by every node");
	return { secret: randomBytes(48).toString("base64url"), generated: true };
}

/**
 * The provider callback key. Its own variable in production; otherwise derived from the JWT
 * key (never equal to it), so every node that shares JWT_SECRET shares this one too.
 */
function webhookSecretVar(env: Env, jwtSecret: string): string {
	const raw = env["PROVIDER_WEBHOOK_SECRET"];
	if (raw !== undefined && raw !== "") return checkedSecret("PROVIDER_WEBHOOK_SECRET", raw, 32);
	return createHmac("sha256", jwtSecret).update("paymesh provider webhooks").digest("base64url");
}

const PROVIDER_NAMES: readonly string[] = PROVIDERS;

function providerListVar(env: Env, name: string, fallback: string[]): string[] {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	if (raw === "none") return [];
	const names = raw.split(",").map(s => s.trim()).filter(Boolean);
	for (const n of names) {
		if (!PROVIDER_NAMES.includes(n)) throw new ConfigError(`${name} contains ${JSON.stringify(n)}: expected "none" or a comma list of ${PROVIDER_NAMES.join(", ")}`);
	}
	return names;
}

function optionalSecret(env: Env, name: string, lengthMin: number): string | null {
	const raw = env[name];
	if (raw === undefined || raw === "") return null;
	return checkedSecret(name, raw, lengthMin);
}

function cidrListVar(env: Env, name: string): string[] {
	const list = listVar(env, name);
	for (const c of list) {
		if (!parseCidr(c)) throw new ConfigError(`${name} contains ${JSON.stringify(c)}: expected a comma list of CIDRs such as 10.0.0.0/8 or fd00::/8`);
	}
	return list;
}

/**
 * TRANSIT_KEY and TRANSIT_KEYS_PREVIOUS. With a transporter the key is required: without it
 * anyone who reaches NATS could read every packet and call every action.
 */
function transitKeysVar(env: Env, clustered: boolean): { key: string | null; previous: string[] } {
	const key = optionalSecret(env, "TRANSIT_KEY", 32);
	if (clustered && key === null) {
		throw new ConfigError("TRANSIT_KEY is required when TRANSPORTER is set: expected at least 32 random characters shared by every node (it seals every packet between nodes)");
	}
	const previous = listVar(env, "TRANSIT_KEYS_PREVIOUS");
	if (previous.length > 0 && key === null) throw new ConfigError("TRANSIT_KEYS_PREVIOUS is set without TRANSIT_KEY: expected the new key in TRANSIT_KEY");
	for (const [i, p] of previous.entries()) {
		checkedSecret(`TRANSIT_KEYS_PREVIOUS item ${i + 1}`, p, 32);
		if (p === key) throw new ConfigError(`TRANSIT_KEYS_PREVIOUS repeats TRANSIT_KEY (item ${i + 1}): expected only the keys being retired`);
		const other = SECRET_VARS.find(name => name !== "TRANSIT_KEY" && env[name] === p);
		if (other) throw new ConfigError(`TRANSIT_KEYS_PREVIOUS item ${i + 1} has the same value as ${other}: every key needs its own value`);
	}
	return { key, previous };
}

/** Most public keys GATEWAY_VERIFY_KEYS may list (the current one and those being retired). */
const GATEWAY_VERIFY_KEYS_MAX = 4;

/**
 * GATEWAY_SIGNING_KEY, GATEWAY_VERIFY_KEYS and CALLER_SIGNATURES (lib/caller-identity.ts).
 * With a transporter, signatures are required, every node needs the public keys and a
 * gateway (a node running api) its private key; a node that runs no gateway never keeps the
 * private key, whatever its environment. Without a transporter the pair is derived from
 * JWT_SECRET unless given. A gateway's own public key must be among the verify keys, or every
 * node would refuse what it signs.
 */
function callerIdentityVar(env: Env, clustered: boolean, services: readonly ServiceName[], jwtSecret: string): Config["callerIdentity"] {
	const mode = enumVar(env, "CALLER_SIGNATURES", ["auto", "required"] as const, "auto");
	const gateway = services.includes("api");
	const rawSigning = env["GATEWAY_SIGNING_KEY"];
	let signingKey: string | null = null;
	if (rawSigning !== undefined && rawSigning !== "") {
		checkedSecret("GATEWAY_SIGNING_KEY", rawSigning, 43);
		const problem = signingKeyProblem(rawSigning);
		if (problem) throw new ConfigError(`GATEWAY_SIGNING_KEY ${problem}`);
		signingKey = rawSigning;
	}
	const verifyKeys = listVar(env, "GATEWAY_VERIFY_KEYS");
	if (verifyKeys.length > GATEWAY_VERIFY_KEYS_MAX) throw new ConfigError(`GATEWAY_VERIFY_KEYS lists ${verifyKeys.length} keys: expected at most ${GATEWAY_VERIFY_KEYS_MAX} (the current one and those being retired)`);
	for (const [i, k] of verifyKeys.entries()) {
		const problem = verifyKeyProblem(k);
		if (problem) throw new ConfigError(`GATEWAY_VERIFY_KEYS item ${i + 1} ${problem}`);
		if (verifyKeys.indexOf(k) !== i) throw new ConfigError(`GATEWAY_VERIFY_KEYS item ${i + 1} repeats item ${verifyKeys.indexOf(k) + 1}`);
		if (k === signingKey) throw new ConfigError(`GATEWAY_VERIFY_KEYS item ${i + 1} is GATEWAY_SIGNING_KEY: expected the public keys only, never the private one`);
	}
	if (clustered) {
		if (verifyKeys.length === 0) throw new ConfigError("GATEWAY_VERIFY_KEYS is required when TRANSPORTER is set: expected the gateways' Ed25519 public keys, comma separated, the same on every node (npm run admin -- gateway-key makes a pair)");
		if (gateway && signingKey === null) throw new ConfigError("GATEWAY_SIGNING_KEY is required on a node that runs the gateway (api) when TRANSPORTER is set: expected its Ed25519 private key, whose public key is in GATEWAY_VERIFY_KEYS (npm run admin -- gateway-key makes a pair)");
	} else {
		signingKey ??= derivedSigningKey(jwtSecret);
		if (verifyKeys.length === 0) verifyKeys.push(publicKeyOf(signingKey));
	}
	if (!gateway) return { signingKey: null, verifyKeys, required: clustered || mode === "required" };
	if (signingKey !== null && !verifyKeys.includes(publicKeyOf(signingKey))) {
		throw new ConfigError(`GATEWAY_SIGNING_KEY's public key ${publicKeyOf(signingKey)} is not in GATEWAY_VERIFY_KEYS: every node would refuse what this gateway signs; add it there first`);
	}
	return { signingKey, verifyKeys, required: clustered || mode === "required" };
}

/**
 * AUDIT_KEY and AUDIT_KEYS_PREVIOUS. Every audit node of a cluster must share the key: the
 * audit service refuses to start with a transporter and no key (services/audit/keys.ts).
 */
function auditKeysVar(env: Env): { key: string | null; previousKeys: string[] } {
	const key = optionalSecret(env, "AUDIT_KEY", 32);
	const previousKeys = listVar(env, "AUDIT_KEYS_PREVIOUS");
	if (previousKeys.length > 0 && key === null) throw new ConfigError("AUDIT_KEYS_PREVIOUS is set without AUDIT_KEY: expected the new key in AUDIT_KEY");
	for (const [i, p] of previousKeys.entries()) {
		checkedSecret(`AUDIT_KEYS_PREVIOUS item ${i + 1}`, p, 32);
		if (p === key) throw new ConfigError(`AUDIT_KEYS_PREVIOUS repeats AUDIT_KEY (item ${i + 1}): expected only the keys being retired`);
		const other = SECRET_VARS.find(name => name !== "AUDIT_KEY" && env[name] === p);
		if (other) throw new ConfigError(`AUDIT_KEYS_PREVIOUS item ${i + 1} has the same value as ${other}: every key needs its own value`);
	}
	return { key, previousKeys };
}

/** SECRETS_KEY and SECRETS_KEYS_PREVIOUS, checked like every key (lib/secret-box.ts). */
function secretsKeysVar(env: Env): { key: string | null; previousKeys: string[] } {
	const key = optionalSecret(env, "SECRETS_KEY", 32);
	const previousKeys = listVar(env, "SECRETS_KEYS_PREVIOUS");
	if (previousKeys.length > 0 && key === null) throw new ConfigError("SECRETS_KEYS_PREVIOUS is set without SECRETS_KEY: expected the new key in SECRETS_KEY");
	for (const [i, p] of previousKeys.entries()) {
		checkedSecret(`SECRETS_KEYS_PREVIOUS item ${i + 1}`, p, 32);
		if (p === key) throw new ConfigError(`SECRETS_KEYS_PREVIOUS repeats SECRETS_KEY (item ${i + 1}): expected only the keys being retired`);
		const other = SECRET_VARS.find(name => name !== "SECRETS_KEY" && env[name] === p);
		if (other) throw new ConfigError(`SECRETS_KEYS_PREVIOUS item ${i + 1} has the same value as ${other}: every key needs its own value`);
	}
	return { key, previousKeys };
}

function listVar(env: Env, name: string): string[] {
	const raw = env[name];
	if (raw === undefined || raw.trim() === "") return [];
	return raw.split(",").map(s => s.trim()).filter(Boolean);
}

function intVar(env: Env, name: string, fallback: number, min: number, max: number): number {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	const value = Number(raw);
	if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
		throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected an integer from ${min} to ${max}`);
	}
	return value;
}

function boolVar(env: Env, name: string, fallback: boolean): boolean {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
	if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
	throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected true or false`);
}

function urlVar(env: Env, name: string, protocols: string[]): string | null {
	const raw = env[name];
	if (raw === undefined || raw === "") return null;
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new ConfigError(`${name} is not a valid URL: expected ${protocols.map(p => `${p}//...`).join(" or ")}`);
	}
	if (!protocols.includes(url.protocol)) {
		throw new ConfigError(`${name} has protocol ${url.protocol} but expected ${protocols.join(" or ")}`);
	}
	return raw;
}

/**
 * REDIS_URL (issue 16, finding 9). Redis holds the rate-limit and login-throttle counters,
 * which cannot be signed, besides the sealed cache and fan-out (lib/redis.ts). In a cluster
 * (TRANSPORTER set) Redis must therefore authenticate its clients: the URL carries a password
 * (an ACL user and password, or requirepass), unless Redis is on this host's loopback, which
 * nothing off the host reaches. rediss:// adds TLS.
 */
function redisUrlVar(env: Env, clustered: boolean): string | null {
	const raw = urlVar(env, "REDIS_URL", ["redis:", "rediss:"]);
	if (raw === null || !clustered) return raw;
	const url = new URL(raw);
	if (!loopbackHost(url.hostname) && url.password === "") {
		throw new ConfigError("REDIS_URL has no password but TRANSPORTER is set: a cluster's Redis must authenticate its clients (redis://user:password@host:6379, or rediss:// for TLS); only a Redis on 127.0.0.1 may go without");
	}
	if (url.password !== "") checkedSecret("REDIS_URL's password", decodeURIComponent(url.password), 16);
	return raw;
}

/** A URL's hostname that only this host reaches. */
function loopbackHost(hostname: string): boolean {
	return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const KYC_S3_VARS = ["KYC_S3_ENDPOINT", "KYC_S3_BUCKET", "KYC_S3_REGION", "KYC_S3_ACCESS_KEY_ID", "KYC_S3_SECRET_ACCESS_KEY", "KYC_S3_PATH_STYLE", "KYC_S3_SSE", "KYC_S3_SSE_KMS_KEY_ID", "KYC_S3_TIMEOUT_MS"] as const;

/**
 * KYC_STORAGE (directory or s3) and, with s3, the bucket: KYC_S3_ENDPOINT (scheme, host and
 * port only; https unless on this host's loopback, identity documents do not cross a network
 * in clear), KYC_S3_BUCKET, KYC_S3_REGION, KYC_S3_ACCESS_KEY_ID and KYC_S3_SECRET_ACCESS_KEY
 * (checked like every secret, never echoed), KYC_S3_PATH_STYLE, KYC_S3_SSE and
 * KYC_S3_SSE_KMS_KEY_ID, KYC_S3_TIMEOUT_MS. A KYC_S3_* setting without KYC_STORAGE=s3, or
 * KYC_STORAGE_DIR with it, is refused rather than ignored: documents would not be where the
 * operator believes.
 */
function kycS3Var(env: Env): S3StoreConfig | null {
	const storage = enumVar(env, "KYC_STORAGE", ["directory", "s3"] as const, "directory");
	if (storage === "directory") {
		const stray = KYC_S3_VARS.find(name => env[name] !== undefined && env[name] !== "");
		if (stray) throw new ConfigError(`${stray} is set but KYC_STORAGE is not s3: expected KYC_STORAGE=s3 to keep documents in the bucket, or no KYC_S3_* settings`);
		return null;
	}
	if (env["KYC_STORAGE_DIR"]) throw new ConfigError("KYC_STORAGE_DIR is set but KYC_STORAGE=s3 keeps documents in the bucket: expected one of the two");
	const required = (name: string) => {
		const v = env[name];
		if (v === undefined || v === "") throw new ConfigError(`${name} is required when KYC_STORAGE=s3`);
		return v;
	};
	const endpointRaw = urlVar(env, "KYC_S3_ENDPOINT", ["https:", "http:"]) ?? required("KYC_S3_ENDPOINT");
	const endpoint = new URL(endpointRaw);
	if (endpoint.username || endpoint.password || (endpoint.pathname !== "/" && endpoint.pathname !== "") || endpoint.search || endpoint.hash) {
		throw new ConfigError("KYC_S3_ENDPOINT is invalid: expected the scheme, host and port only (https://s3.eu-west-1.amazonaws.com), without credentials, path or query");
	}
	if (endpoint.protocol === "http:" && !loopbackHost(endpoint.hostname)) throw new ConfigError("KYC_S3_ENDPOINT is http:// on a host other than loopback: identity documents would cross the network in clear; expected https://");
	const bucket = required("KYC_S3_BUCKET");
	if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes("..")) throw new ConfigError(`KYC_S3_BUCKET=${JSON.stringify(bucket)} is invalid: expected an S3 bucket name (3 to 63 lower-case letters, digits, . or -)`);
	// Not echoed: a secret key given here by mistake would be printed.
	const accessKeyId = required("KYC_S3_ACCESS_KEY_ID");
	if (!/^[\w.~+=-]{3,128}$/.test(accessKeyId)) throw new ConfigError("KYC_S3_ACCESS_KEY_ID is invalid: expected an access key id (3 to 128 letters, digits or _ . ~ + = -)");
	const sse = enumVar(env, "KYC_S3_SSE", ["none", "AES256", "aws:kms"] as const, "none");
	const kmsKeyId = env["KYC_S3_SSE_KMS_KEY_ID"] || null;
	if (kmsKeyId !== null && sse !== "aws:kms") throw new ConfigError("KYC_S3_SSE_KMS_KEY_ID is set but KYC_S3_SSE is not aws:kms");
	if (kmsKeyId !== null && !/^[\w:/.-]{1,2048}$/.test(kmsKeyId)) throw new ConfigError("KYC_S3_SSE_KMS_KEY_ID is invalid: expected a KMS key id, ARN or alias");
	return {
		endpoint: endpoint.origin,
		bucket,
		region: stringVar(env, "KYC_S3_REGION", "us-east-1", /^[a-z0-9-]{1,32}$/, "a region name such as eu-west-1 (lower-case letters, digits and -)"),
		accessKeyId,
		secretAccessKey: checkedSecret("KYC_S3_SECRET_ACCESS_KEY", required("KYC_S3_SECRET_ACCESS_KEY"), 16),
		pathStyle: boolVar(env, "KYC_S3_PATH_STYLE", false),
		serverSideEncryption: sse === "none" ? null : sse,
		kmsKeyId,
		timeoutMs: intVar(env, "KYC_S3_TIMEOUT_MS", 5_000, 100, 120_000),
	};
}

/** DATABASE_REPLICA_URL: only beside DATABASE_URL (PGlite has no replica), and not the primary's own address. */
function replicaUrlVar(env: Env): string | null {
	const url = urlVar(env, "DATABASE_REPLICA_URL", ["postgres:", "postgresql:"]);
	if (url === null) return null;
	if (!env["DATABASE_URL"]) throw new ConfigError("DATABASE_REPLICA_URL is set without DATABASE_URL: a replica serves reads beside a PostgreSQL primary");
	if (url === env["DATABASE_URL"]) throw new ConfigError("DATABASE_REPLICA_URL is DATABASE_URL: expected the replica's own address");
	return url;
}

function enumVar<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	if (!(values as readonly string[]).includes(raw)) {
		throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected one of ${values.join(", ")}`);
	}
	return raw as T;
}

/** See Config.tracing.otlp; the OTEL_* names are OpenTelemetry's own. */
export interface OtlpConfig {
	/** `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`. */
	url: string;
	/** OTEL_EXPORTER_OTLP_HEADERS (`key=value,…`, a collector's API key): sent, never logged. */
	headers: Record<string, string>;
	/** OTEL_SERVICE_NAME, else `paymesh-<ROLE>` (or of the role whose services the node runs), `paymesh` for all. */
	serviceName: string;
	/** OTEL_BSP_SCHEDULE_DELAY: how often the queue is sent (and whenever a batch is full). */
	scheduleDelayMs: number;
	/** OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per request. */
	batchSizeMax: number;
	/** OTEL_BSP_MAX_QUEUE_SIZE: spans waiting at most; past it new spans are dropped and counted. */
	queueMax: number;
	/** OTEL_EXPORTER_OTLP_TIMEOUT: a request not answered in this is abandoned, its spans dropped and counted. */
	timeoutMs: number;
	/** OTEL_TRACES_SAMPLER_ARG: share of traces recorded, 0 to 1 (a trace is kept or dropped whole). */
	sampleRate: number;
}

function otlpHeadersVar(env: Env): Record<string, string> {
	const out: Record<string, string> = {};
	for (const item of listVar(env, "OTEL_EXPORTER_OTLP_HEADERS")) {
		const eq = item.indexOf("=");
		const key = eq > 0 ? item.slice(0, eq).trim() : "";
		// The value is never echoed: it is usually a key.
		if (!/^[\w-]{1,100}$/.test(key) || eq === item.length - 1) throw new ConfigError("OTEL_EXPORTER_OTLP_HEADERS is invalid: expected key=value pairs separated by commas");
		try {
			out[key] = decodeURIComponent(item.slice(eq + 1).trim());
		} catch {
			throw new ConfigError(`OTEL_EXPORTER_OTLP_HEADERS: the value of ${key} is not URL-encoded`);
		}
	}
	return out;
}

function otlpVar(env: Env, services: readonly ServiceName[]): OtlpConfig | null {
	const endpoint = urlVar(env, "OTEL_EXPORTER_OTLP_ENDPOINT", ["http:", "https:"]);
	if (endpoint === null) return null;
	const role = env["ROLE"];
	const same = (names: readonly string[]) => names.length === services.length && names.every(n => services.includes(n as ServiceName));
	const preset = role && role !== "all" && !env["SERVICES"] ? role : Object.keys(ROLES).find(r => same(ROLES[r] ?? []));
	const derived = same(ALL_SERVICES) ? "paymesh" : `paymesh-${preset ?? (services.join("-").slice(0, 100) || "none")}`;
	const rate = (env["OTEL_TRACES_SAMPLER_ARG"] ?? "").trim();
	if (rate !== "" && !/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(rate)) throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(rate)} is invalid: expected a number from 0 to 1`);
	const sampleRate = rate === "" ? 1 : Number(rate);
	return {
		url: `${endpoint.replace(/\/+$/, "")}/v1/traces`,
		headers: otlpHeadersVar(env),
		serviceName: stringVar(env, "OTEL_SERVICE_NAME", derived, /^[\w.-]{1,128}$/, "letters, digits, _, . or -, at most 128"),
		scheduleDelayMs: intVar(env, "OTEL_BSP_SCHEDULE_DELAY", 1_000, 10, 60_000),
		batchSizeMax: intVar(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1, 10_000),
		queueMax: intVar(env, "OTEL_BSP_MAX_QUEUE_SIZE", 4_096, 1, 1_000_000),
		timeoutMs: intVar(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 5_000, 100, 120_000),
		sampleRate,
	};
}

/** Node roles for a cluster: ROLE picks a preset when SERVICES is not given. */
export const ROLES: Record<string, readonly ServiceName[]> = {
	gateway: ["api", "realtime"],
	ledger: ["ledger"],
	payments: ["auth", "users", "payments", "providers", "fraud", "fx", "requests", "schedules", "bills", "methods"],
	workers: ["notifications", "audit", "webhooks", "reports", "recon"],
};

function servicesVar(env: Env): ServiceName[] {
	const raw = env["SERVICES"];
	const role = env["ROLE"];
	if ((raw === undefined || raw === "") && role !== undefined && role !== "" && role !== "all") {
		const preset = ROLES[role];
		if (!preset) throw new ConfigError(`ROLE=${JSON.stringify(role)} is invalid: expected all, ${Object.keys(ROLES).join(", ")}`);
		return [...preset];
	}
	if (raw === undefined || raw === "" || raw === "all") return [...ALL_SERVICES];
	// A node with no services of its own: a REPL, a load generator or a test client.
	if (raw === "none") return [];
	const names = raw.split(",").map(s => s.trim()).filter(Boolean);
	for (const name of names) {
		if (!(ALL_SERVICES as readonly string[]).includes(name)) {
			throw new ConfigError(`SERVICES contains ${JSON.stringify(name)}: expected "all", "none" or a comma list of ${ALL_SERVICES.join(", ")}`);
		}
	}
	return names as ServiceName[];
}

function stringVar(env: Env, name: string, fallback: string, pattern: RegExp, what: string): string {
	const raw = env[name];
	if (raw === undefined || raw === "") return fallback;
	if (!pattern.test(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected ${what}`);
	return raw;
}

export function loadConfig(env: Env = process.env): Config {
	if (env["ADMIN_EMAILS"] !== undefined && env["ADMIN_EMAILS"] !== "") {
		// It made whoever registered a listed address first an admin. Refused rather than
		// ignored, so nobody believes it still does something.
		throw new ConfigError("ADMIN_EMAILS is no longer supported: grant roles out of band with `npm run admin -- grant <email> [role]`");
	}
	distinctSecrets(env, SECRET_VARS);
	const transporter = urlVar(env, "TRANSPORTER", ["nats:"]);
	const jwt = secretVar(env, transporter !== null);
	const transitKeys = transitKeysVar(env, transporter !== null);
	const services = servicesVar(env);
	return {
		port: intVar(env, "PORT", 3000, 0, 65535),
		host: stringVar(env, "HOST", "0.0.0.0", /^[\w.:-]{1,255}$/, "a host name or IP address"),
		dataDir: env["DATA_DIR"] || "./data",
		databaseUrl: urlVar(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
		dbPoolMax: intVar(env, "DB_POOL_MAX", 10, 1, 200),
		dbIdleTransactionTimeoutMs: intVar(env, "DB_IDLE_TRANSACTION_TIMEOUT_MS", DB_IDLE_TRANSACTION_TIMEOUT_MS_DEFAULT, 1_000, 3_600_000),
		dbStatementTimeoutMs: intVar(env, "DB_STATEMENT_TIMEOUT_MS", DB_STATEMENT_TIMEOUT_MS_DEFAULT, 1_000, 3_600_000),
		databaseReplicaUrl: replicaUrlVar(env),
		dbReplicaWaitMs: intVar(env, "DB_REPLICA_WAIT_MS", 200, 0, 10_000),
		transporter,
		namespace: stringVar(env, "NAMESPACE", "paymesh", /^[\w-]{1,64}$/, "letters, digits, _ or -, at most 64"),
		redisUrl: redisUrlVar(env, transporter !== null),
		transit: {
			natsToken: optionalSecret(env, "NATS_TOKEN", 8),
			natsUser: env["NATS_USER"] || null,
			natsPassword: natsPasswordVar(env),
			natsTls: boolVar(env, "NATS_TLS", false),
			natsTlsCaFile: env["NATS_TLS_CA_FILE"] || null,
			natsTlsCertFile: env["NATS_TLS_CERT_FILE"] || null,
			natsTlsKeyFile: env["NATS_TLS_KEY_FILE"] || null,
			encryptionKey: transitKeys.key,
			previousKeys: transitKeys.previous,
			replayWindowS: intVar(env, "TRANSIT_REPLAY_WINDOW_S", 60, 1, 3_600),
			clockSkewS: intVar(env, "TRANSIT_CLOCK_SKEW_S", 5, 0, 300),
			replayCacheMax: intVar(env, "TRANSIT_REPLAY_CACHE_MAX", 1_000_000, 1_000, 100_000_000),
		},
		tracing: { exporter: enumVar(env, "TRACING_EXPORTER", ["none", "console", "event"] as const, "none"), otlp: otlpVar(env, servicesVar(env)) },
		audit: auditKeysVar(env),
		secrets: secretsKeysVar(env),
		callerIdentity: callerIdentityVar(env, transporter !== null, services, jwt.secret),
		opsPort: env["OPS_PORT"] ? intVar(env, "OPS_PORT", 9100, 1, 65535) : null,
		services,
		nodeId: env["NODE_ID"] ? stringVar(env, "NODE_ID", "", /^[\w.-]{1,128}$/, "letters, digits, _, . or -") : null,
		logLevel: enumVar(env, "LOG_LEVEL", LOG_LEVELS, "info"),
		logFormat: enumVar(env, "LOG_FORMAT", ["short", "json", "full"] as const, "short"),
		metricsEnabled: boolVar(env, "METRICS_ENABLED", true),
		requestTimeoutMs: intVar(env, "REQUEST_TIMEOUT_MS", 10_000, 100, 300_000),
		shutdownTimeoutMs: intVar(env, "SHUTDOWN_TIMEOUT_MS", 10_000, 100, 300_000),
		maxCallLevel: intVar(env, "MAX_CALL_LEVEL", 10, 1, 100),
		heartbeatIntervalS: intVar(env, "HEARTBEAT_INTERVAL_S", 5, 1, 60),
		heartbeatTimeoutS: intVar(env, "HEARTBEAT_TIMEOUT_S", 30, 2, 600),
		balancer: enumVar(env, "BALANCER", ["least-requests", "round-robin"] as const, "least-requests"),
		bulkheadConcurrency: intVar(env, "BULKHEAD_CONCURRENCY", 2_000, 1, 100_000),
		bulkheadQueueSizeMax: intVar(env, "BULKHEAD_QUEUE_SIZE_MAX", 20_000, 0, 1_000_000),
		ledger: {
			batchSizeMax: intVar(env, "LEDGER_BATCH_SIZE_MAX", 1_000, 1, 10_000),
			batchConcurrencyMax: intVar(env, "LEDGER_BATCH_CONCURRENCY_MAX", 2, 1, 16),
			batchWaitMs: intVar(env, "LEDGER_BATCH_WAIT_MS", 1, 0, 1_000),
			queueLengthMax: intVar(env, "LEDGER_QUEUE_LENGTH_MAX", 50_000, 1, 1_000_000),
			holdSweepIntervalMs: intVar(env, "LEDGER_HOLD_SWEEP_INTERVAL_MS", 1_000, 10, 3_600_000),
			holdTimeoutMsMax: intVar(env, "LEDGER_HOLD_TIMEOUT_MS_MAX", 30 * 24 * 3600 * 1000, 1_000, 365 * 24 * 3600 * 1000),
		},
		outbox: {
			pollIntervalMs: intVar(env, "OUTBOX_POLL_INTERVAL_MS", 200, 5, 60_000),
			batchSizeMax: intVar(env, "OUTBOX_BATCH_SIZE_MAX", 1_000, 1, 10_000),
			relayGapMs: intVar(env, "OUTBOX_RELAY_GAP_MS", 20, 0, 1_000),
			retentionDays: intVar(env, "OUTBOX_RETENTION_DAYS", 30, 1, 3_650),
			pruneIntervalMs: intVar(env, "OUTBOX_PRUNE_INTERVAL_MS", 600_000, 1_000, 86_400_000),
			packEvents: boolVar(env, "OUTBOX_PACK_EVENTS", true),
		},
		retention: {
			// At least today and yesterday, so a node whose clock is behind still finds its day.
			dailyCountersDays: intVar(env, "DAILY_COUNTERS_RETENTION_DAYS", 7, 2, 3_650),
		},
		auth: {
			jwtSecret: jwt.secret,
			jwtSecretGenerated: jwt.generated,
			accessTokenTtlS: intVar(env, "ACCESS_TOKEN_TTL_S", 900, 10, 86_400),
			refreshTokenTtlS: intVar(env, "REFRESH_TOKEN_TTL_S", 30 * 86_400, 60, 365 * 86_400),
			refreshFamilyTtlS: intVar(env, "REFRESH_FAMILY_TTL_S", 30 * 86_400, 1, 365 * 86_400),
			loginFailuresMax: intVar(env, "LOGIN_FAILURES_MAX", 5, 1, 1_000),
			loginFailureWindowS: intVar(env, "LOGIN_FAILURE_WINDOW_S", 900, 1, 86_400),
			registrationsPerAddressMax: intVar(env, "REGISTRATIONS_PER_ADDRESS_MAX", 60, 1, 1_000_000),
			registrationWindowS: intVar(env, "REGISTRATION_WINDOW_S", 3_600, 1, 86_400),
			clientTokenTtlS: intVar(env, "CLIENT_TOKEN_TTL_S", 600, 10, 3_600),
			clientSecretOverlapS: intVar(env, "CLIENT_SECRET_OVERLAP_S", 86_400, 0, 30 * 86_400),
		},
		payments: {
			providerLatencyMs: intVar(env, "PROVIDER_LATENCY_MS", 20, 0, 60_000),
			providerFailurePercent: intVar(env, "PROVIDER_FAILURE_PERCENT", 0, 0, 100),
			providerTimeoutPercent: intVar(env, "PROVIDER_TIMEOUT_PERCENT", 0, 0, 100),
			providerTimeoutMs: intVar(env, "PROVIDER_TIMEOUT_MS", 5_000, 10, 120_000),
			providerSeed: intVar(env, "PROVIDER_SEED", 0, 0, 2 ** 31 - 1),
			settlementDir: env["SETTLEMENT_DIR"] || `${env["DATA_DIR"] || "./data"}/settlements`,
			settlementBreakPermille: intVar(env, "SETTLEMENT_BREAK_PERMILLE", 10, 0, 1_000),
			reconScheduleIntervalMs: intVar(env, "RECON_SCHEDULE_INTERVAL_MS", 3_600_000, 0, 86_400_000),
			resumeAfterMs: intVar(env, "PAYMENT_RESUME_AFTER_MS", 30_000, 100, 3_600_000),
			breakerRequestsMin: intVar(env, "PROVIDER_BREAKER_REQUESTS_MIN", 10, 1, 10_000),
			breakerWindowS: intVar(env, "PROVIDER_BREAKER_WINDOW_S", 60, 1, 3_600),
			breakerHalfOpenMs: intVar(env, "PROVIDER_BREAKER_HALF_OPEN_MS", 10_000, 100, 3_600_000),
			webhookProviders: providerListVar(env, "PROVIDER_WEBHOOK_PROVIDERS", ["bank", "mobile_money"]),
			webhookSecret: webhookSecretVar(env, jwt.secret),
			callbackUrl: urlVar(env, "PROVIDER_CALLBACK_URL", ["http:", "https:"]),
			callbackDuplicatePercent: intVar(env, "PROVIDER_CALLBACK_DUPLICATE_PERCENT", 0, 0, 100),
			callbackReorderPercent: intVar(env, "PROVIDER_CALLBACK_REORDER_PERCENT", 0, 0, 100),
			refundDeclinePercent: intVar(env, "PROVIDER_REFUND_DECLINE_PERCENT", 0, 0, 100),
		},
		events: {
			attemptsMax: intVar(env, "EVENT_ATTEMPTS_MAX", 5, 1, 100),
			retryDelayMs: intVar(env, "EVENT_RETRY_DELAY_MS", 100, 1, 60_000),
			pollIntervalMs: intVar(env, "EVENT_POLL_INTERVAL_MS", 500, 10, 60_000),
			pumpGapMs: intVar(env, "EVENT_PUMP_GAP_MS", 100, 0, 10_000),
		},
		notifications: {
			smtpUrl: urlVar(env, "SMTP_URL", ["smtp:", "smtps:"]),
			mailFrom: stringVar(env, "MAIL_FROM", "Paymesh <no-reply@paymesh.local>", /^[^\r\n]{3,200}$/, "a sender address without line breaks"),
			smsFailurePercent: intVar(env, "SMS_FAILURE_PERCENT", 0, 0, 100),
			deliveryAttemptsMax: intVar(env, "NOTIFY_ATTEMPTS_MAX", 5, 1, 100),
			deliveryRetryDelayMs: intVar(env, "NOTIFY_RETRY_DELAY_MS", 1_000, 1, 3_600_000),
		},
		kyc: {
			storageDir: env["KYC_STORAGE_DIR"] || `${env["DATA_DIR"] || "./data"}/documents`,
			documentBytesMax: intVar(env, "KYC_DOCUMENT_BYTES_MAX", 5 * 1024 * 1024, 1_024, DOCUMENT_BYTES_LIMIT),
			s3: kycS3Var(env),
		},
		webhooks: {
			attemptsMax: intVar(env, "WEBHOOK_ATTEMPTS_MAX", 8, 1, 100),
			retryDelayMs: intVar(env, "WEBHOOK_RETRY_DELAY_MS", 1_000, 1, 3_600_000),
			retryDelayMsMax: intVar(env, "WEBHOOK_RETRY_DELAY_MS_MAX", 3_600_000, 1, 86_400_000),
			timeoutMs: intVar(env, "WEBHOOK_TIMEOUT_MS", 5_000, 10, 60_000),
			endpointsPerUserMax: intVar(env, "WEBHOOK_ENDPOINTS_PER_USER_MAX", 10, 1, 1_000),
			allowPrivateUrls: boolVar(env, "WEBHOOK_ALLOW_PRIVATE_URLS", false),
		},
		limits: {
			baseCurrency: enumVar(env, "LIMITS_BASE_CURRENCY", CURRENCY_CODES, "USD"),
		},
		fx: {
			spreadBps: intVar(env, "FX_SPREAD_BPS", 50, 0, 2_000),
			quoteTtlMs: intVar(env, "FX_QUOTE_TTL_MS", 30_000, 100, 3_600_000),
			refreshIntervalMs: intVar(env, "FX_REFRESH_INTERVAL_MS", 60_000, 1_000, 86_400_000),
		},
		http: {
			bodyLimitBytes: intVar(env, "HTTP_BODY_LIMIT_BYTES", 64 * 1024, 1_024, 10 * 1024 * 1024),
			keepAliveTimeoutMs: intVar(env, "HTTP_KEEP_ALIVE_TIMEOUT_MS", 65_000, 1_000, 600_000),
			corsOrigins: listVar(env, "CORS_ORIGINS"),
			trustedProxies: cidrListVar(env, "TRUSTED_PROXIES"),
			rateLimitPerUser: intVar(env, "RATE_LIMIT_PER_USER", 6_000, 1, 10_000_000),
			rateLimitPerIp: intVar(env, "RATE_LIMIT_PER_IP", 60_000, 1, 10_000_000),
			rateLimitWindowS: intVar(env, "RATE_LIMIT_WINDOW_S", 60, 1, 3_600),
		},
	};
}
