// The address of the client behind a call. The socket's peer, unless that peer is one of the
// configured trusted proxies (a load balancer, an ingress): then the client is the right-most
// address of X-Forwarded-For that is not itself a trusted proxy. Anyone can send the header, so it
// is read only from a peer the operator vouched for, and only as far as the proxies it lists.
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { CLIENT_ADDRESS_HEADER } from '../users/sessions.js';

const MAX_FORWARDED_HOPS = 32;

/** `::ffff:10.0.0.1` is the IPv4 address 10.0.0.1. */
function plain(address: string): string {
  const trimmed = address.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(trimmed) ? trimmed.slice(7) : trimmed;
}

export class TrustedProxies {
  readonly #list = new BlockList();
  readonly size: number;

  /** `entries`: addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`); empty trusts no proxy. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address);
      const prefix = bits === undefined ? undefined : Number(bits);
      if (
        family === 0 ||
        (prefix !== undefined &&
          (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)))
      ) {
        throw new InvalidArgumentError(
          'CPHONE_TRUSTED_PROXIES',
          entry,
          'must be an IP address or CIDR range',
        );
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, prefix, type);
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The client's address for a call's headers (rpc.ts puts the socket's peer in CLIENT_ADDRESS_HEADER). */
export function clientAddress(header: Headers, trusted: TrustedProxies): string {
  let address = plain(header.get(CLIENT_ADDRESS_HEADER) ?? '');
  if (trusted.size === 0 || !trusted.has(address)) return address;
  const hops = (header.get('x-forwarded-for') ?? '').split(',').slice(-MAX_FORWARDED_HOPS).map(plain);
  for (let k = hops.length - 1; k >= 0; k--) {
    const hop = hops[k] ?? '';
    if (isIP(hop) === 0) break;
    address = hop;
    if (!trusted.has(hop)) break;
  }
  return address;
}
