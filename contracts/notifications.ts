/** The notifications service's actions: a user's in-app notifications and their deliveries. */
import { action, event, payload, returns } from "../lib/contract.ts";
import { paramsSchema } from "../lib/schema.ts";

export const listParams = paramsSchema({
	$$strict: true,
	userId: { type: "uuid" },
	limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: true },
	cursor: { type: "string", max: 80, optional: true },
	unreadOnly: { type: "boolean", optional: true, convert: true },
});
export const markReadParams = paramsSchema({ $$strict: true, userId: { type: "uuid" }, id: { type: "uuid" } });
export const markAllParams = paramsSchema({ $$strict: true, userId: { type: "uuid" } });
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
	deliveries: {
		list: action("notifications.deliveries.list", deliveriesParams, returns<{ items: { channel: string; status: string; attempts: number; lastError: string | null }[] }>()),
	},
};

export const notificationEvents = {
	/** Pushed live to the user's sockets by realtime. */
	created: event("notification.created", payload<{ userId: string; notification: NotificationView }>()),
};
