// TLS material of the agent's public stream endpoint (signaling WebSocket and test page). Production
// passes the operator's certificate and key (CPHONE_STREAM_TLS_CERT/_KEY). Without them the agent
// makes its own CA and a certificate for the names browsers use to reach it, under
// <data dir>/stream-tls, once; a browser that imports ca.pem trusts the endpoint from then on. The
// certificate is reissued when those names change (a new public URL or announced address).
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { keptCertificates } from '@cphone/proto';
import type { StreamConfig } from '../config.js';

export interface StreamTls {
  readonly cert: string;
  readonly key: string;
  /** The generated CA (undefined with the operator's own certificate). */
  readonly caPem: string | undefined;
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
  return keptCertificates(join(dataDir, 'stream-tls'), {
    caName: 'cphone stream endpoint CA',
    leaf: { commonName: 'cphone stream endpoint', ...streamCertificateNames(stream) },
  });
}
