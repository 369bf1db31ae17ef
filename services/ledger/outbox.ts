/**
 * The ledger's outbox is the durable event log of money (mixins/event-log.ts): written in
 * the batch transaction, pushed live at commit, positioned by the relay (ledger.service.ts),
 * read by consumers.
 */
import type { Knex } from "knex";
import * as log from "../../mixins/event-log.ts";
import { settleBalanceEvents } from "./rules.ts";
import { driftsFromRow } from "./store.ts";

export const outboxLag = (knex: Knex) => log.outboxLag(knex, "ledger");

/**
 * A row's events as consumers read them: a row written with its batch's write keeps the
 * accounts' drifts beside its events (migration ledger/015), and its balance events are
 * settled with them here, as the node settled those it pushed live.
 */
const settleRow: log.SettleRow = (events, drifts) => settleBalanceEvents(events, driftsFromRow(drifts));

export const readEvents = (knex: Knex, afterSeq: number, eventsMax: number) => log.readEvents(knex, "ledger", afterSeq, eventsMax, settleRow);
