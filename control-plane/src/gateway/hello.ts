// What the gateway checks of a Hello before it touches the store: the protocol version, the agent's
// release (within the supported range), and that the identity fields are something a credential
// lookup can take.
import { agentv1 } from '@cphone/proto';
import { buildInfo } from '@cphone/proto/version';
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

/** This control plane's release (embedded in the bundle; package.json when run from source). */
export const CONTROL_PLANE_VERSION: string = buildInfo().version;

interface Version {
  major: number;
  minor: number;
  patch: number;
}

/** MAJOR.MINOR.PATCH with an optional -pre-release or +build suffix; undefined for anything else. */
export function parseVersion(text: string): Version | undefined {
  const m = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+][0-9A-Za-z.+-]*)?$/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/**
 * The agent releases a control plane accepts: its own minor and the one before it (0.2.x takes
 * agents 0.1.0 to 0.2.x), so agents are upgraded after the control plane, one by one, while the
 * rest keep working. A control plane at MAJOR.0 takes its own minor and every agent of the major
 * before. Newer agents than the control plane are refused: upgrade the control plane first.
 */
export interface AgentVersionRange {
  /** Oldest accepted release, inclusive. */
  min: Version;
  /** Newest accepted major.minor (any patch). */
  max: Version;
  /** As operators read it, e.g. `0.1.0 to 0.2.x`. */
  text: string;
}

export function agentVersionRange(controlPlaneVersion: string = CONTROL_PLANE_VERSION): AgentVersionRange {
  const own = parseVersion(controlPlaneVersion);
  if (!own)
    throw new Error(
      `the control plane's own version ${JSON.stringify(controlPlaneVersion)} is not MAJOR.MINOR.PATCH`,
    );
  const min =
    own.minor > 0
      ? { major: own.major, minor: own.minor - 1, patch: 0 }
      : { major: Math.max(0, own.major - 1), minor: 0, patch: 0 };
  const max = { major: own.major, minor: own.minor, patch: 0 };
  return { min, max, text: `${min.major}.${min.minor}.0 to ${max.major}.${max.minor}.x` };
}

const compare = (a: Version, b: Version): number =>
  a.major - b.major || a.minor - b.minor || a.patch - b.patch;

/** Refuses (FAILED_PRECONDITION, naming the version and the range) an agent release outside the range. */
export function checkAgentVersion(
  agentVersion: string,
  controlPlaneVersion: string = CONTROL_PLANE_VERSION,
): void {
  const range = agentVersionRange(controlPlaneVersion);
  const version = parseVersion(agentVersion);
  if (!version) {
    throw new FailedPreconditionError(
      `agent_version ${JSON.stringify(agentVersion)} is not a release version (MAJOR.MINOR.PATCH): this control plane (${controlPlaneVersion}) accepts agents ${range.text}`,
    );
  }
  if (compare(version, range.min) < 0) {
    throw new FailedPreconditionError(
      `agent_version ${agentVersion} is too old: this control plane (${controlPlaneVersion}) accepts agents ${range.text}; upgrade the agent`,
    );
  }
  if (
    version.major > range.max.major ||
    (version.major === range.max.major && version.minor > range.max.minor)
  ) {
    throw new FailedPreconditionError(
      `agent_version ${agentVersion} is newer than this control plane (${controlPlaneVersion}), which accepts agents ${range.text}; upgrade the control plane first`,
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
