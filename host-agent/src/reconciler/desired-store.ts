import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, fromJsonString, toJsonString } from '@bufbuild/protobuf';
import { agentv1 } from '@cphone/proto';
import { atomicWrite } from '../spool/index.js';

/**
 * The last desired set the agent received, kept in the data dir. It lets a restarted agent keep
 * enforcing restart policies while the control plane is unreachable, and tells the control plane
 * (Hello.desired_revision) where the agent stands.
 */
export class DesiredStore {
  readonly #path: string;

  constructor(dataDir: string) {
    this.#path = join(dataDir, 'desired-devices.json');
  }

  async load(): Promise<agentv1.DesiredDevices | undefined> {
    const text = await readFile(this.#path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    // A file from an older agent may hold fields this one no longer has (the spec's image_id).
    return text === undefined
      ? undefined
      : fromJsonString(agentv1.DesiredDevicesSchema, text, { ignoreUnknownFields: true });
  }

  async save(revision: bigint, devices: Iterable<agentv1.DesiredDevice>): Promise<void> {
    const message = create(agentv1.DesiredDevicesSchema, { revision, devices: [...devices] });
    await atomicWrite(this.#path, toJsonString(agentv1.DesiredDevicesSchema, message));
  }
}
