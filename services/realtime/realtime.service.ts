/**
 * The realtime service: Socket.IO on the gateway's HTTP server and port (it runs on every
 * gateway node). The access token is checked at the handshake (a bad one is refused), each
 * socket joins its user's room, and money events are pushed to the owner only
 * (feed.ts). With REDIS_URL set the Socket.IO Redis adapter carries a push from the node
 * that received the event to sockets on every other gateway node. The feed may be lossy:
 * balance events carry the account version, so a client that sees a gap re-reads.
 */
import type { Context, EventSchemas, ServiceBroker, ServiceSchema, Logger } from "moleculer";
import { Server } from "socket.io";
import { Redis } from "ioredis";
import type { Config } from "../../config/index.ts";
import { verifyAccessToken } from "../auth/tokens.ts";
import { catchUpRevocations } from "../auth/revocations.ts";
import { pushesFor, userRoom } from "./feed.ts";
import { sealedFanout } from "./fanout.ts";
import { redisSeal } from "../../lib/redis.ts";
import { defineService } from "../../lib/service.ts";
import { gatewayServer } from "../../lib/gateway-server.ts";
import { LIVE_BATCH_EVENT, type LiveBatch } from "../../mixins/event-log.ts";

const HANDSHAKE_TOKEN_CHARS_MAX = 4_096;
const MESSAGE_BYTES_MAX = 4_096;

interface RealtimeThis {
	broker: ServiceBroker;
	logger: Logger;
	io: Server | null;
	redis: Redis[];
	/** Logged-out sessions, until their access tokens would have expired anyway. */
	revoked: Map<string, number>;
	push(event: string, payload: Record<string, unknown>): void;
}

/** Revoked sessions remembered at most (a flood of logouts cannot grow memory without bound; the oldest go first). */
const REVOKED_MAX = 100_000;

export const FANOUT_DROPPED_METRIC = "paymesh.realtime.fanout.dropped";
const FANOUT_WARN_INTERVAL_MS = 10_000;

const FED = ["balance.updated", "transfer.completed", "notification.created", "payment.status_changed", "insight.created"];

export function realtimeService(config: Config): ServiceSchema {
	const events: EventSchemas<RealtimeThis> = {};
	for (const name of FED) {
		events[name] = function (this: RealtimeThis, ctx: Context<Record<string, unknown>>) {
			this.push(name, ctx.params);
		};
	}
	// A committed batch's events in one message (mixins/event-log.ts).
	events[LIVE_BATCH_EVENT] = function (this: RealtimeThis, ctx: Context<LiveBatch>) {
		for (const e of ctx.params.events) if (FED.includes(e.event)) this.push(e.event, e.payload);
	};
	events["auth.session.revoked"] = async function (this: RealtimeThis, ctx: Context<{ sid?: string }>) {
		// A logged-out session's sockets close at once, on every node.
		const sid = ctx.params.sid;
		if (typeof sid !== "string") return;
		// Also refused at the next handshake with the same token (issue 16, finding 11).
		const now = Date.now();
		for (const [k, until] of this.revoked) if (until <= now || this.revoked.size >= REVOKED_MAX) this.revoked.delete(k);
		this.revoked.set(sid, now + config.auth.accessTokenTtlS * 1000);
		if (!this.io) return;
		for (const s of await this.io.local.fetchSockets()) if (s.data.sid === sid) s.disconnect(true);
	};
	const schema = defineService<RealtimeThis>({
		name: "realtime",
		events,
		methods: {
			push(this: RealtimeThis, event: string, payload: Record<string, unknown>) {
				if (!this.io) return;
				for (const p of pushesFor(event, payload)) this.io.to(p.room).emit(p.message, p.data);
			},
		},
		created(this: RealtimeThis) {
			if (this.broker.isMetricsEnabled() && !this.broker.metrics.getMetric(FANOUT_DROPPED_METRIC)) {
				this.broker.metrics.register({ type: "counter", name: FANOUT_DROPPED_METRIC, labelNames: ["reason"], description: "Socket.IO fan-out messages from Redis dropped (bad seal, malformed or oversized, stale, replayed, over the seen-ids bound)" });
			}
			this.io = null;
			this.redis = [];
			this.revoked = new Map();
		},
		async started(this: RealtimeThis) {
			const server = gatewayServer(this.broker);
			if (!server) throw new Error("the realtime service runs beside the api service (it shares the gateway's HTTP server)");
			const io = new Server(server, {
				// serveClient: the dashboard loads the client bundle from /socket.io/socket.io.min.js.
				path: "/socket.io", serveClient: true, maxHttpBufferSize: MESSAGE_BYTES_MAX,
				...(config.http.corsOrigins.length > 0 ? { cors: { origin: config.http.corsOrigins, methods: ["GET", "POST"] } } : {}),
			});
			if (config.redisUrl) {
				const pub = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 });
				const sub = pub.duplicate();
				pub.on("error", (err: Error) => this.logger.warn("socket.io redis (pub) error", { error: err.message }));
				sub.on("error", (err: Error) => this.logger.warn("socket.io redis (sub) error", { error: err.message }));
				this.redis = [pub, sub];
				// Pushes cross nodes sealed; what Redis hands over unsigned, stale or twice is dropped (fanout.ts).
				let warnedAtMs = 0;
				const fanout = sealedFanout(pub, sub, {
					channel: `${config.namespace}:socket.io`,
					seal: redisSeal(config.auth.jwtSecret),
					onDropped: reason => {
						if (this.broker.isMetricsEnabled()) this.broker.metrics.increment(FANOUT_DROPPED_METRIC, { reason });
						if (Date.now() - warnedAtMs < FANOUT_WARN_INTERVAL_MS) return;
						warnedAtMs = Date.now();
						this.logger.warn("a Socket.IO fan-out message from Redis was dropped", { reason });
					},
					onPublishError: err => this.logger.warn("socket.io fan-out publish failed", { error: err.message }),
				});
				io.adapter(fanout.adapter);
				await fanout.ready;
			}
			io.use((socket, next) => {
				const token: unknown = socket.handshake.auth?.["token"];
				const claims = typeof token === "string" && token.length <= HANDSHAKE_TOKEN_CHARS_MAX ? verifyAccessToken(token, config.auth.jwtSecret) : null;
				if (!claims || (this.revoked.get(claims.sid) ?? 0) > Date.now()) return next(new Error("UNAUTHORIZED"));
				// An OAuth2 client's token opens the feed only with transactions:read (docs/identity.md).
				if (claims.scopes && !claims.scopes.includes("transactions:read")) return next(new Error("UNAUTHORIZED"));
				socket.data.userId = claims.sub;
				socket.data.sid = claims.sid;
				socket.data.exp = claims.exp;
				next();
			});
			io.on("connection", socket => {
				void socket.join(userRoom(String(socket.data.userId)));
				// The socket lives no longer than its token; the client reconnects with a fresh one.
				const msLeft = Number(socket.data.exp) * 1000 - Date.now();
				const expiry = setTimeout(() => socket.disconnect(true), Math.max(0, Math.min(msLeft, 2 ** 31 - 1)));
				expiry.unref();
				socket.on("disconnect", () => clearTimeout(expiry));
				socket.emit("ready", { userId: socket.data.userId });
			});
			this.io = io;
			// Sessions revoked before this node joined (it missed their broadcast).
			void catchUpRevocations(this.broker, this.revoked, this.logger);
		},
		async stopped(this: RealtimeThis) {
			const io = this.io;
			this.io = null;
			if (io) {
				// This node's sockets only: the other gateways keep theirs.
				io.local.disconnectSockets(true);
				// Closing the Socket.IO server would close the gateway's HTTP server too; the api service does that.
				io.engine.close();
			}
			for (const r of this.redis) r.disconnect();
		},
	});
	return schema;
}
