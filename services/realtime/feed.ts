/**
 * What the live feed sends to whom (pure): Socket.IO rooms and messages for one event.
 * Each user has one room; only owners get their accounts' news.
 */
export interface Push {
	room: string;
	message: "balance.updated" | "transaction.new" | "notification.new" | "payment.updated" | "insight.new";
	data: Record<string, unknown>;
}

export const userRoom = (userId: string) => `user:${userId}`;

export function pushesFor(event: string, p: Record<string, unknown>): Push[] {
	if (event === "balance.updated" && typeof p["ownerId"] === "string") {
		return [{
			room: userRoom(p["ownerId"]), message: "balance.updated",
			data: { accountId: p["accountId"], currency: p["currency"], posted: p["posted"], pending: p["pending"], available: p["available"], version: p["version"], previousVersion: p["previousVersion"] },
		}];
	}
	if (event === "transfer.completed") {
		const base = { transferId: p["id"], amount: p["amount"], currency: p["currency"], description: p["description"], createdAt: p["createdAt"] };
		const out: Push[] = [];
		if (typeof p["fromOwnerId"] === "string") {
			out.push({ room: userRoom(p["fromOwnerId"]), message: "transaction.new", data: { ...base, accountId: p["fromAccountId"], counterparty: p["toAccountId"], direction: "out" } });
		}
		if (typeof p["toOwnerId"] === "string") {
			out.push({ room: userRoom(p["toOwnerId"]), message: "transaction.new", data: { ...base, accountId: p["toAccountId"], counterparty: p["fromAccountId"], direction: "in" } });
		}
		return out;
	}
	if (event === "notification.created" && typeof p["userId"] === "string") {
		return [{ room: userRoom(p["userId"]), message: "notification.new", data: (p["notification"] ?? {}) as Record<string, unknown> }];
	}
	if (event === "insight.created" && typeof p["ownerId"] === "string") {
		return [{ room: userRoom(p["ownerId"]), message: "insight.new", data: { id: p["id"], kind: p["kind"], transactionId: p["transactionId"], currency: p["currency"], amount: p["amount"], comparedWith: p["comparedWith"], why: p["why"] } }];
	}
	if (event === "payment.status_changed" && typeof p["userId"] === "string") {
		return [{ room: userRoom(p["userId"]), message: "payment.updated", data: { paymentId: p["paymentId"], type: p["type"], status: p["to"], failureCode: p["failureCode"] ?? null } }];
	}
	return [];
}
