// `get --watch`: the list once, then every change as it is seen (the API has no watch stream for
// these lists, so it polls every 2 s). A table prints the changed rows under the first header; JSON
// and YAML print each changed resource as one document (JSON: one per line). Ends on Ctrl-C.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { stringify } from 'yaml';
import { type Ctx, interrupted, sleep } from './command.js';
import { type Column, jsonOf, renderTable } from './output.js';

export async function watchList<D extends DescMessage>(
  ctx: Ctx,
  fetch: () => Promise<MessageShape<D>[]>,
  schema: D,
  columns: readonly Column<MessageShape<D>>[],
  key: (item: MessageShape<D>) => string,
  intervalMs = 2000,
): Promise<void> {
  const seen = new Map<string, string>();
  const stop = interrupted();
  let first = true;
  try {
    for (;;) {
      const items = await fetch();
      const changed = items.filter((i) => {
        const text = JSON.stringify(jsonOf(schema, i));
        if (seen.get(key(i)) === text) return false;
        seen.set(key(i), text);
        return true;
      });
      if (ctx.out.format === 'json') {
        for (const i of changed) ctx.out.write(`${JSON.stringify(jsonOf(schema, i))}\n`);
      } else if (ctx.out.format === 'yaml') {
        for (const i of changed) ctx.out.write(`---\n${stringify(jsonOf(schema, i))}`);
      } else if (ctx.out.format === 'name') {
        for (const i of changed) ctx.out.write(`${key(i)}\n`);
      } else if (changed.length || first) {
        const table = renderTable(ctx.out, columns, first ? items : changed);
        ctx.out.write(first ? table : table.slice(table.indexOf('\n') + 1));
      }
      first = false;
      if (await Promise.race([sleep(intervalMs).then(() => false), stop.promise.then(() => true)])) return;
    }
  } finally {
    stop.dispose();
  }
}
