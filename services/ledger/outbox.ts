/**
 * The ledger's outbox is the durable event log of money (mixins/event-log.ts): written in
 * the batch transaction, positioned and published by the relay, read by consumers.
 */
import type { Knex } from "knex";
import * as log from "../../mixins/event-log.ts";

export type { Publish } from "../../mixins/event-log.ts";

export const relayOnce = (knex: Knex, publish: log.Publish, batchSizeMax: number) => log.relayOnce(knex, "ledger", publish, batchSizeMax);
export const outboxLag = (knex: Knex) => log.outboxLag(knex, "ledger");
export const readEvents = (knex: Knex, afterSeq: number, eventsMax: number) => log.readEvents(knex, "ledger", afterSeq, eventsMax);
