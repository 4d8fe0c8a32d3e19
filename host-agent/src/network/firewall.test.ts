// The firewall's pure parts: rule order, the listing parser, and the per-phone rule diff against a
// recorded iptables (the real kernel is exercised in isolation.test.ts).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { agentv1 } from '@cphone/proto';
import pino from 'pino';
import type { CommandRunner } from './command.js';
import { isolationRules, PhoneFirewall, parseEgressListing } from './firewall.js';
import { PhoneProxy } from './proxy.js';

const LISTING = `Chain CPHONE-EGRESS (1 references)
    pkts      bytes target     prot opt in     out     source               destination
      12     5120 ACCEPT     0    --  cph0123456789ab *       10.89.0.3            0.0.0.0/0            /* cphone-device=dev-a */
       0        0 ACCEPT     all  --  cphba9876543210 *       10.89.1.2            0.0.0.0/0            /* cphone-device=dev.b_2 */
`;

describe('phone firewall', () => {
  it('reads per-phone rules with their counters', () => {
    assert.deepEqual(parseEgressListing(LISTING), [
      { packets: 12n, bytes: 5120n, bridge: 'cph0123456789ab', address: '10.89.0.3', deviceId: 'dev-a' },
      { packets: 0n, bytes: 0n, bridge: 'cphba9876543210', address: '10.89.1.2', deviceId: 'dev.b_2' },
    ]);
  });

  it('lets the proxy through before the private ranges are refused, and drops unknown sources last', () => {
    const rules = isolationRules('cph', { host: '10.0.0.5', port: 3128 }).map((r) => r.join(' '));
    const proxy = rules.indexOf('-d 10.0.0.5/32 -p tcp --dport 3128 -j CPHONE-EGRESS');
    const privateRange = rules.findIndex((r) => r.startsWith('-d 10.0.0.0/8 -j REJECT'));
    const metadata = rules.findIndex((r) => r.startsWith('-d 169.254.0.0/16 -j REJECT'));
    assert.ok(proxy >= 0 && proxy < privateRange && metadata > 0, rules.join('\n'));
    assert.deepEqual(rules.slice(-2), ['-j CPHONE-EGRESS', '-j DROP']);
    assert.equal(isolationRules('cph').filter((r) => r.includes('--dport')).length, 0);
  });

  it('adds rules for new phones and deletes those of gone ones, returning their last counters', async () => {
    const calls: string[] = [];
    const run: CommandRunner = async (argv) => {
      calls.push(argv.join(' '));
      return { code: 0, stdout: argv.includes('-L') ? LISTING : '', stderr: '' };
    };
    const firewall = new PhoneFirewall({ bridgePrefix: 'cph', run });
    const removed = await firewall.sync([
      { deviceId: 'dev-a', address: '10.89.0.3', bridge: 'cph0123456789ab' },
      { deviceId: 'dev-c', address: '10.89.2.7', bridge: 'cph00000000000c' },
    ]);
    assert.deepEqual(
      removed.map((r) => [r.deviceId, r.bytes]),
      [['dev.b_2', 0n]],
    );
    assert.deepEqual(calls.slice(1), [
      'iptables -w 5 -D CPHONE-EGRESS -s 10.89.1.2/32 -i cphba9876543210 -m comment --comment cphone-device=dev.b_2 -j ACCEPT',
      'iptables -w 5 -A CPHONE-EGRESS -s 10.89.2.7/32 -i cph00000000000c -m comment --comment cphone-device=dev-c -j ACCEPT',
    ]);
    assert.throws(() => new PhoneFirewall({ bridgePrefix: 'Bad-Prefix' }), /bridgePrefix "Bad-Prefix"/);
  });

  it('tells each phone reaching RUNNING the proxy once, over its ADB endpoint', async () => {
    const shells: string[] = [];
    const proxy = new PhoneProxy({
      proxy: { host: '10.0.0.5', port: 3128 },
      endpoint: (id) => (id === 'dev-a' ? { host: '127.0.0.1', port: 40001 } : undefined),
      shell: async (endpoint, command) => {
        shells.push(`${endpoint.port} ${command}`);
        return { exitCode: 0 };
      },
      logger: pino({ level: 'silent' }),
    });
    const status = (state: agentv1.DeviceState) => ({ deviceId: 'dev-a', state }) as agentv1.ObservedDevice;
    assert.equal(await proxy.deviceChanged(status(agentv1.DeviceState.BOOTING)), undefined);
    assert.equal(await proxy.deviceChanged(status(agentv1.DeviceState.RUNNING)), true);
    assert.equal(proxy.deviceChanged(status(agentv1.DeviceState.RUNNING)), undefined, 'once per run');
    proxy.deviceChanged(status(agentv1.DeviceState.STOPPED));
    assert.equal(
      await proxy.deviceChanged(status(agentv1.DeviceState.RUNNING)),
      true,
      'again after a restart',
    );
    assert.deepEqual(shells, [
      '40001 settings put global http_proxy 10.0.0.5:3128',
      '40001 settings put global http_proxy 10.0.0.5:3128',
    ]);
  });
});
