/**
 * The ledger's outbox is the durable event log of money (mixins/event-log.ts): written in
 * the batch transaction, pushed live at commit, positioned by the relay (ledger.service.ts),
 * read by consumers.
 */
import type { Knex } from "knex";
import * as log from "../../mixins/event-log.ts";

export const outboxLag = (knex: Knex) => log.outboxLag(knex, "ledger");
export const readEvents = (knex: Knex, afterSeq: number, eventsMax: number) => log.readEvents(knex, "ledger", afterSeq, eventsMax);
