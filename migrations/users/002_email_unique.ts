import type { Knex } from "knex";
import { runStatements } from "../statements.ts";

/**
 * One profile per e-mail address, found by an index: a P2P payment to an e-mail looks its
 * recipient up here, and an address shared by two profiles would make the recipient
 * ambiguous. Registration already keeps addresses unique (auth.credentials); this holds it
 * for every writer. On a database that has duplicates the migration fails and names one,
 * rather than picking one.
 */
const UP = [`CREATE UNIQUE INDEX profiles_email_key ON users.profiles (email)`];
const DOWN = [`DROP INDEX users.profiles_email_key`];

export const up = (knex: Knex): Promise<void> => runStatements(knex, UP);
export const down = (knex: Knex): Promise<void> => runStatements(knex, DOWN);
