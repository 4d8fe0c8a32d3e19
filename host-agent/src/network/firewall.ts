// The agent's own firewall rules for phone networks (iptables; on Debian 12 that is iptables-nft, the
// same family and front end netavark writes its rules with). Phones may reach the internet and
// nothing else: not another tenant's phones, not this host (the agent's ports included), not
// private, shared (CGNAT), link-local (cloud metadata), loopback, multicast or reserved addresses.
//
// Chains (filter table), all owned by the agent and rewritten idempotently:
//   CPHONE-ISOLATION  jumped to first in FORWARD: the verdict for everything a phone sends on
//   CPHONE-INPUT      jumped to first in INPUT: phones may only answer the host, and ask DNS
//   CPHONE-EGRESS     one ACCEPT per running phone (source address + its bridge): its byte counter
//                     is the phone's egress to the internet; a source not listed is dropped
// plus, in ip6tables, CPHONE-ISOLATION and CPHONE-INPUT that drop all IPv6 from phone bridges
// (phone networks are IPv4-only; this closes the bridges' link-local IPv6 to the host).
import { type CommandRunner, mustRun, runCommand } from './command.js';

export const FORWARD_CHAIN = 'CPHONE-ISOLATION';
export const INPUT_CHAIN = 'CPHONE-INPUT';
export const EGRESS_CHAIN = 'CPHONE-EGRESS';

/**
 * Destinations no phone may reach: "this network", private (RFC 1918), shared address space
 * (RFC 6598, CGNAT), loopback, link-local (169.254.169.254, the cloud metadata address, is in it),
 * IETF protocol assignments, benchmarking, multicast and reserved (with the broadcast address).
 */
export const BLOCKED_DESTINATIONS: readonly string[] = Object.freeze([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
]);

/** A proxy phones may reach even where it sits in a blocked range (traffic to it counts as egress). */
export interface ProxyEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface FirewallOptions {
  /** Every phone bridge's name starts with this (iptables matches `<prefix>+`). */
  readonly bridgePrefix: string;
  readonly proxy?: ProxyEndpoint;
  /** Runs iptables, ip6tables and iptables-restore; default: on this host. */
  readonly run?: CommandRunner;
}

/** A running phone as the firewall sees it. */
export interface FirewalledPhone {
  readonly deviceId: string;
  /** Its IPv4 address on its bridge. */
  readonly address: string;
  /** The bridge interface of its (tenant's) network. */
  readonly bridge: string;
}

/** One per-phone rule as read back from the kernel, with its counters. */
export interface EgressRule extends FirewalledPhone {
  readonly bytes: bigint;
  readonly packets: bigint;
}

const REJECT = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
const COMMENT_PREFIX = 'cphone-device=';

/** The phone-facing rules of the isolation chain, in order (without the chain name). */
export function isolationRules(bridgePrefix: string, proxy?: ProxyEndpoint): string[][] {
  const bridges = `${bridgePrefix}+`;
  const rules: string[][] = [
    // Nothing outside reaches into a phone network (replies to what phones opened still pass).
    ['!', '-i', bridges, '-o', bridges, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'],
    // What does not come from a phone is not this chain's business.
    ['!', '-i', bridges, '-j', 'RETURN'],
    // Phone to phone across networks, whatever addresses the networks use.
    ['-o', bridges, ...REJECT],
  ];
  if (proxy !== undefined) {
    rules.push(['-d', `${proxy.host}/32`, '-p', 'tcp', '--dport', String(proxy.port), '-j', EGRESS_CHAIN]);
  }
  for (const range of BLOCKED_DESTINATIONS) rules.push(['-d', range, ...REJECT]);
  // The internet: counted per phone, accepted for known sources only.
  rules.push(['-j', EGRESS_CHAIN]);
  rules.push(['-j', 'DROP']);
  return rules;
}

/** The rules of the input chain: phones may answer the host (ADB) and ask DNS, nothing else. */
export function inputRules(bridgePrefix: string): string[][] {
  return [
    ['!', '-i', `${bridgePrefix}+`, '-j', 'RETURN'],
    ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'],
    ['-p', 'udp', '--dport', '53', '-j', 'RETURN'],
    ['-p', 'tcp', '--dport', '53', '-j', 'RETURN'],
    [...REJECT],
  ];
}

function egressRule(phone: FirewalledPhone): string[] {
  return [
    '-s',
    `${phone.address}/32`,
    '-i',
    phone.bridge,
    '-m',
    'comment',
    '--comment',
    `${COMMENT_PREFIX}${phone.deviceId}`,
    '-j',
    'ACCEPT',
  ];
}

function restoreScript(chains: Record<string, string[][]>): string {
  const lines = ['*filter'];
  for (const chain of Object.keys(chains)) lines.push(`:${chain} - [0:0]`);
  for (const [chain, rules] of Object.entries(chains)) {
    for (const rule of rules) lines.push(['-A', chain, ...rule].join(' '));
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * Parses `iptables -L CPHONE-EGRESS -n -v -x` output. Columns: pkts bytes target prot opt in out
 * source destination, then the comment as a C comment.
 */
export function parseEgressListing(text: string): EgressRule[] {
  const out: EgressRule[] = [];
  for (const line of text.split('\n')) {
    const m =
      /^\s*(\d+)\s+(\d+)\s+ACCEPT\s+\S+\s+\S+\s+(\S+)\s+\S+\s+(\d+\.\d+\.\d+\.\d+)(?:\/32)?\s+\S+\s+\/\*\s*cphone-device=(\S+)\s*\*\//.exec(
        line,
      );
    if (m === null) continue;
    out.push({
      packets: BigInt(m[1] as string),
      bytes: BigInt(m[2] as string),
      bridge: m[3] as string,
      address: m[4] as string,
      deviceId: m[5] as string,
    });
  }
  return out;
}

const key = (p: FirewalledPhone) => `${p.deviceId} ${p.address} ${p.bridge}`;

/** Installs, checks and updates the agent's chains. Every method is idempotent. */
export class PhoneFirewall {
  readonly #prefix: string;
  readonly #proxy: ProxyEndpoint | undefined;
  readonly #run: CommandRunner;

  constructor(options: FirewallOptions) {
    if (!/^[a-z][a-z0-9]{0,5}$/.test(options.bridgePrefix)) {
      throw new Error(
        `invalid bridgePrefix ${JSON.stringify(options.bridgePrefix)}: 1-6 lower-case letters or digits, starting with a letter`,
      );
    }
    this.#prefix = options.bridgePrefix;
    this.#proxy = options.proxy;
    this.#run = options.run ?? runCommand;
  }

  /**
   * Writes the isolation and input chains atomically (iptables-restore --noflush replaces exactly
   * these chains), creates the egress chain if missing (its per-phone rules and counters stay), and
   * makes the jumps to them the first rules of FORWARD and INPUT: other software (netavark, Docker)
   * adds its own rules to those chains at any time, and a rule of theirs ahead of ours could accept
   * phone traffic first. Safe to call as often as wanted; the agent calls it on start and on every
   * re-check.
   */
  async ensure(): Promise<void> {
    await this.#ensureChain('iptables', EGRESS_CHAIN);
    await mustRun(
      this.#run,
      ['iptables-restore', '-w', '5', '--noflush'],
      restoreScript({
        [FORWARD_CHAIN]: isolationRules(this.#prefix, this.#proxy),
        [INPUT_CHAIN]: inputRules(this.#prefix),
      }),
    );
    await this.#ensureFirst('iptables', 'FORWARD', FORWARD_CHAIN);
    await this.#ensureFirst('iptables', 'INPUT', INPUT_CHAIN);
    const drop6 = [['-i', `${this.#prefix}+`, '-j', 'DROP']];
    await mustRun(
      this.#run,
      ['ip6tables-restore', '-w', '5', '--noflush'],
      restoreScript({ [FORWARD_CHAIN]: drop6, [INPUT_CHAIN]: drop6 }),
    );
    await this.#ensureFirst('ip6tables', 'FORWARD', FORWARD_CHAIN);
    await this.#ensureFirst('ip6tables', 'INPUT', INPUT_CHAIN);
  }

  /** The per-phone rules with their counters. */
  async egressRules(): Promise<EgressRule[]> {
    const text = await mustRun(this.#run, ['iptables', '-w', '5', '-L', EGRESS_CHAIN, '-n', '-v', '-x']);
    return parseEgressListing(text);
  }

  /**
   * Makes the egress chain hold exactly one rule per given phone. Rules of phones still present keep
   * their counters; returns the rules (with final counters) of phones that were removed, so their
   * last bytes can still be metered. `have` is a listing the caller just read (egressRules()), saving
   * a second one.
   */
  async sync(phones: readonly FirewalledPhone[], have?: readonly EgressRule[]): Promise<EgressRule[]> {
    const want = new Map(phones.map((p) => [key(p), p]));
    have ??= await this.egressRules();
    const removed: EgressRule[] = [];
    for (const rule of have) {
      if (want.delete(key(rule))) continue;
      const result = await this.#run(['iptables', '-w', '5', '-D', EGRESS_CHAIN, ...egressRule(rule)]);
      if (result.code === 0) removed.push(rule);
    }
    for (const phone of want.values()) {
      await mustRun(this.#run, ['iptables', '-w', '5', '-A', EGRESS_CHAIN, ...egressRule(phone)]);
    }
    return removed;
  }

  async #ensureChain(tool: string, chain: string): Promise<void> {
    if ((await this.#run([tool, '-w', '5', '-S', chain])).code === 0) return;
    const made = await this.#run([tool, '-w', '5', '-N', chain]);
    // A concurrent caller may have made it in between.
    if (made.code !== 0 && (await this.#run([tool, '-w', '5', '-S', chain])).code !== 0) {
      throw new Error(`${tool} -N ${chain} failed: ${made.stderr.trim()}`);
    }
  }

  async #ensureFirst(tool: string, parent: string, chain: string): Promise<void> {
    const listing = await mustRun(this.#run, [tool, '-w', '5', '-S', parent]);
    const rules = listing.split('\n').filter((l) => l.startsWith(`-A ${parent} `));
    const ours = `-A ${parent} -j ${chain}`;
    if (rules[0] === ours && rules.filter((r) => r === ours).length === 1) return;
    while ((await this.#run([tool, '-w', '5', '-D', parent, '-j', chain])).code === 0) {}
    await mustRun(this.#run, [tool, '-w', '5', '-I', parent, '1', '-j', chain]);
  }
}
