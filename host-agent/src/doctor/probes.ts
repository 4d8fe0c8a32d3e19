// The real probes: this machine's files, programs, sockets and the network.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { access, readFile, statfs } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { release } from 'node:os';
import { connect } from 'node:tls';
import Docker from 'dockerode';
import type { CommandOutput, DoctorProbes, TlsOutcome } from './types.js';

// Generous: a loaded host answers slowly, and a doctor that blames the engine for its own impatience
// sends the operator the wrong way. Podman alone takes about 2 s to answer /version.
const TIMEOUT_MS = 15_000;

function run(file: string, args: readonly string[]): Promise<CommandOutput | undefined> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      if (e?.code === 'ENOENT') return resolve(undefined);
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : 1, stdout, stderr });
    });
  });
}

function tcpFree(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

function udpFree(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err.code ?? err.message);
    });
    socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(undefined)));
  });
}

function handshake(options: Parameters<DoctorProbes['tlsHandshake']>[0]): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const socket = connect({
      host: options.host,
      port: options.port,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.servername !== undefined ? { servername: options.servername } : {}),
      ALPNProtocols: ['h2'],
      timeout: TIMEOUT_MS,
    });
    const done = (outcome: TlsOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      done({
        ok: true,
        subject: `CN=${cert.subject?.CN ?? '?'}, issued by CN=${cert.issuer?.CN ?? '?'}`,
        validTo: new Date(cert.valid_to),
        alpn: socket.alpnProtocol ?? false,
      });
    });
    socket.once('timeout', () =>
      done({ ok: false, code: 'ETIMEDOUT', message: `no answer in ${TIMEOUT_MS} ms` }),
    );
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, code: err.code ?? 'ERROR', message: err.message }),
    );
  });
}

export function realProbes(): DoctorProbes {
  const engines = new Map<string, Docker>();
  // Podman answers /version in about 2 s: asked once per socket, for the runtime and image checks.
  const versions = new Map<string, ReturnType<DoctorProbes['engineVersion']>>();
  const engineAt = (socket: string) => {
    let docker = engines.get(socket);
    if (docker === undefined) {
      docker = new Docker({ socketPath: socket, timeout: TIMEOUT_MS });
      engines.set(socket, docker);
    }
    return docker;
  };
  return {
    kernelRelease: release,
    readFile: (path) => readFile(path, 'utf8').catch(() => undefined),
    pathExists: (path) =>
      access(path).then(
        () => true,
        () => false,
      ),
    statfs: async (path) => {
      try {
        const s = await statfs(path);
        return { type: s.type, freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
      } catch {
        return undefined;
      }
    },
    command: run,
    engineVersion: (socket) => {
      let version = versions.get(socket);
      if (version === undefined) {
        version = engineAt(socket)
          .version()
          .then((v) => {
            const components = (v as { Components?: Array<{ Name: string }> }).Components ?? [];
            const podman = components.some((c) => c.Name.toLowerCase().includes('podman'));
            return {
              name: podman ? 'Podman Engine' : 'Docker Engine',
              version: v.Version,
              apiVersion: v.ApiVersion,
            };
          });
        versions.set(socket, version);
      }
      return version;
    },
    engineHasImage: async (socket, ref) => {
      try {
        await engineAt(socket).getImage(ref).inspect();
        return true;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return false;
        throw err;
      }
    },
    portFree: (address, port, protocol) =>
      protocol === 'tcp' ? tcpFree(address, port) : udpFree(address, port),
    agentAnswers: (port) =>
      new Promise((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 2_000 }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.once('error', () => resolve(false));
        req.once('timeout', () => req.destroy());
        req.end();
      }),
    tlsHandshake: handshake,
  };
}
