// TLS material for the agent link. The embedded default makes its own certificate authority and
// server certificate at first start (production brings the operator's); tests make theirs the same
// way. @peculiar/x509 builds the certificates over WebCrypto, which Node cannot do on its own.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PemKeyPair {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

/** Makes a self-signed certificate authority, valid for `days` (default ten years). */
export async function createCertificateAuthority(
  commonName = 'cphone agent CA',
  days = 3650,
): Promise<PemKeyPair> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + days * 86_400_000),
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey as unknown as CryptoKey) };
}

export interface IssueOptions {
  commonName: string;
  /** DNS names for the subjectAltName (default: localhost). */
  dnsNames?: string[];
  /** IP addresses for the subjectAltName (default: 127.0.0.1 and ::1). */
  ips?: string[];
  /** Validity in days (default 825). */
  days?: number;
}

/** Issues a server certificate signed by the CA. */
export async function issueServerCertificate(ca: PemKeyPair, options: IssueOptions): Promise<PemKeyPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKeyDer = Buffer.from(ca.key.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const caKey = await webcrypto.subtle.importKey('pkcs8', caKeyDer, algorithm, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const names = [
    ...(options.dnsNames ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? ['127.0.0.1', '::1']).map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${options.commonName}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (options.days ?? 825) * 86_400_000),
    signingKey: caKey as unknown as CryptoKey,
    publicKey: keys.publicKey as unknown as CryptoKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  });
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey as unknown as CryptoKey) };
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
  // mode applies only when the file is created; a leftover file must not stay readable.
  await chmod(path, 0o600);
}

/** A server certificate and the CA that signed it, as PEM. */
export interface KeptCertificates extends PemKeyPair {
  readonly caPem: string;
}

/**
 * The generated TLS material a server keeps in `dir` (ca.pem, ca-key.pem, server.pem,
 * server-key.pem; keys 0600): a CA made on first use and kept, so whoever trusts it keeps trusting
 * the server, and a server certificate issued by it, issued again when `leaf` names other names.
 */
export async function keptCertificates(
  dir: string,
  options: { caName: string; leaf: IssueOptions },
): Promise<KeptCertificates> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server-key.pem'),
    names: join(dir, 'server-names.json'),
  };
  let [caPem, caKey, cert, key, names] = await Promise.all(
    [paths.ca, paths.caKey, paths.cert, paths.key, paths.names].map(readIfExists),
  );
  if (!caPem || !caKey) {
    const ca = await createCertificateAuthority(options.caName);
    caPem = ca.cert;
    caKey = ca.key;
    await writeSecret(paths.caKey, caKey);
    await writeFile(paths.ca, caPem);
    cert = undefined;
  }
  const wanted = JSON.stringify({ dnsNames: options.leaf.dnsNames, ips: options.leaf.ips });
  if (!cert || !key || (names !== undefined && names !== wanted)) {
    const leaf = await issueServerCertificate({ cert: caPem, key: caKey }, options.leaf);
    cert = leaf.cert;
    key = leaf.key;
    await writeSecret(paths.key, key);
    await writeFile(paths.cert, cert);
  }
  await writeFile(paths.names, wanted);
  return { cert, key, caPem };
}
