// What the gateway checks of a Hello before it touches the store: the protocol version, and that the
// identity fields are something a credential lookup can take.
import { agentv1 } from '@cphone/proto';
import { FailedPreconditionError, UnauthenticatedError } from '../errors.js';
import type { HelloFacts } from '../store/hosts.js';

export const MIN_PROTOCOL_VERSION = agentv1.ProtocolVersion.V1;
export const MAX_PROTOCOL_VERSION = agentv1.ProtocolVersion.V1;

export function checkProtocolVersion(version: number): void {
  if (version < MIN_PROTOCOL_VERSION || version > MAX_PROTOCOL_VERSION) {
    throw new FailedPreconditionError(
      `protocol_version ${version} is not supported: this control plane accepts ${MIN_PROTOCOL_VERSION}..${MAX_PROTOCOL_VERSION}`,
    );
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A host id or credential no store row can match (empty, huge, control characters) is refused here. */
export function checkIdentity(hello: agentv1.Hello): void {
  for (const value of [hello.hostId, hello.credential]) {
    if (value.length === 0 || value.length > 512 || CONTROL.test(value)) {
      throw new UnauthenticatedError('malformed host id or credential');
    }
  }
}

const MIB = 1024n * 1024n;
const GIB = MIB * 1024n;

/** HostLoad as protobuf JSON (camelCase) with plain numbers. */
export function loadJson(load: agentv1.HostLoad | undefined): Record<string, number> {
  if (!load) return {};
  return {
    cpuPercent: load.cpuPercent,
    loadAverage1m: load.loadAverage1m,
    memoryUsedBytes: Number(load.memoryUsedBytes),
    memoryTotalBytes: Number(load.memoryTotalBytes),
    diskUsedBytes: Number(load.diskUsedBytes),
    diskTotalBytes: Number(load.diskTotalBytes),
    runningDevices: load.runningDevices,
  };
}

/**
 * The agent's stream endpoint as viewers will be sent to it: a ws:// or wss:// URL of at most 512
 * characters; anything else is dropped (the host then serves no streams) rather than handed out.
 */
export function streamEndpointOf(value: string): string {
  if (!value || value.length > 512) return '';
  try {
    const url = new URL(value);
    return url.protocol === 'wss:' || url.protocol === 'ws:' ? url.href : '';
  } catch {
    return '';
  }
}

/** What a Hello says of the host, in the store's units (a capacity of zero keeps the enrolled one). */
export function helloFacts(hello: agentv1.Hello): HelloFacts {
  const capacity = hello.capacity;
  return {
    agentVersion: hello.agentVersion,
    protocolVersion: hello.protocolVersion,
    streamEndpoint: streamEndpointOf(hello.streamEndpoint),
    runtimeKind: hello.runtimeKind,
    hostname: hello.hostname,
    kernelVersion: hello.kernelVersion,
    agentInstanceId: hello.agentInstanceId,
    agentLabels: hello.labels,
    arch: hello.arch,
    capacity:
      capacity && capacity.vcpuMillicores > 0n
        ? {
            vcpuMillicores: Number(capacity.vcpuMillicores),
            memoryMib: Number(capacity.memoryBytes / MIB),
            storageGib: Number(capacity.storageBytes / GIB),
            devices: capacity.devices,
          }
        : undefined,
  };
}
