/**
 * Who the caller is: the gateway's signature (docs/identity.md). TRANSIT_KEY makes the bus
 * trust nodes; it says nothing about the person a call is made for. So a gateway that
 * authenticated a user (their access token) signs, for each guarded action it calls on
 * another node, an assertion of who asks for exactly what, and the node that runs the
 * action checks it; a call that stays in the gateway's process carries an intent instead
 * (INTENT below).
 *
 * An assertion is a compact token, `base64url(JSON payload).base64url(Ed25519 signature)`,
 * the signature over the first part's ASCII. The payload:
 *
 *   v     1
 *   kid   the signing key's id: the first 8 bytes of SHA-256 of its raw public key, hex
 *   sub   the user id (for a staff action, the staff member's)
 *   roles the user's roles, as their access token had them
 *   sid   the session
 *   act   the full name of the action called (`payments.topup`)
 *   dig   the hash of the call's params (lib/idempotency.ts: key order does not matter)
 *   iat   signed at, ms since the epoch, the gateway's clock
 *   exp   iat + 30 s
 *
 * The check: a known key id, the signature, not expired nor from the future (a few seconds
 * of clock skew allowed), `act` the action being run, `dig` the hash of its params. Then the
 * action's guard (its contract's `caller` option, lib/contract.ts) binds the verified
 * caller to the params: the user the action is for (`user`: that param must be `sub`), or the
 * staff member (`staff`: that param must be `sub`, whose roles must hold one of `roles`).
 * A batch (`each`) carries one assertion for the whole call (`callerBatchAssertion`): the same
 * payload with, instead of sub, roles and sid, `callers`, one {sub, roles, sid} per item in
 * the items' order, and `dig` the hash of the whole call's params; each item is bound to its
 * own caller. One signature per call instead of one per item (an Ed25519 check was a quarter
 * of a ledger node's CPU with one per payment). The form of one assertion per item
 * (`callerAssertions`) is still accepted, and sent to ledger nodes that do not say they take
 * the batch form (a rolling upgrade).
 *
 * Only gateway nodes hold the private key (GATEWAY_SIGNING_KEY); every node holds the public
 * keys (GATEWAY_VERIFY_KEYS), two during a rotation. A node that holds TRANSIT_KEY but not
 * the private key can still send packets, but cannot say a user or a staff member asked.
 * Tokens are never logged: refusals name the action and the reason only.
 */
import { createHash, createPrivateKey, createPublicKey, hkdfSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { Errors, type Context } from "moleculer";
import { requestHash } from "./idempotency.ts";
import { randomPoolBytes } from "./ids.ts";

export const ASSERTION_VERSION = 1;
/** How long an assertion is good for: the call it was made for, retries included. */
export const ASSERTION_TTL_MS = 30_000;
/** How far apart the gateway's and the checking node's clocks may be. */
export const CLOCK_SKEW_MS = 5_000;
/** Longest token accepted (a payload with a few roles is about 400 characters). */
const TOKEN_CHARS_MAX = 4_096;
/** Longest batch token accepted: about 150 characters a caller, for BATCH_CALLERS_MAX of them (a full batch makes about 15,000). */
const BATCH_TOKEN_CHARS_MAX = 32_768;
const SEED_BYTES = 32;
const KID_BYTES = 8;
/** PKCS#8 DER of an Ed25519 private key, before its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const DIGEST_KIND = "paymesh caller v1";
const HKDF_SALT = "paymesh gateway signing v1";
/** Roles that make a staff member (auditors only read). */
export const STAFF_ROLES = ["admin", "support"] as const;

/** Where a call carries its assertion(s) in ctx.meta. */
export interface CallerMeta {
	callerAssertion?: string;
	/** A batch's: one per item, in the items' order (the earlier form). */
	callerAssertions?: string[];
	/** A batch's: one for the whole call, naming each item's caller. */
	callerBatchAssertion?: string;
}

/** Callers a batch assertion names at most: the items of the largest guarded batch (ledger.payments.p2pMany takes 100). */
const BATCH_CALLERS_MAX = 100;

/** The verified caller. */
export interface CallerClaims {
	v: 1;
	kid: string;
	sub: string;
	roles: string[];
	sid: string;
	act: string;
	dig: string;
	iat: number;
	exp: number;
	/** A random id: an action without an idempotency key takes each assertion once (a replay of a freeze after its unfreeze is refused). */
	jti: string;
}

/** Random bytes of an assertion's id. */
const JTI_BYTES = 12;
const JTI = /^[A-Za-z0-9_-]{16}$/;
/** Ids of single-use assertions a node remembers at most; past that, such calls are refused until old ones expire. */
const SPENT_IDS_MAX = 100_000;

/** Who the gateway authenticated: its session user. */
export interface CallerIdentity {
	id: string;
	roles: readonly string[];
	sid: string;
}

/**
 * How an action binds its verified caller to its params (contracts/, `action(…, { caller })`).
 * `user`: the param naming the user the action is for, or "meta.user" for actions that take
 * their user from ctx.meta.user (auth's); `staff`: the param naming the staff member, who
 * must hold one of `roles` (default STAFF_ROLES). With both, a call naming a staff member is
 * a staff action, any other the user's. `each`: the array param of a batch, each item signed
 * on its own (then `user` and `staff` name fields of the items).
 */
export interface CallerGuard {
	readonly user?: string;
	readonly staff?: string;
	readonly roles?: readonly string[];
	readonly each?: string;
}

export const META_USER = "meta.user";

/** The guards most actions take: the user in `userId`, or in `ownerId`; a staff member in `staffId` (admin or support), or an admin. */
export const BY_USER: CallerGuard = { user: "userId" };
export const BY_OWNER: CallerGuard = { user: "ownerId" };
export const BY_STAFF: CallerGuard = { staff: "staffId" };
export const BY_ADMIN: CallerGuard = { staff: "staffId", roles: ["admin"] };

/** The hash an assertion carries of its call's params. */
export function paramsDigest(params: object): string {
	return requestHash(DIGEST_KIND, params);
}

function unverified(message: string): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(message, 401, "CALLER_UNVERIFIED");
}

function forbidden(message: string): Errors.MoleculerClientError {
	return new Errors.MoleculerClientError(message, 403, "FORBIDDEN");
}

/** A raw 32-byte key in base64url (43 characters, no padding), or null. */
function raw32(b64url: string): Buffer | null {
	if (!/^[A-Za-z0-9_-]{43}$/.test(b64url)) return null;
	const b = Buffer.from(b64url, "base64url");
	return b.length === SEED_BYTES ? b : null;
}

/** The key id of a raw public key: the first 8 bytes of its SHA-256, hex. */
export function keyId(rawPublicKey: Buffer): string {
	return createHash("sha256").update(rawPublicKey).digest().subarray(0, KID_BYTES).toString("hex");
}

function privateKeyOf(seed: Buffer): KeyObject {
	return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
}

function rawPublicOf(privateKey: KeyObject): Buffer {
	const x = createPublicKey(privateKey).export({ format: "jwk" }).x;
	if (typeof x !== "string") throw new Error("caller identity: no public key");
	return Buffer.from(x, "base64url");
}

/** Why a GATEWAY_SIGNING_KEY value cannot be used, or null. */
export function signingKeyProblem(seed: string): string | null {
	return raw32(seed) ? null : "is not an Ed25519 private key: expected 32 random bytes in base64url (43 characters; npm run admin -- gateway-key)";
}

/** Why a GATEWAY_VERIFY_KEYS item cannot be used, or null. */
export function verifyKeyProblem(publicKey: string): string | null {
	return raw32(publicKey) ? null : "is not an Ed25519 public key: expected its 32 raw bytes in base64url (43 characters; npm run admin -- gateway-key)";
}

/** The public key (raw, base64url) of a signing key (its seed, base64url). */
export function publicKeyOf(seed: string): string {
	const s = raw32(seed);
	if (!s) throw new Error("caller identity: the signing key is not 32 bytes of base64url");
	return rawPublicOf(privateKeyOf(s)).toString("base64url");
}

/** A new key pair: the private key (seed) for GATEWAY_SIGNING_KEY, the public one for GATEWAY_VERIFY_KEYS. */
export function generateGatewayKey(): { signingKey: string; verifyKey: string; kid: string } {
	const seed = randomBytes(SEED_BYTES);
	const pub = rawPublicOf(privateKeyOf(seed));
	return { signingKey: seed.toString("base64url"), verifyKey: pub.toString("base64url"), kid: keyId(pub) };
}

/**
 * A node without a transporter (one process, tests, embedded PGlite) has no gateway key of
 * its own: its pair is derived from JWT_SECRET under its own label, never equal to any other
 * key derived from it.
 */
export function derivedSigningKey(jwtSecret: string): string {
	return Buffer.from(hkdfSync("sha256", jwtSecret, HKDF_SALT, "ed25519 seed", SEED_BYTES)).toString("base64url");
}

/**
 * Signs assertions with the gateway's private key, for calls that leave this process (a call
 * that stays in it carries an intent instead: see INTENT).
 */
export class CallerSigner {
	readonly kid: string;
	private readonly key: KeyObject;
	private readonly now: () => number;

	constructor(seed: string, now: () => number = Date.now) {
		const s = raw32(seed);
		if (!s) throw new Error("caller identity: the signing key is not 32 bytes of base64url");
		this.key = privateKeyOf(s);
		this.kid = keyId(rawPublicOf(this.key));
		this.now = now;
	}

	/** An assertion that `who` asks for action `act` with exactly these params. */
	sign(who: CallerIdentity, act: string, params: object): string {
		return this.seal({ ...this.head(act, params), sub: who.id, roles: [...who.roles], sid: who.sid });
	}

	/** A batch's assertion: `callers[i]` asks for item i of the call of `act` with exactly these params. */
	signBatch(callers: readonly CallerIdentity[], act: string, params: object): string {
		if (callers.length === 0 || callers.length > BATCH_CALLERS_MAX) throw new Error(`caller identity: a batch assertion names 1 to ${BATCH_CALLERS_MAX} callers, not ${callers.length}`);
		return this.seal({ ...this.head(act, params), callers: callers.map(c => ({ sub: c.id, roles: [...c.roles], sid: c.sid })) });
	}

	private head(act: string, params: object): Head {
		const iat = this.now();
		return { v: ASSERTION_VERSION, kid: this.kid, act, dig: paramsDigest(params), iat, exp: iat + ASSERTION_TTL_MS, jti: randomPoolBytes(JTI_BYTES).toString("base64url") };
	}

	private seal(claims: Head & ({ sub: string; roles: string[]; sid: string } | { callers: { sub: string; roles: string[]; sid: string }[] })): string {
		const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
		return `${body}.${sign(null, Buffer.from(body), this.key).toString("base64url")}`;
	}
}

function isStringArray(v: unknown): v is string[] {
	return Array.isArray(v) && v.every(x => typeof x === "string");
}

type Head = Omit<CallerClaims, "sub" | "roles" | "sid">;

/** What every assertion carries, single or batch. */
function headOf(v: unknown): Head | null {
	if (typeof v !== "object" || v === null) return null;
	const c = v as Record<string, unknown>;
	if (c["v"] !== ASSERTION_VERSION) return null;
	const { kid, act, dig, iat, exp, jti } = c;
	if (typeof kid !== "string" || typeof act !== "string" || typeof dig !== "string") return null;
	if (typeof iat !== "number" || typeof exp !== "number" || !Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return null;
	if (typeof jti !== "string" || !JTI.test(jti)) return null;
	return { v: ASSERTION_VERSION, kid, act, dig, iat, exp, jti };
}

/** Who one caller is: {sub, roles, sid}, or null. */
function whoOf(v: unknown): Pick<CallerClaims, "sub" | "roles" | "sid"> | null {
	if (typeof v !== "object" || v === null) return null;
	const { sub, roles, sid } = v as Record<string, unknown>;
	return typeof sub === "string" && isStringArray(roles) && typeof sid === "string" ? { sub, roles, sid } : null;
}

function claimsOf(v: unknown): CallerClaims | null {
	const head = headOf(v);
	const who = whoOf(v);
	return head && who && Reflect.get(v as object, "callers") === undefined ? { ...head, ...who } : null;
}

/** A batch assertion's claims, one per caller named (in order), or null. */
function batchClaimsOf(v: unknown): CallerClaims[] | null {
	const head = headOf(v);
	if (!head || Reflect.get(v as object, "sub") !== undefined) return null;
	const callers: unknown = Reflect.get(v as object, "callers");
	if (!Array.isArray(callers) || callers.length === 0 || callers.length > BATCH_CALLERS_MAX) return null;
	const out: CallerClaims[] = [];
	for (const c of callers) {
		const who = whoOf(c);
		if (!who) return null;
		out.push({ ...head, ...who });
	}
	return out;
}

/** Checks assertions against the gateways' public keys (GATEWAY_VERIFY_KEYS). */
export class CallerVerifier {
	private readonly keys: Map<string, KeyObject>;
	private readonly now: () => number;
	private readonly skewMs: number;

	constructor(publicKeys: readonly string[], opts: { now?: () => number; clockSkewMs?: number } = {}) {
		this.keys = new Map();
		for (const pk of publicKeys) {
			const raw = raw32(pk);
			if (!raw) throw new Error("caller identity: a verify key is not 32 bytes of base64url");
			this.keys.set(keyId(raw), createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: pk }, format: "jwk" }));
		}
		this.now = opts.now ?? Date.now;
		this.skewMs = opts.clockSkewMs ?? CLOCK_SKEW_MS;
	}

	/** Ids of single-use assertions taken, with when they stop mattering (expiry plus skew), oldest first. */
	private readonly spent = new Map<string, number>();

	/**
	 * Takes a single-use assertion (one for an action without an idempotency key): a second
	 * call with it, within its life, is refused (409 CALLER_REPLAYED). Kept per node: a
	 * replay sent to another node running the same action is not seen here.
	 */
	spend(claims: CallerClaims): void {
		const now = this.now();
		for (const [id, until] of this.spent) {
			if (until >= now) break;
			this.spent.delete(id);
		}
		if (this.spent.has(claims.jti)) throw new Errors.MoleculerClientError("this signed request was used already: ask again", 409, "CALLER_REPLAYED");
		if (this.spent.size >= SPENT_IDS_MAX) throw new Errors.MoleculerRetryableError("too many signed requests at once: try again shortly", 503, "CALLER_BUSY");
		this.spent.set(claims.jti, claims.exp + this.skewMs);
	}

	/** The key ids accepted. */
	get kids(): string[] {
		return [...this.keys.keys()];
	}

	/** The claims of an assertion for action `act` with these params; a 401 CALLER_UNVERIFIED otherwise. */
	verify(token: unknown, act: string, params: object): CallerClaims {
		return this.open(token, act, params, TOKEN_CHARS_MAX, claimsOf);
	}

	/**
	 * The claims of a batch's assertion for action `act` with these params, one per caller it
	 * names, in order (each with the whole call's `dig`); a 401 CALLER_UNVERIFIED otherwise.
	 */
	verifyBatch(token: unknown, act: string, params: object): CallerClaims[] {
		return this.open(token, act, params, BATCH_TOKEN_CHARS_MAX, batchClaimsOf);
	}

	/** The checks every assertion passes (key, signature, life, action, params), then its shape's claims. */
	private open<T>(token: unknown, act: string, params: object, charsMax: number, shape: (v: unknown) => T | null): T {
		if (typeof token !== "string" || token.length > charsMax) throw unverified(`${act} needs the caller's identity signed by the gateway`);
		const dot = token.indexOf(".");
		if (dot <= 0 || dot !== token.lastIndexOf(".")) throw unverified("the caller's assertion is malformed");
		const body = token.slice(0, dot);
		let parsed: unknown;
		try {
			parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
		} catch {
			throw unverified("the caller's assertion is malformed");
		}
		const shaped = shape(parsed);
		const claims = headOf(parsed);
		if (!shaped || !claims) throw unverified("the caller's assertion is malformed");
		const key = this.keys.get(claims.kid);
		if (!key) throw unverified("the caller's assertion is signed by a key this node does not know");
		const signature = Buffer.from(token.slice(dot + 1), "base64url");
		if (signature.length !== 64 || !verify(null, Buffer.from(body), key, signature)) throw unverified("the caller's assertion has a wrong signature");
		const now = this.now();
		if (claims.exp - claims.iat > ASSERTION_TTL_MS) throw unverified("the caller's assertion lives longer than allowed");
		if (now > claims.exp + this.skewMs) throw unverified("the caller's assertion has expired");
		if (claims.iat > now + this.skewMs) throw unverified("the caller's assertion is from the future");
		if (claims.act !== act) throw unverified(`the caller's assertion is for another action, not ${act}`);
		if (claims.dig !== paramsDigest(params)) throw unverified("the call's params are not the ones the caller's assertion was signed for");
		return shaped;
	}
}

/** The guards of the contracts' actions, by full name (filled by lib/contract.ts's action()). */
const guards = new Map<string, CallerGuard>();

export function registerGuard(action: string, guard: CallerGuard): void {
	guards.set(action, guard);
}

export function guardOf(action: string): CallerGuard | undefined {
	return guards.get(action);
}

/** The signer of the gateway running on a broker, if it runs one. */
const signers = new WeakMap<object, CallerSigner>();

export function installSigner(broker: object, signer: CallerSigner): void {
	signers.set(broker, signer);
}

export function signerOf(broker: object): CallerSigner | undefined {
	return signers.get(broker);
}

function fieldOf(o: unknown, name: string): unknown {
	return typeof o === "object" && o !== null ? (o as Record<string, unknown>)[name] : undefined;
}

/**
 * Where a gateway keeps the user it authenticated itself from a request's access token:
 * a symbol-keyed property of the request context's meta. Moleculer copies it into every
 * child context's meta (Object.assign copies symbol keys) and it never travels (JSON has no
 * symbols), so nothing that arrives over the bus carries it. ctx.meta.user is not enough:
 * a gateway's actions are published (moleculer-web routes to them), so a node on the bus
 * can call one with any ctx.meta.user; and Moleculer merges a remote callee's meta back
 * into the caller's after each call, replacing ctx.meta.user with a decoded copy, while a
 * symbol-keyed property stays. Only this user is signed for or taken as the caller
 * (services/api/caller.ts).
 */
const AUTHENTICATED = Symbol("paymesh.authenticatedUser");

/** Records, in the request context's meta, the user the gateway made from a verified access token; returns the user. */
export function markAuthenticated<T extends CallerIdentity>(meta: object, user: T): T {
	// A plain property: Moleculer assigns a local child's meta (which copied it) back onto its parent's.
	Object.defineProperty(meta, AUTHENTICATED, { value: user, enumerable: true, writable: true, configurable: true });
	return user;
}

/** The user this process's gateway authenticated for the request `meta` belongs to, or null (a call that came over the bus). */
export function authenticatedUser<T extends CallerIdentity = CallerIdentity>(meta: unknown): T | null {
	if (typeof meta !== "object" || meta === null) return null;
	const u: unknown = Reflect.get(meta, AUTHENTICATED);
	return typeof u === "object" && u !== null ? (u as T) : null;
}

/**
 * A guarded call this gateway makes for the user it authenticated, to an action that runs
 * in this process: what it would sign, kept instead as a symbol-keyed property of the call's
 * meta (the user, the action and the very params object of the call). Like AUTHENTICATED it
 * never travels (JSON has no symbols), so only code in this process can make one, and it is
 * bound to the params by identity, not by a hash. Should the call go to another node after
 * all, the middleware's remoteAction hook signs the same user, action and params before the
 * packet leaves (CallerIdentityMiddleware). A local call so costs no Ed25519 signature, no
 * signature check and no hashes of its params (a one-process node's main thread spent 0.62
 * instead of 0.76 ms of CPU per HTTP transfer, docs/identity.md). Intents need the params
 * object a call was made with to reach its action unchanged: Moleculer's params cloning
 * (`contextParamsCloning`) would refuse every such call, so the middleware refuses to start
 * with it.
 */
const INTENT = Symbol("paymesh.callerIntent");
/** What an intent's claims carry for the hash of the params (none was made; no params hash to this) and for the id (it is never spent). */
const INTENT_DIGEST = "intent";
const INTENT_JTI = "intent-no-token-";

interface CallerIntent {
	readonly act: string;
	readonly params: object;
	readonly who: CallerIdentity;
}

/** The meta of a gateway's call of guarded `act` with `params` for the user it authenticated for the request `meta` belongs to; null for anyone else. */
export function intentMeta(broker: object, act: string, meta: unknown, params: object): { [INTENT]: CallerIntent } | null {
	const guard = guards.get(act);
	// Only a user this gateway authenticated from a request: never one a call over the bus named.
	const who = authenticatedUser(meta);
	if (!guard || !signers.has(broker) || !who) return null;
	if (guard.each) {
		const items = fieldOf(params, guard.each);
		if (!Array.isArray(items) || items.length === 0) return null;
	}
	return { [INTENT]: { act, params, who } };
}

/**
 * After a gateway's call of a guarded action: what the call's meta held for its check (the
 * intent, a signature made on its way out) and Moleculer merged back onto the caller's meta
 * with the answer, or with a refusal made before the check (the validator, a bulkhead, a
 * timeout), is removed there, so no later call of the request carries it.
 */
export function dropCallerMeta(meta: object): void {
	Reflect.deleteProperty(meta, INTENT);
	for (const key of ["callerAssertion", "callerAssertions", "callerBatchAssertion"]) Reflect.deleteProperty(meta, key);
}

/** The intent in `meta` for exactly this call (this action, this params object), or null. */
function intentOf(meta: object, act: string, params: unknown): CallerIntent | null {
	const intent: unknown = Reflect.get(meta, INTENT);
	if (typeof intent !== "object" || intent === null) return null;
	const i = intent as CallerIntent;
	return i.act === act && i.params === params ? i : null;
}

/**
 * The intent behind a retry: Moleculer retries a call with a copy of its context (the same
 * meta, locals and params object), and where the first attempt ran in this process its check
 * took the intent off the meta and left the claims it made from it in the context's locals.
 * Should the retry go to another node (this node's endpoint taken out by a circuit breaker,
 * say), those claims, this signer's, for this action and this very params object, are the
 * intent again, to be signed on the way out. Locals never travel and a later call of the
 * request has its own, so nothing else can come by one.
 */
function retriedIntent(guard: CallerGuard, locals: unknown, act: string, params: unknown, kid: string): CallerIntent | null {
	const earlier = verifiedOf(locals);
	if (!earlier || earlier.act !== act || earlier.params !== params || typeof params !== "object" || params === null) return null;
	// A batch signed again as it was checked: no items added or dropped since (as rebind refuses locally).
	if (guard.each) {
		const items = fieldOf(params, guard.each);
		if (!Array.isArray(items) || items.length !== earlier.claims.length) return null;
	}
	const [first] = earlier.claims;
	if (!first || !earlier.claims.every(c => c.dig === INTENT_DIGEST && c.jti === INTENT_JTI && c.kid === kid && c.sub === first.sub && c.sid === first.sid)) return null;
	return { act, params, who: { id: first.sub, roles: [...first.roles], sid: first.sid } };
}

/** The assertion of an intent, for a call that leaves this process. */
function signIntent(signer: CallerSigner, guard: CallerGuard, intent: CallerIntent): CallerMeta {
	if (guard.each) {
		const items = fieldOf(intent.params, guard.each);
		const n = Array.isArray(items) ? items.length : 0;
		return { callerBatchAssertion: signer.signBatch(Array.from({ length: n }, () => intent.who), intent.act, intent.params) };
	}
	return { callerAssertion: signer.sign(intent.who, intent.act, intent.params) };
}

/** The claims of an intent checked here, one per item of a batch, each bound to the params like a verified assertion's. */
function intentClaims(guard: CallerGuard, intent: CallerIntent, kid: string, nowMs: number, meta: Record<string, unknown>): CallerClaims[] {
	const one: CallerClaims = {
		v: ASSERTION_VERSION, kid, act: intent.act, dig: INTENT_DIGEST, iat: nowMs, exp: nowMs + ASSERTION_TTL_MS, jti: INTENT_JTI, sub: intent.who.id, roles: [...intent.who.roles], sid: intent.who.sid,
	};
	if (!guard.each) {
		bind(guard, one, intent.params, meta);
		return [one];
	}
	const items = fieldOf(intent.params, guard.each);
	if (!Array.isArray(items) || items.length === 0) throw unverified(`${intent.act} needs the caller's identity for each item`);
	for (const item of items) bind(guard, one, item, meta);
	return items.map(() => one);
}

/** Service metadata of a node whose guarded batch actions take the batch form (callerBatchAssertion). */
export const TAKES_BATCH_ASSERTION = "takesCallerBatchAssertion";

interface RegistryLike {
	registry: { nodes: { get(nodeID: string): { services?: unknown } | undefined } };
}

/** Whether `service` on node `nodeID` says it takes batch assertions (a node of an earlier release takes one per item): read off the node's INFO. */
export function takesBatchAssertion(broker: RegistryLike, service: string, nodeID: string): boolean {
	const services = broker.registry.nodes.get(nodeID)?.services;
	return Array.isArray(services) && services.some(s => fieldOf(s, "name") === service && fieldOf(fieldOf(s, "metadata"), TAKES_BATCH_ASSERTION) === true);
}

/**
 * The assertion(s) of a batch a gateway gathered from several requests for another node:
 * `callers[i]` the user the request of item i authenticated (authenticatedUser). One for the whole call when
 * `oneForAll` (the node it goes to takes that form), else one per item. Null when this node
 * signs nothing, the action is not a guarded batch, or an item has no authenticated user.
 */
export function batchAssertionMeta(broker: object, act: string, callers: readonly (CallerIdentity | null)[], params: object, oneForAll: boolean): CallerMeta | null {
	const guard = guards.get(act);
	const signer = signers.get(broker);
	const items = guard?.each ? fieldOf(params, guard.each) : undefined;
	if (!signer || !Array.isArray(items) || items.length === 0 || items.length !== callers.length) return null;
	const who = callers.filter((c): c is CallerIdentity => c !== null);
	if (who.length !== callers.length) return null;
	if (oneForAll) return { callerBatchAssertion: signer.signBatch(who, act, params) };
	return { callerAssertions: items.map((item, i) => signer.sign(who[i] as CallerIdentity, act, typeof item === "object" && item !== null ? item : {})) };
}

/** The verified caller's bond to the params (the action's guard); a 403 FORBIDDEN otherwise. */
function bind(guard: CallerGuard, claims: CallerClaims, params: unknown, meta: Record<string, unknown>): void {
	const staffId = guard.staff ? fieldOf(params, guard.staff) : undefined;
	if (guard.staff && staffId != null) {
		if (staffId !== claims.sub) throw forbidden("the staff member named is not the verified caller");
		const allowed: readonly string[] = guard.roles ?? STAFF_ROLES;
		if (!claims.roles.some(r => allowed.includes(r))) throw forbidden("the verified caller's roles do not allow this staff action");
		return;
	}
	if (!guard.user) throw forbidden("a staff action needs the verified staff member");
	const owner = guard.user === META_USER ? fieldOf(meta["user"], "id") : fieldOf(params, guard.user);
	if (owner !== claims.sub) throw forbidden("the call is not for the verified caller");
}

/**
 * Checks a call of a guarded action: its assertion(s) and their bond to the params. With
 * `required` false (one process without CALLER_SIGNATURES=required) a call carrying no
 * assertion runs unchecked, one that carries any is checked all the same. Answers the
 * verified claims (one per item of a batch), or none when unchecked.
 */
export function checkCall(verifier: CallerVerifier, guard: CallerGuard, act: string, params: unknown, meta: Record<string, unknown>, required: boolean): CallerClaims[] {
	if (guard.each) {
		const items = fieldOf(params, guard.each);
		const tokens = meta["callerAssertions"];
		const batch = meta["callerBatchAssertion"];
		if (tokens === undefined && batch === undefined && !required) return [];
		if (batch !== undefined) {
			if (tokens !== undefined) throw unverified("the caller's assertions come in two forms at once");
			// One signature for the call, over all its params: each item is bound to its own caller.
			const claims = verifier.verifyBatch(batch, act, typeof params === "object" && params !== null ? params : {});
			if (!Array.isArray(items) || claims.length !== items.length) throw unverified(`${act} needs the caller's identity signed by the gateway for each item`);
			items.forEach((item, i) => bind(guard, claims[i] as CallerClaims, item, meta));
			return claims;
		}
		if (!Array.isArray(items) || !Array.isArray(tokens) || tokens.length !== items.length) throw unverified(`${act} needs the caller's identity signed by the gateway for each item`);
		return items.map((item, i) => {
			const claims = verifier.verify(tokens[i], act, typeof item === "object" && item !== null ? item : {});
			bind(guard, claims, item, meta);
			return claims;
		});
	}
	const token = meta["callerAssertion"];
	if (token === undefined && !required) return [];
	const claims = verifier.verify(token, act, typeof params === "object" && params !== null ? params : {});
	bind(guard, claims, params, meta);
	// An action without an idempotency key (a freeze, a tier, roles) takes each assertion once;
	// one with a key may see its assertion again (a retry), and its key answers the same.
	if (fieldOf(params, "idempotencyKey") === undefined) verifier.spend(claims);
	return [claims];
}

/** Where a checked call keeps its verified caller(s): ctx.locals, which never leaves the node. */
export const VERIFIED = "callerIdentity";

/** The verified callers of a call: one, or one per item of a batch. */
export interface Verified {
	act: string;
	claims: CallerClaims[];
	/** The params object they were checked for, where that was an intent (a retry passes the same object). */
	params?: unknown;
}

function verifiedOf(v: unknown): Verified | null {
	if (typeof v !== "object" || v === null) return null;
	const act: unknown = Reflect.get(v, "act");
	const claims: unknown = Reflect.get(v, "claims");
	if (typeof act !== "string" || !Array.isArray(claims)) return null;
	const kept = claims.filter((c): c is CallerClaims => whoOf(c) !== null && headOf(c) !== null);
	return { act, claims: kept, params: Reflect.get(v, "params") };
}

/** Binds claims checked before (a retry's) to the call's params as they are now. */
function rebind(guard: CallerGuard, claims: readonly CallerClaims[], params: unknown, meta: Record<string, unknown>): void {
	if (!guard.each) {
		const [one] = claims;
		if (!one || claims.length !== 1) throw unverified("the call's verified caller was lost");
		bind(guard, one, params, meta);
		return;
	}
	const items = fieldOf(params, guard.each);
	if (!Array.isArray(items) || items.length !== claims.length) throw unverified(`${guard.each} changed since the call was checked`);
	items.forEach((item, i) => bind(guard, claims[i] as CallerClaims, item, meta));
}

/** The params are still those the verified claims were signed for (a retry of the same context). */
function sameParams(guard: CallerGuard, claims: readonly CallerClaims[], params: unknown): boolean {
	if (claims.length === 0) return false;
	if (!guard.each) return claims.length === 1 && claims[0]?.dig === paramsDigest(typeof params === "object" && params !== null ? params : {});
	const items = fieldOf(params, guard.each);
	if (!Array.isArray(items) || items.length !== claims.length) return false;
	// The batch form: every item's claims carry the whole call's hash.
	const whole = claims[0]?.dig;
	if (claims.every(c => c.dig === whole) && whole === paramsDigest(typeof params === "object" && params !== null ? params : {})) return true;
	return items.every((item, i) => claims[i]?.dig === paramsDigest(typeof item === "object" && item !== null ? item : {}));
}

/** How often a node logs refused calls (with the count since the last line): a flood of forged calls cannot flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

interface BrokerLike {
	getLogger(name: string): { warn(msg: string, o?: object): void; info(msg: string, o?: object): void };
	options?: { contextParamsCloning?: boolean };
}

interface ActionLike {
	name?: string;
}

export interface CallerIdentityOptions {
	/** GATEWAY_VERIFY_KEYS. */
	verifyKeys: readonly string[];
	/** GATEWAY_SIGNING_KEY, on a node that runs the gateway; null elsewhere. */
	signingKey: string | null;
	/** Every call of a guarded action must carry its assertion (a cluster, or CALLER_SIGNATURES=required). */
	required: boolean;
	now?: () => number;
}

/**
 * The broker middleware: installs this node's signer (a gateway's), and checks every local
 * call of a guarded action before its handler runs (after Moleculer's params validation).
 * Actions without a guard are not wrapped.
 */
export function callerIdentityMiddleware(opts: CallerIdentityOptions) {
	const now = opts.now ?? Date.now;
	const verifier = new CallerVerifier(opts.verifyKeys, { now });
	const signer = opts.signingKey ? new CallerSigner(opts.signingKey, now) : null;
	let logger: ReturnType<BrokerLike["getLogger"]> | null = null;
	let refused = new Map<string, number>();
	let lastLogAt = Number.NEGATIVE_INFINITY;
	const noteRefusal = (act: string, err: Error) => {
		const key = `${act}: ${err.message}`;
		refused.set(key, (refused.get(key) ?? 0) + 1);
		if (now() - lastLogAt < REFUSAL_LOG_INTERVAL_MS) return;
		lastLogAt = now();
		logger?.warn("refused call(s) of guarded actions without a valid caller identity", { counts: Object.fromEntries(refused) });
		refused = new Map();
	};
	return {
		name: "CallerIdentity",
		created(broker: BrokerLike & object) {
			logger = broker.getLogger("caller-identity");
			if (signer && broker.options?.contextParamsCloning === true) throw new Error("caller identity: a gateway's intents are bound to the params object of each call; contextParamsCloning must stay off");
			if (signer) {
				installSigner(broker, signer);
			}
			logger.info("guarded actions check the gateway-signed caller", { required: opts.required, keys: verifier.kids, signs: signer?.kid ?? null });
		},
		localAction(next: (ctx: Context) => Promise<unknown>, action: ActionLike) {
			const act = action.name;
			const guard = act ? guardOf(act) : undefined;
			if (!act || !guard) return next;
			return function checkCaller(ctx: Context): Promise<unknown> {
				const meta = ctx.meta as Record<string, unknown>;
				try {
					const intent = signer ? intentOf(meta, act, ctx.params) : null;
					const earlier = verifiedOf(ctx.locals[VERIFIED]);
					const carriesNone = meta["callerAssertion"] === undefined && meta["callerAssertions"] === undefined && meta["callerBatchAssertion"] === undefined;
					if (intent && signer) {
						// Made by this process's gateway for exactly this call: bound like a verified assertion.
						ctx.locals[VERIFIED] = { act, claims: intentClaims(guard, intent, signer.kid, now(), meta), params: ctx.params } satisfies Verified;
					} else if (earlier?.act === act && carriesNone && earlier.params !== undefined && earlier.params === ctx.params) {
						// Moleculer retries a local call with a copy of its context (the same meta, locals and
						// params object): an intent's claims are bound again, to the params as they are now.
						rebind(guard, earlier.claims, ctx.params, meta);
					} else if (!(earlier?.act === act && carriesNone && sameParams(guard, earlier.claims, ctx.params))) {
						const claims = checkCall(verifier, guard, act, ctx.params, meta, opts.required);
						if (claims.length > 0) ctx.locals[VERIFIED] = { act, claims } satisfies Verified;
					}
				} catch (err) {
					noteRefusal(act, err as Error);
					return Promise.reject(err);
				} finally {
					// Checked or refused, the assertions and the intent go no further: neither into this
					// action's own calls and events, nor back onto the caller's meta with the answer (a
					// batch's would double its size), where a later call of the request could find them.
					delete meta["callerAssertion"];
					delete meta["callerAssertions"];
					delete meta["callerBatchAssertion"];
					Reflect.deleteProperty(meta, INTENT);
				}
				return next(ctx);
			};
		},
		/** A gateway's intent for a guarded action that turned out to run on another node: signed before it leaves. */
		remoteAction(next: (ctx: Context) => Promise<unknown>, action: ActionLike) {
			const act = action.name;
			const guard = act ? guardOf(act) : undefined;
			if (!act || !guard || !signer) return next;
			return function signCaller(ctx: Context): Promise<unknown> {
				const intent = intentOf(ctx.meta as object, act, ctx.params) ?? retriedIntent(guard, ctx.locals[VERIFIED], act, ctx.params, signer.kid);
				if (intent) {
					try {
						Object.assign(ctx.meta as object, signIntent(signer, guard, intent));
					} catch (err) {
						return Promise.reject(err);
					} finally {
						// Signed: the call's meta now carries the assertion (a retry of this call sends it
						// again), and the intent is not left for the answer's meta to carry back.
						Reflect.deleteProperty(ctx.meta as object, INTENT);
					}
				}
				return next(ctx);
			};
		},
	};
}
