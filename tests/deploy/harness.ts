// Shared by the deploy suites: a fresh PostgreSQL database on the machine's server, the control
// plane's log lines, and one real API call.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The machine's PostgreSQL (DATABASE_URL names another), where each suite makes its own database. */
export const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface FreshDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

export async function freshDatabase(prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // WITH (FORCE): a control plane killed mid-test may leave sessions behind.
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

/** The JSON log lines read so far from a program's output, and the first with a given message. */
export class LogLines {
  #buffer = '';
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];

  push(chunk: string): void {
    this.#buffer += chunk;
    const parts = this.#buffer.split('\n');
    this.#buffer = parts.pop() ?? '';
    for (const line of parts) {
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not JSON: kept in raw for the failure message
      }
    }
  }

  find(msg: string): Record<string, unknown> | undefined {
    return this.lines.find((l) => l.msg === msg);
  }

  tail(n = 20): string {
    return this.raw.slice(-n).join('\n');
  }
}

/** TenantService.GetTenant for the key's own tenant, over the Connect protocol's JSON: a real call. */
export async function getOwnTenant(
  baseUrl: string,
  apiKey: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${baseUrl}/cphone.api.v1.TenantService/GetTenant`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: '{}',
  });
  return { status: res.status, body: await res.json() };
}
