// TLS material of the agent gateway. Production passes the operator's certificate and key (and the
// CA agents should trust); the embedded default makes its own CA and server certificate under
// <dataDir>/tls at the first start and reuses them afterwards, so enrolled agents keep trusting it.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { keptCertificates } from '@cphone/proto';
import type { ControlPlaneConfig } from '../config.js';
import { InvalidArgumentError } from '../errors.js';

export interface GatewayTls {
  /** PEM certificate chain the gateway serves. */
  cert: string;
  /** PEM private key. */
  key: string;
  /** PEM CA certificate agents trust; undefined when the operator gave a cert without a CA file. */
  caPem: string | undefined;
}

type TlsConfig = Pick<ControlPlaneConfig, 'dataDir' | 'tlsCertFile' | 'tlsKeyFile' | 'tlsCaFile'>;

/** The generated material's folder for the embedded default. */
export function tlsDir(config: Pick<ControlPlaneConfig, 'dataDir'>): string {
  return join(config.dataDir, 'tls');
}

/** Loads the operator's TLS files, or makes (first start) and reuses the embedded CA and certificate. */
export async function loadGatewayTls(config: TlsConfig): Promise<GatewayTls> {
  if (config.tlsCertFile || config.tlsKeyFile) {
    if (!config.tlsCertFile || !config.tlsKeyFile) {
      const missing = config.tlsCertFile ? 'CPHONE_TLS_KEY' : 'CPHONE_TLS_CERT';
      throw new InvalidArgumentError(missing, '', 'the gateway needs both a certificate and a key file');
    }
    const [cert, key, caPem] = await Promise.all([
      readFile(config.tlsCertFile, 'utf8'),
      readFile(config.tlsKeyFile, 'utf8'),
      config.tlsCaFile ? readFile(config.tlsCaFile, 'utf8') : undefined,
    ]);
    return { cert, key, caPem };
  }
  return keptCertificates(tlsDir(config), {
    caName: 'cphone agent CA',
    leaf: { commonName: 'cphone control plane', dnsNames: ['localhost', hostname()] },
  });
}

/** The CA certificate agents should trust (generated on first use in the embedded default). */
export async function gatewayCaPem(config: TlsConfig): Promise<string | undefined> {
  return (await loadGatewayTls(config)).caPem;
}
