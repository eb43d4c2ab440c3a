/**
 * Records a workflow's history as JSON for the replay tests:
 *   TEMPORAL_ADDRESS=127.0.0.1:7233 node bin/run-ts.js test/replay/record.ts <workflowId> <name>
 * writes test/replay/histories/<name>.json. Record one history per workflow type and path
 * (issued, rejected, retried after a crash) whenever a workflow changes on purpose.
 */
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const [workflowId, name] = process.argv.slice(2);
if (!workflowId || !name) {
  console.error('usage: record.ts <workflowId> <name>');
  process.exit(2);
}
const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
const history = await client.workflow.getHandle(workflowId).fetchHistory();
const file = fileURLToPath(new URL(`./histories/${name}.json`, import.meta.url));
await writeFile(file, historyToJSON(history) + '\n');
console.error(`wrote ${file} (${history.events?.length ?? 0} events)`);
await connection.close();
