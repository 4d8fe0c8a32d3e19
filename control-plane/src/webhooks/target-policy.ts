// Where webhooks may point (SSRF defence). A target's host must not be, or resolve to, an address
// inside the platform's own networks: private, loopback, link-local (cloud metadata at
// 169.254.169.254), unique-local, multicast, unspecified or reserved. The check runs when a URL is
// set and again before every attempt; the attempt then connects to the very address checked, so a
// name that resolves elsewhere the second time (DNS rebinding) gains nothing. An allow-list admits
// chosen hosts (by name, address or CIDR) for tests and the embedded platform, and only those may
// use http://.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';

export interface ResolvedTarget {
  readonly url: URL;
  /** The checked address to connect to. */
  readonly address: string;
  readonly family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  BLOCKED.addSubnet(net, prefix, 'ipv6');

/** An IPv4 address written as IPv6 (::ffff:a.b.c.d or ::ffff:xxxx:xxxx) judged as the IPv4 one. */
function unmapped(address: string): string {
  const lower = address.toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1]) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] && hex[2]) {
    const hi = Number.parseInt(hex[1], 16);
    const lo = Number.parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return address;
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 4 ? 'ipv4' : 'ipv6';
}

/** Why the address may not be a webhook target, or undefined when it may. */
export function blockedAddress(address: string): string | undefined {
  const plain = unmapped(address);
  if (isIP(plain) === 0) return 'is not an IP address';
  return BLOCKED.check(plain, familyOf(plain))
    ? 'is a private, loopback, link-local, multicast or reserved address'
    : undefined;
}

/** The allow-list: host names, addresses and CIDRs (config CPHONE_WEBHOOK_ALLOW_HOSTS). */
export class TargetPolicy {
  readonly #names = new Set<string>();
  readonly #addresses = new BlockList();
  readonly #resolve: Resolver;

  constructor(allow: readonly string[], resolve: Resolver = systemResolver) {
    this.#resolve = resolve;
    for (const entry of allow) {
      const [net = '', bits] = entry.split('/');
      const address = net.replace(/^\[|\]$/g, '');
      if (isIP(address) === 0) {
        if (bits !== undefined)
          throw new InvalidArgumentError('CPHONE_WEBHOOK_ALLOW_HOSTS', entry, 'is not a CIDR');
        this.#names.add(entry.toLowerCase());
        continue;
      }
      const family = familyOf(address);
      const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128))
        throw new InvalidArgumentError('CPHONE_WEBHOOK_ALLOW_HOSTS', entry, 'has a bad prefix length');
      this.#addresses.addSubnet(address, prefix, family);
    }
  }

  #allowedAddress(address: string): boolean {
    const plain = unmapped(address);
    return this.#addresses.check(plain, familyOf(plain));
  }

  /**
   * The URL parsed, its host resolved and every address checked; throws INVALID_ARGUMENT naming
   * `field` and the URL. Returns the address to connect to.
   */
  async check(raw: string, field = 'url'): Promise<ResolvedTarget> {
    const refuse = (reason: string) => new InvalidArgumentError(field, raw, reason);
    if (raw.length > 2048) throw refuse('must be at most 2048 characters');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw refuse('is not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refuse('must be an https:// URL');
    if (url.username || url.password) throw refuse('must not carry a user name or password');
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (!host) throw refuse('has no host');
    const literal = isIP(host) !== 0;
    let addresses: { address: string; family: number }[];
    if (literal) addresses = [{ address: host, family: isIP(host) }];
    else {
      try {
        addresses = await this.#resolve(host);
      } catch (error) {
        throw refuse(`its host ${JSON.stringify(host)} does not resolve (${(error as Error).message})`);
      }
      if (addresses.length === 0) throw refuse(`its host ${JSON.stringify(host)} does not resolve`);
    }
    const byName = !literal && this.#names.has(host);
    let allowed = byName || (literal && this.#names.has(host));
    for (const { address } of addresses) {
      if (byName || this.#allowedAddress(address)) continue;
      const blocked = blockedAddress(address);
      if (blocked) {
        throw refuse(
          literal
            ? `its host ${blocked} (allow it with CPHONE_WEBHOOK_ALLOW_HOSTS)`
            : `its host ${JSON.stringify(host)} resolves to ${address}, which ${blocked}`,
        );
      }
    }
    allowed ||= addresses.every(({ address }) => this.#allowedAddress(address));
    if (url.protocol === 'http:' && !allowed) throw refuse('must be an https:// URL');
    const first = addresses[0] as { address: string; family: number };
    return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
  }
}
