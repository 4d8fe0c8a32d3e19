// Webhook signing secrets: made as `whsec_<base64 of 24 random bytes>`, kept encrypted at rest
// (AES-256-GCM under the config's keys, bound to the webhook's id), and used to sign deliveries the
// Standard Webhooks way.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { PageTokenKey } from '../api/pagination.js';

const PREFIX = 'whsec_';

/** A new secret, shown to the caller once. */
export function newWebhookSecret(): string {
  return `${PREFIX}${randomBytes(24).toString('base64')}`;
}

function hmacKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

/**
 * The webhook-signature header: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` for each
 * secret, space-separated.
 */
export function signatureHeader(
  secrets: readonly string[],
  eventId: string,
  timestamp: number,
  body: string,
): string {
  return secrets
    .map(
      (secret) =>
        `v1,${createHmac('sha256', hmacKey(secret)).update(`${eventId}.${timestamp}.${body}`).digest('base64')}`,
    )
    .join(' ');
}

/** Encrypts and decrypts secrets with the first key (encrypt) and any key (decrypt). */
export class SecretBox {
  readonly #keys: Map<string, Buffer>;
  readonly #current: string;

  constructor(keys: readonly PageTokenKey[]) {
    const [first] = keys;
    if (!first) throw new Error('webhook secrets need at least one key');
    this.#current = first.id;
    // The configured secret may be any length of at least 32 bytes: AES-256 takes its hash.
    this.#keys = new Map(
      keys.map((k) => [
        k.id,
        createHash('sha256').update('cphone webhook secret\0').update(k.secret).digest(),
      ]),
    );
  }

  /** `<key id>.<iv>.<ciphertext and tag>`, base64url; `context` (the webhook id) is authenticated. */
  seal(secret: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#current) as Buffer, iv);
    cipher.setAAD(Buffer.from(context));
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${this.#current}.${iv.toString('base64url')}.${sealed.toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    const [keyId = '', iv = '', data = ''] = sealed.split('.');
    const key = this.#keys.get(keyId);
    if (!key)
      throw new Error(`webhook secret sealed with key ${JSON.stringify(keyId)}, which is not configured`);
    const bytes = Buffer.from(data, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString(
      'utf8',
    );
  }
}
