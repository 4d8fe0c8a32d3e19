import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { runtimeEventFromEngine } from './docker-mapping.js';

const scope = { 'dev.cphone.managed': 'true', 'dev.cphone.scope': 'h1' };
const attrs = { ...scope, 'dev.cphone.device-id': 'd1' };

describe('runtimeEventFromEngine', () => {
  it('reads a Docker die event with its exit code', () => {
    const event = runtimeEventFromEngine(
      {
        Type: 'container',
        Action: 'die',
        timeNano: 1_700_000_000_000_000_000,
        Actor: { Attributes: { ...attrs, exitCode: '137' } },
      },
      scope,
    );
    assert.deepEqual(event, { type: 'die', deviceId: 'd1', at: new Date(1_700_000_000_000), exitCode: 137 });
  });

  it("maps Docker's destroy and podman's remove to remove, and podman's containerExitCode", () => {
    assert.equal(
      runtimeEventFromEngine(
        { Type: 'container', Action: 'destroy', time: 1, Actor: { Attributes: attrs } },
        scope,
      )?.type,
      'remove',
    );
    assert.equal(
      runtimeEventFromEngine(
        { Type: 'container', status: 'remove', time: 1, Actor: { Attributes: attrs } },
        scope,
      )?.type,
      'remove',
    );
    const die = runtimeEventFromEngine(
      {
        Type: 'container',
        status: 'die',
        time: 1,
        Actor: { Attributes: { ...attrs, containerExitCode: '143' } },
      },
      scope,
    );
    assert.equal(die?.exitCode, 143);
  });

  it('ignores other scopes, unlabelled containers, other object types and other actions', () => {
    const other = { ...attrs, 'dev.cphone.scope': 'h2' };
    assert.equal(
      runtimeEventFromEngine({ Type: 'container', Action: 'start', Actor: { Attributes: other } }, scope),
      undefined,
    );
    assert.equal(
      runtimeEventFromEngine({ Type: 'container', Action: 'start', Actor: { Attributes: scope } }, scope),
      undefined,
    );
    assert.equal(
      runtimeEventFromEngine({ Type: 'image', Action: 'remove', Actor: { Attributes: attrs } }, scope),
      undefined,
    );
    assert.equal(
      runtimeEventFromEngine(
        { Type: 'container', Action: 'exec_start', Actor: { Attributes: attrs } },
        scope,
      ),
      undefined,
    );
  });
});
