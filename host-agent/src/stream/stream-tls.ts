// TLS material of the agent's public stream endpoint (signaling WebSocket and test page). Production
// passes the operator's certificate and key (CPHONE_STREAM_TLS_CERT/_KEY). Without them the agent
// makes its own CA and a certificate for the names browsers use to reach it, under
// <data dir>/stream-tls, once; a browser that imports ca.pem trusts the endpoint from then on. The
// certificate is reissued when those names change (a new public URL or announced address).
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, issueServerCertificate } from '@cphone/proto';
import type { StreamConfig } from '../config.js';

export interface StreamTls {
  readonly cert: string;
  readonly key: string;
  /** The generated CA (undefined with the operator's own certificate). */
  readonly caPem: string | undefined;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writeSecret(path: string, contents: string): Promise<void> {
  await writeFile(path, contents, { mode: 0o600 });
  await chmod(path, 0o600);
}

/** The DNS names and IPs the generated certificate covers. */
export function streamCertificateNames(
  stream: StreamConfig,
  host: string = hostname(),
): {
  dnsNames: string[];
  ips: string[];
} {
  const dnsNames = new Set(['localhost', host]);
  const ips = new Set(['127.0.0.1', '::1']);
  const add = (name: string | undefined) => {
    if (!name) return;
    const bare = name.replace(/^\[|\]$/g, '');
    if (isIP(bare)) ips.add(bare);
    else dnsNames.add(bare);
  };
  if (stream.publicUrl !== undefined) add(new URL(stream.publicUrl).hostname);
  add(stream.rtcAnnouncedAddress);
  if (stream.bind !== '0.0.0.0' && stream.bind !== '::') add(stream.bind);
  return { dnsNames: [...dnsNames].sort(), ips: [...ips].sort() };
}

/** Loads the operator's files, or makes (first start) and reuses the generated CA and certificate. */
export async function loadStreamTls(stream: StreamConfig, dataDir: string): Promise<StreamTls> {
  if (stream.tlsCertFile !== undefined && stream.tlsKeyFile !== undefined) {
    const [cert, key] = await Promise.all([
      readFile(stream.tlsCertFile, 'utf8'),
      readFile(stream.tlsKeyFile, 'utf8'),
    ]);
    return { cert, key, caPem: undefined };
  }
  const dir = join(dataDir, 'stream-tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
    names: join(dir, 'names.json'),
  };
  let [caPem, caKey, cert, key, names] = await Promise.all(
    [paths.ca, paths.caKey, paths.cert, paths.key, paths.names].map(readIfExists),
  );
  if (!caPem || !caKey) {
    const ca = await createCertificateAuthority('cphone stream endpoint CA');
    caPem = ca.cert;
    caKey = ca.key;
    await writeSecret(paths.caKey, caKey);
    await writeFile(paths.ca, caPem);
    cert = undefined;
  }
  const wanted = streamCertificateNames(stream);
  if (!cert || !key || names !== JSON.stringify(wanted)) {
    const leaf = await issueServerCertificate(
      { cert: caPem, key: caKey },
      { commonName: 'cphone stream endpoint', ...wanted },
    );
    cert = leaf.cert;
    key = leaf.key;
    await writeSecret(paths.key, key);
    await writeFile(paths.cert, cert);
    await writeFile(paths.names, JSON.stringify(wanted));
  }
  return { cert, key, caPem };
}
