import type { ServiceSchema } from "moleculer";
import type { Config, ServiceName } from "../config/index.ts";
import { apiService } from "./api/api.service.ts";
import { authService } from "./auth/auth.service.ts";
import { paymentsService } from "./payments/payments.service.ts";
import { providersService } from "./payments/providers.service.ts";
import { usersService } from "./users/users.service.ts";
import { fraudService } from "./fraud/fraud.service.ts";
import { fxService } from "./fx/fx.service.ts";
import { ledgerService } from "./ledger/ledger.service.ts";
import { auditService } from "./audit/audit.service.ts";
import { reportsService } from "./reports/reports.service.ts";
import { webhooksService } from "./webhooks/webhooks.service.ts";
import { realtimeService } from "./realtime/realtime.service.ts";
import { notificationsService } from "./notifications/notifications.service.ts";
import { reconService } from "./recon/recon.service.ts";
import { requestsService } from "./requests/requests.service.ts";
import { billsService } from "./bills/bills.service.ts";
import { schedulesService } from "./schedules/schedules.service.ts";
import { methodsService } from "./methods/methods.service.ts";

/** Every service this node can run, by the name SERVICES uses. */
export const SERVICE_FACTORIES: Record<ServiceName, (config: Config) => ServiceSchema> = {
	api: apiService,
	auth: authService,
	users: usersService,
	ledger: ledgerService,
	payments: paymentsService,
	providers: providersService,
	fx: fxService,
	fraud: fraudService,
	notifications: notificationsService,
	audit: auditService,
	realtime: realtimeService,
	webhooks: webhooksService,
	reports: reportsService,
	recon: reconService,
	requests: requestsService,
	schedules: schedulesService,
	bills: billsService,
	methods: methodsService,
};
