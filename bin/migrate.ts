/** `npm run migrate [-- --down]`: applies (or rolls back) every domain's migrations. */
import { loadConfig } from "../config/index.ts";
import { acquireDb, releaseDb } from "../mixins/db.ts";
import { MIGRATIONS, migrateLatest, migrateRollback } from "../migrations/index.ts";

const config = loadConfig();
const down = process.argv.includes("--down");
const { knex } = acquireDb(config);
try {
	for (const schema of Object.keys(MIGRATIONS)) {
		if (down) await migrateRollback(knex, schema, true);
		else await migrateLatest(knex, schema);
		process.stdout.write(`${schema}: ${down ? "rolled back" : "up to date"}\n`);
	}
} finally {
	await releaseDb(config);
}
