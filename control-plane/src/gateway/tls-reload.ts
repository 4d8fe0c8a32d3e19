// The gateway's server certificate, reloaded from the operator's files while the gateway runs, so
// a certificate (or CA) rotation drops no agent stream: a new pair is checked (it parses, the key
// is the certificate's, the chain's leaf is current) and then serves every new TLS handshake;
// connections already up keep the session they negotiated. A pair that fails the check (a
// rotation caught half written, a wrong key) is logged and the last good one kept.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import type { GatewayTls } from './tls.js';

type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | undefined;
}

/**
 * Checks that `key` belongs to the first certificate of `cert` and, given `now`, that the
 * certificate is valid then.
 */
export function checkKeyPair(cert: string, key: string, now?: Date): void {
  const leaf = new X509Certificate(cert);
  if (!leaf.checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`the key is not the certificate's (${leaf.subject.replace(/\n/g, ', ')})`);
  }
  if (now && (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo))) {
    throw new Error(`the certificate is valid from ${leaf.validFrom} to ${leaf.validTo}, not now`);
  }
}

/** The serial number and validity of a PEM certificate's leaf, for logs and tests. */
export function describeCertificate(cert: string): {
  serial: string;
  validTo: string;
  fingerprint256: string;
} {
  const leaf = new X509Certificate(cert);
  return { serial: leaf.serialNumber, validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 };
}

/**
 * A grpc-js certificate provider over the operator's files: `reload()` reads them (on SIGHUP, and
 * every `intervalMs`), and a changed, valid pair goes to the server's credentials.
 */
export class ReloadingTls implements grpc.experimental.CertificateProvider {
  readonly #files: TlsFiles;
  readonly #log: Logger;
  readonly #listeners = new Set<IdentityListener>();
  #current: GatewayTls;
  #timer: NodeJS.Timeout | undefined;
  #reloading: Promise<boolean> | undefined;

  constructor(files: TlsFiles, initial: GatewayTls, logger: Logger, intervalMs: number) {
    this.#files = files;
    this.#log = logger;
    try {
      checkKeyPair(initial.cert, initial.key);
    } catch (err) {
      throw new InvalidArgumentError('CPHONE_TLS_KEY', files.keyFile, (err as Error).message);
    }
    this.#current = initial;
    if (intervalMs > 0) {
      this.#timer = setInterval(() => void this.reload(), intervalMs);
      this.#timer.unref();
    }
  }

  /** The material new handshakes get. */
  get current(): GatewayTls {
    return this.#current;
  }

  /**
   * Reads the files again; true when a changed, valid certificate or CA bundle was taken. Never
   * throws: a failed read or check is logged and the current material kept.
   */
  reload(): Promise<boolean> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<boolean> {
    let next: GatewayTls;
    try {
      const [cert, key, caPem] = await Promise.all([
        readFile(this.#files.certFile, 'utf8'),
        readFile(this.#files.keyFile, 'utf8'),
        this.#files.caFile ? readFile(this.#files.caFile, 'utf8') : undefined,
      ]);
      next = { cert, key, caPem };
      checkKeyPair(cert, key, new Date());
      if (caPem !== undefined) new X509Certificate(caPem);
    } catch (err) {
      this.#log.warn(
        { err, certFile: this.#files.certFile, keyFile: this.#files.keyFile },
        'gateway TLS files not reloaded; the current certificate stays in use',
      );
      return false;
    }
    const previous = this.#current;
    if (next.cert === previous.cert && next.key === previous.key && next.caPem === previous.caPem)
      return false;
    this.#current = next;
    if (next.cert !== previous.cert || next.key !== previous.key) {
      const update = { certificate: Buffer.from(next.cert), privateKey: Buffer.from(next.key) };
      for (const listener of this.#listeners) listener(update);
    }
    this.#log.info(
      { certificate: describeCertificate(next.cert), caChanged: next.caPem !== previous.caPem },
      'gateway TLS reloaded: new handshakes use it, connected agents keep their streams',
    );
    return true;
  }

  close(): void {
    clearInterval(this.#timer);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.add(listener);
    const { cert, key } = this.#current;
    // After the caller has registered its own watcher (grpc-js adds it right after this call).
    process.nextTick(() => {
      if (this.#listeners.has(listener))
        listener({ certificate: Buffer.from(cert), privateKey: Buffer.from(key) });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.delete(listener);
  }

  // Agents present no client certificate (they authenticate with their credential in Hello).
  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
}

/** Server credentials that follow `provider`: each new handshake uses its current certificate. */
export function reloadingServerCredentials(provider: ReloadingTls): grpc.ServerCredentials {
  // grpc-js passes its first argument on as the identity provider and the second as the CA provider
  // (the declaration names them the other way round): no CA, no client certificates asked for.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, null, false);
}
