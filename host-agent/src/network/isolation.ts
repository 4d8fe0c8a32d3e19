// Keeps the phone firewall true to what runs: installs the agent's chains on start, re-checks them
// on a timer (other software rewrites FORWARD and INPUT at will), keeps one egress rule per running
// phone (synced at once when a phone starts or stops, since a phone without its rule is cut off:
// the chains fail closed), prunes tenant networks nobody uses, and meters each phone's egress from
// its rule's byte counter.
import type { Logger } from 'pino';
import type { RuntimeEvent } from '../runtime/index.js';
import type { EgressRule, FirewalledPhone, PhoneFirewall } from './firewall.js';

export interface NetworkIsolationOptions {
  readonly firewall: PhoneFirewall;
  /** The running phones with their addresses (the docker runtime's list()). */
  readonly phones: () => Promise<readonly FirewalledPhone[]>;
  /** Removes tenant networks no phone uses any more. */
  readonly pruneNetworks?: () => Promise<unknown>;
  /** Phone lifecycle events, to sync at once instead of at the next re-check. */
  readonly events?: (signal: AbortSignal) => AsyncIterable<RuntimeEvent>;
  /** How often the chains are checked and the rules synced (ms). */
  readonly recheckMs: number;
  readonly logger: Logger;
}

const ruleKey = (r: FirewalledPhone) => `${r.deviceId} ${r.address} ${r.bridge}`;

export class NetworkIsolation {
  readonly #options: NetworkIsolationOptions;
  readonly #log: Logger;
  /** Last counter value seen per rule. */
  readonly #seen = new Map<string, bigint>();
  /** Egress bytes counted but not yet taken into a usage sample, per device. */
  readonly #pending = new Map<string, bigint>();
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #checks = 0;

  constructor(options: NetworkIsolationOptions) {
    this.#options = options;
    this.#log = options.logger.child({ module: 'network-isolation' });
  }

  /**
   * Installs the chains (throws when the firewall cannot be set up), syncs the rules once (an engine
   * that does not answer yet is retried by the timer: until then phones are cut off, not open), then
   * keeps them.
   */
  async start(): Promise<void> {
    await this.#options.firewall.ensure();
    await this.recheck().catch((err) => this.#failed(err));
    this.#timer = setInterval(
      () => void this.recheck().catch((err) => this.#failed(err)),
      this.#options.recheckMs,
    );
    this.#timer.unref();
    if (this.#options.events !== undefined) void this.#follow(this.#options.events);
  }

  /** Completed re-checks so far. */
  get checks(): number {
    return this.#checks;
  }

  /** Ensures the chains, syncs the per-phone rules (metering what removed rules counted) and prunes networks. */
  recheck(): Promise<void> {
    return this.#serial(async () => {
      const { firewall } = this.#options;
      await firewall.ensure();
      const phones = await this.#options.phones();
      const rules = await firewall.egressRules();
      this.#account(rules);
      const removed = await firewall.sync(phones, rules);
      this.#account(removed);
      for (const rule of removed) this.#seen.delete(ruleKey(rule));
      if (this.#options.pruneNetworks !== undefined) await this.#options.pruneNetworks();
      this.#checks++;
    });
  }

  /** Runs `work` after every firewall operation queued before it (iptables calls never overlap). */
  #serial(work: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(work);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * The egress bytes of these devices since they were last taken (the usage sampler takes them once
   * per interval). Bytes of devices not asked for stay pending for a later sample.
   */
  async takeEgress(deviceIds: readonly string[]): Promise<Map<string, bigint>> {
    try {
      await this.#serial(async () => this.#account(await this.#options.firewall.egressRules()));
    } catch (err) {
      this.#failed(err); // what was counted before still goes out
    }
    const out = new Map<string, bigint>();
    for (const id of deviceIds) {
      const bytes = this.#pending.get(id);
      if (bytes === undefined) continue;
      out.set(id, bytes);
      this.#pending.delete(id);
    }
    return out;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    await this.#chain;
  }

  #account(rules: readonly EgressRule[]): void {
    for (const rule of rules) {
      const key = ruleKey(rule);
      const last = this.#seen.get(key) ?? 0n;
      // A counter below the last value means the rule was made anew (by an operator, a reboot).
      const delta = rule.bytes >= last ? rule.bytes - last : rule.bytes;
      this.#seen.set(key, rule.bytes);
      if (delta > 0n) this.#pending.set(rule.deviceId, (this.#pending.get(rule.deviceId) ?? 0n) + delta);
    }
  }

  #failed(err: unknown): void {
    this.#log.error({ err }, 'phone firewall check failed; retrying at the next check');
  }

  async #follow(events: (signal: AbortSignal) => AsyncIterable<RuntimeEvent>): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        for await (const event of events(signal)) {
          if (
            event.type === 'start' ||
            event.type === 'die' ||
            event.type === 'stop' ||
            event.type === 'remove'
          ) {
            this.#recheckSoon();
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn({ err }, 'runtime events dropped; phones are synced by the timer meanwhile');
      }
      // Subscribe again after a pause (the timer keeps the rules right meanwhile).
      if (!signal.aborted)
        await new Promise((r) => setTimeout(r, Math.min(5000, this.#options.recheckMs)).unref());
    }
  }

  #recheckSoon(): void {
    if (this.#soon !== undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.recheck().catch((err) => this.#failed(err));
    }, 100);
    this.#soon.unref();
  }
}

/** The runtime's running phones that have an address, as the firewall needs them. */
export function firewalledPhones(
  devices: readonly { deviceId: string; state: string; network?: { address: string; bridge: string } }[],
): FirewalledPhone[] {
  return devices.flatMap((d) =>
    d.state === 'running' && d.network !== undefined
      ? [{ deviceId: d.deviceId, address: d.network.address, bridge: d.network.bridge }]
      : [],
  );
}
