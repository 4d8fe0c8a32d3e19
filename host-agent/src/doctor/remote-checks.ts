// Checks of what the agent talks to: the container engine, the phone images in it, and the control
// plane's agent gateway (a TLS handshake verified as the agent verifies it).
import { isIP } from 'node:net';
import type { Check, DoctorContext } from './types.js';

const DAY_MS = 86_400_000;

function engineCommand(name: string | undefined): string {
  return name?.toLowerCase().includes('podman') ? 'podman' : 'docker';
}

type EngineAnswer = Awaited<ReturnType<DoctorContext['probes']['engineVersion']>>;
const engines = new WeakMap<
  DoctorContext,
  Promise<{ version?: EngineAnswer; error?: NodeJS.ErrnoException }>
>();

/** The engine's version, asked once per doctor run (the runtime and image checks both need it). */
function engine(ctx: DoctorContext) {
  let found = engines.get(ctx);
  if (found === undefined) {
    found = ctx.probes.engineVersion(ctx.settings.config.dockerSocket).then(
      (version) => ({ version }),
      (err: unknown) => ({ error: err as NodeJS.ErrnoException }),
    );
    engines.set(ctx, found);
  }
  return found;
}

export const runtimeCheck: Check = async (ctx) => {
  const id = 'runtime';
  const { config } = ctx.settings;
  if (config.runtime === 'sim') {
    return {
      id,
      status: 'warn',
      detail: 'CPHONE_RUNTIME=sim: virtual phones for development, no container engine',
      fix: 'set CPHONE_RUNTIME=docker in production',
    };
  }
  const found = await engine(ctx);
  if (found.version) {
    const v = found.version;
    return {
      id,
      status: 'ok',
      detail: `${v.name} ${v.version} (API ${v.apiVersion}) answers on ${config.dockerSocket}`,
    };
  }
  const detail = `no engine answers on ${config.dockerSocket}: ${found.error?.message}`;
  const fix =
    found.error?.code === 'EACCES'
      ? "give the agent's user the socket's group: usermod -aG docker cphone-agent (the unit adds SupplementaryGroups=docker; for podman, deploy/host/install.sh sets podman.socket's SocketGroup=docker)"
      : 'start the engine (systemctl enable --now docker, or podman.socket) or set CPHONE_DOCKER_SOCKET to its socket (podman: /run/podman/podman.sock); deploy/host/install.sh --runtime docker|podman installs one';
  return { id, status: 'fail', detail, fix };
};

export const imageCheck: Check = async (ctx) => {
  const id = 'image';
  const { config } = ctx.settings;
  if (config.runtime === 'sim') return { id, status: 'ok', detail: 'the sim runtime needs no image' };
  if (ctx.images.length === 0) {
    return {
      id,
      status: 'warn',
      detail: 'no phone image to look for: none given and no desired phones recorded in the data dir yet',
      fix: "name the catalog's images: cphone-agent doctor --image <image_ref> (`cphone images list` shows them)",
    };
  }
  const found = await engine(ctx);
  if (!found.version) {
    return {
      id,
      status: 'fail',
      detail: `cannot ask the engine for ${ctx.images.join(', ')}`,
      fix: 'see the runtime check',
    };
  }
  const tool = engineCommand(found.version.name);
  const missing: string[] = [];
  for (const ref of ctx.images) {
    if (!(await ctx.probes.engineHasImage(config.dockerSocket, ref))) missing.push(ref);
  }
  if (missing.length === 0) return { id, status: 'ok', detail: `present: ${ctx.images.join(', ')}` };
  return {
    id,
    status: 'fail',
    detail: `not in the engine: ${missing.join(', ')} (the first phone start would pull it, or fail without a registry)`,
    fix: `${tool} pull ${missing[0]} (air-gapped: ${tool} load -i <file> with the image saved elsewhere)`,
  };
};

/** host and port of CPHONE_CONTROL_PLANE (`[v6]:port`, `name:port`). */
function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(at + 1)) };
}

const WRONG_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

export const controlPlaneCheck: Check = async (ctx) => {
  const id = 'control-plane';
  const { config } = ctx.settings;
  const unset = ctx.settings.errors.find((e) =>
    ['CPHONE_CONTROL_PLANE', 'CPHONE_CA_FILE', 'CPHONE_TLS_SERVER_NAME'].includes(e.variable),
  );
  if (unset !== undefined) {
    return { id, status: 'fail', detail: `not tried: ${unset.message}`, fix: 'see the settings check' };
  }
  const { host, port } = splitAddress(config.controlPlane);
  let ca: string | undefined;
  if (config.caFile !== undefined) {
    ca = await ctx.probes.readFile(config.caFile);
    if (ca === undefined) {
      return {
        id,
        status: 'fail',
        detail: `CPHONE_CA_FILE=${config.caFile} cannot be read`,
        fix: `copy the gateway's CA there, readable by cphone-agent`,
      };
    }
  }
  const servername = config.tlsServerName ?? (isIP(host) === 0 ? host : undefined);
  const trust = config.caFile === undefined ? 'the system roots' : `CPHONE_CA_FILE=${config.caFile}`;
  const outcome = await ctx.probes.tlsHandshake({ host, port, ca, servername });
  if (outcome.ok) {
    const days = Math.floor((outcome.validTo.getTime() - ctx.now.getTime()) / DAY_MS);
    const detail = `TLS to ${config.controlPlane} verified with ${trust} (${outcome.subject}, expires in ${days} days)`;
    if (outcome.alpn !== 'h2') {
      return {
        id,
        status: 'fail',
        detail: `${detail}, but it does not speak HTTP/2 (ALPN ${outcome.alpn || 'none'}): not the gRPC agent gateway`,
        fix: 'point CPHONE_CONTROL_PLANE at the agent gateway (CPHONE_GRPC_PORT of the control plane, 8443 by default), not the HTTP API',
      };
    }
    if (days < 14) {
      return {
        id,
        status: 'warn',
        detail,
        fix: "renew the gateway's certificate (deploy/README.md, Rotate the gateway CA and certificates)",
      };
    }
    return { id, status: 'ok', detail };
  }
  const detail = `TLS to ${config.controlPlane} failed: ${outcome.code} ${outcome.message}`;
  if (WRONG_CA.has(outcome.code)) {
    return {
      id,
      status: 'fail',
      detail: `the gateway's certificate does not chain to ${trust} (${outcome.code}): wrong CA`,
      fix: `put the CA that signed the gateway's certificate in ${config.caFile ?? 'CPHONE_CA_FILE'}: the control plane's CPHONE_TLS_CA file, or <its data dir>/tls/ca.pem when it made its own`,
    };
  }
  if (outcome.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      id,
      status: 'fail',
      detail,
      fix: 'set CPHONE_TLS_SERVER_NAME to a name in the certificate, or CPHONE_CONTROL_PLANE to one of them',
    };
  }
  if (outcome.code === 'CERT_HAS_EXPIRED' || outcome.code === 'CERT_NOT_YET_VALID') {
    return {
      id,
      status: 'fail',
      detail,
      fix: "check this host's clock (time-sync), then renew the gateway's certificate",
    };
  }
  return {
    id,
    status: 'fail',
    detail,
    fix: `check CPHONE_CONTROL_PLANE (${config.controlPlane}), DNS and the firewall: the agent dials the gateway's TCP port (8443 by default)`,
  };
};
