/** The webhooks service's actions: a merchant's endpoints and their signed deliveries. */
import { action, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { erasureParams } from "../lib/erasure.ts";
import { WEBHOOK_EVENTS } from "../services/webhooks/routing.ts";

export const registerParams = paramsSchema({
	$$strict: true,
	ownerId: { type: "uuid" },
	// A string rule, not "url": fastest-validator's url rule ignores max, and the length must hold.
	url: { type: "string", min: 1, max: 2_000, pattern: /^https?:\/\/[\x21-\x7e]+$/ },
	events: { type: "array", items: { type: "enum", values: WEBHOOK_EVENTS }, min: 1, max: WEBHOOK_EVENTS.length, unique: true, optional: true },
});
export const ownerParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" } });
export const endpointParams = paramsSchema({ $$strict: true, ownerId: { type: "uuid" }, id: { type: "uuid" } });
export const deliveriesParams = paramsSchema({
	$$strict: true,
	ownerId: { type: "uuid" },
	id: { type: "uuid" },
	limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true },
	cursor: { type: "string", max: 80, optional: true },
});

export interface EndpointView {
	id: string;
	url: string;
	events: string[];
	status: string;
	createdAt: string;
}

export interface DeliveryView {
	id: string;
	eventId: string;
	event: string;
	status: string;
	attempts: number;
	lastStatus: number | null;
	lastError: string | null;
	createdAt: string;
	deliveredAt: string | null;
	log: { attempt: number; statusCode: number | null; error: string | null; durationMs: number; at: string }[];
}

/** Endpoints and their secrets are the owner's: in a cluster the owner must come with the gateway's signature (an endpoint registered or a secret rotated for someone else would receive their events or sign as them). */
const BY_OWNER = { user: "ownerId" } as const;

export const webhooks = {
	/** The signing secret is in this answer only. */
	register: action("webhooks.register", registerParams, returns<EndpointView & { secret: string }>(), BY_OWNER),
	list: action("webhooks.list", ownerParams, returns<{ items: EndpointView[] }>()),
	/** Erasure on request: the owner's endpoints disabled, their URLs and secrets gone, their deliveries deleted. */
	erase: action("webhooks.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	disable: action("webhooks.disable", endpointParams, returns<EndpointView | null>(), BY_OWNER),
	/** A new signing secret for an active endpoint, in this answer only; deliveries signed from now on use it. */
	rotate: action("webhooks.rotate", endpointParams, returns<EndpointView & { secret: string }>(), BY_OWNER),
	deliveries: action("webhooks.deliveries", deliveriesParams, returns<{ items: DeliveryView[]; nextCursor: string | null }>()),
};
