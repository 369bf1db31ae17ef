/** The notifications service's actions: a user's in-app notifications and their deliveries. */
import { action, event, payload, returns } from "../lib/contract.ts";
import { BY_USER } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { SINGLE_ADDRESS } from "../lib/email.ts";
import { erasureParams } from "../lib/erasure.ts";

export const listParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true },
	cursor: { type: "string", max: 80, optional: true },
	unreadOnly: { type: "boolean", optional: true, convert: true },
});
export const markReadParams = paramsSchema({ $$strict: true, userId: { type: "uuid" }, id: { type: "uuid" } });
export const markAllParams = paramsSchema({ $$strict: true, userId: { type: "uuid" } });
/** Identity mail kinds (services/auth/mails.ts writes them). */
export const MAIL_KINDS = ["identity.verify", "identity.registration_attempt", "identity.password_reset", "identity.password_changed", "identity.new_login"] as const;
export const MAIL_BODY_CHARS_MAX = 4_000;
export const mailParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid", optional: true },
	to: { type: "string", max: 254, pattern: SINGLE_ADDRESS },
	kind: { type: "enum", values: MAIL_KINDS },
	title: { type: "string", min: 1, max: 200, pattern: /^[^\r\n]+$/ },
	body: { type: "string", min: 1, max: MAIL_BODY_CHARS_MAX },
});
export const deliveriesParams = paramsSchema({ $$strict: true, notificationId: { type: "uuid" } });

export interface NotificationView {
	id: string;
	kind: string;
	title: string;
	body: string;
	data: Record<string, unknown>;
	read: boolean;
	createdAt: string;
}

export const notifications = {
	list: action("notifications.list", listParams, returns<{ items: NotificationView[]; unreadCount: number; nextCursor: string | null }>()),
	markRead: action("notifications.markRead", markReadParams, returns<NotificationView>()),
	markAllRead: action("notifications.markAllRead", markAllParams, returns<{ marked: number }>()),
	/**
	 * An e-mail to one address on its own, not an in-app notification: identity mail (a
	 * verification code, a reset link, a new-login notice). Queued and sent by the delivery
	 * sweep with retries; its body is blanked once sent. queued is false when no e-mail
	 * channel is configured (SMTP_URL).
	 */
	mail: action("notifications.mail", mailParams, returns<{ queued: boolean }>()),
	/** Erasure on request: the user's notifications, their deliveries (addresses) and mails go; other people's notices show the pseudonym for them. */
	erase: action("notifications.erase", erasureParams, returns<{ erased: number }>(), BY_USER),
	deliveries: {
		list: action("notifications.deliveries.list", deliveriesParams, returns<{ items: { channel: string; status: string; attempts: number; lastError: string | null }[] }>()),
	},
};

export const notificationEvents = {
	/** Pushed live to the user's sockets by realtime. */
	created: event("notification.created", payload<{ userId: string; notification: NotificationView }>()),
};
