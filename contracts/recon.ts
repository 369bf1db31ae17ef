/**
 * The reconciliation service's actions (services/recon): a run over one provider's day, the
 * breaks it recorded, and their resolutions with four eyes.
 */
import { action, returns } from "../lib/contract.ts";
import { BY_ADMIN, BY_STAFF } from "../lib/caller-identity.ts";
import { paramsSchema } from "../lib/schema.ts";
import { PROVIDERS } from "../services/payments/providers.ts";
import { BREAK_TYPES, RESOLUTIONS, type Totals } from "../services/recon/rules.ts";
import { actorRule, reasonRule } from "./repair.ts";

export { RESOLUTIONS };
export const BREAK_STATUSES = ["open", "proposed", "resolved", "cleared"] as const;
const dayRule = { type: "string", pattern: /^\d{4}-\d{2}-\d{2}$/ } as const;
const breakId = { type: "number", integer: true, min: 1, max: Number.MAX_SAFE_INTEGER, convert: true } as const;

export const runParams = paramsSchema({
	$$strict: true,
	provider: { type: "enum", values: PROVIDERS },
	day: dayRule,
	/** The file's text, when the caller has it (the CLI's --file); otherwise the provider is asked for it. */
	csv: { type: "string", max: 32 * 1024 * 1024, optional: true },
});
export const listParams = paramsSchema({
	$$strict: true,
	status: { type: "enum", values: BREAK_STATUSES, optional: true },
	provider: { type: "enum", values: PROVIDERS, optional: true },
	day: { ...dayRule, optional: true },
	limit: { type: "number", integer: true, min: 1, max: 200, optional: true, convert: true },
	afterId: { ...breakId, optional: true },
});
export const proposeParams = paramsSchema({ $$strict: true, id: breakId, resolution: { type: "enum", values: RESOLUTIONS }, note: reasonRule, staffId: actorRule });
export const approveParams = paramsSchema({ $$strict: true, id: breakId, staffId: actorRule });
export const emptyParams = paramsSchema({ $$strict: true });

export interface BreakView {
	id: number;
	provider: string;
	day: string;
	type: (typeof BREAK_TYPES)[number];
	status: (typeof BREAK_STATUSES)[number];
	/** Our payment; on a refund's break, the top-up it gives back. */
	paymentId: string | null;
	/** On a refund's break (kind `refund`): our refund's id, or the one the provider named. */
	refundId: string | null;
	providerRef: string | null;
	kind: string;
	currency: string;
	theirAmount: number | null;
	ourAmount: number | null;
	theirStatus: string | null;
	ourStatus: string | null;
	detail: string;
	proposal: { resolution: string; note: string; by: string; at: string } | null;
	approvedBy: string | null;
	resolvedAt: string | null;
	adjustmentTransferId: string | null;
}

export interface RunView {
	id: string;
	provider: string;
	day: string;
	status: "running" | "done";
	fileSha256: string;
	totals: Totals & { newBreaks: number; openBreaks: number };
}

export const recon = {
	run: action("recon.run", runParams, returns<RunView>()),
	breaks: {
		list: action("recon.breaks.list", listParams, returns<{ items: BreakView[]; nextAfterId: number | null }>()),
		propose: action("recon.breaks.propose", proposeParams, returns<BreakView>(), BY_STAFF),
		approve: action("recon.breaks.approve", approveParams, returns<BreakView>(), BY_ADMIN),
	},
	openBreaks: action("recon.openBreaks", emptyParams, returns<{ open: number }>()),
};
