// The control plane's Kubernetes pod specs run for real: the base's migration Job and Deployment
// are rendered (kubectl 1.35's kustomize), their pod templates taken out and played with
// `podman kube play` on the image deploy/images/build.sh builds, against a fresh database on the
// machine's PostgreSQL: the Job migrates and exits 0, then the control plane's pod answers
// /readyz with 200 and serves an API call, running as the spec says (uid 1000, read-only root,
// no capabilities).
//
// What is changed in the pod specs, and why (everything else is played as rendered, the
// ConfigMap included, through --configmap):
//  - hostNetwork, and the listen address and ports (127.0.0.1 and free ports, in the ConfigMap):
//    podman has no cluster network, and the machine's PostgreSQL listens on 127.0.0.1 only; the
//    host's 8080/8443 may be taken. The containerPorts go (podman refuses port mappings on the
//    host's network).
//  - Secrets: podman cannot read Kubernetes Secrets, so env from a Secret becomes plain values
//    (generated keys) and Secret volumes become hostPath folders this test fills (a gateway
//    certificate from a CA it makes, a stream key). DATABASE_URL becomes the fresh database's URL
//    (no TLS: the machine's server has none; the CloudNativePG CA volume is dropped with it).
//  - The data PersistentVolumeClaim: podman plays it as a named volume of the claim's name; the
//    test makes it first and gives it to uid 1000, because podman does not apply fsGroup.
//  - Probes are left out: podman 4.3 turns an httpGet probe into a curl inside the container,
//    and the image has no curl. The test polls /readyz itself, as the kubelet would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, issueServerCertificate } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { parseAllDocuments, stringify } from 'yaml';
import { type FreshDatabase, freshDatabase, getOwnTenant } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION: string = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')).version;
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are plain JSON changed field by field.
type K8sObject = Record<string, any>;

const podman = (...args: string[]) => execFileSync('podman', args, { encoding: 'utf8' }).trim();
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const volume = `cphone-control-plane-data-${suffix}`;
let dir: string;
let db: FreshDatabase;
const played: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function render(): K8sObject[] {
  const kubectl = execFileSync(process.execPath, [`${ROOT}scripts/kubectl.mjs`], { encoding: 'utf8' }).trim();
  const out = execFileSync(kubectl, ['kustomize', `${ROOT}deploy/k8s/base`], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
}

/** The pod template of a workload, adapted as the header says. */
function podFrom(
  workload: K8sObject,
  name: string,
  secrets: Record<string, string>,
  folders: Record<string, string>,
) {
  const spec = structuredClone(workload.spec.template.spec);
  spec.hostNetwork = true;
  for (const container of spec.containers) {
    container.envFrom = container.envFrom.filter((e: K8sObject) => e.configMapRef);
    container.env = [
      ...Object.entries(secrets).map(([n, value]) => ({ name: n, value })),
      { name: 'DATABASE_URL', value: db.url },
    ];
    delete container.ports;
    delete container.readinessProbe;
    delete container.livenessProbe;
    delete container.startupProbe;
    container.volumeMounts = container.volumeMounts.filter((m: K8sObject) => m.name !== 'db-ca');
  }
  spec.volumes = spec.volumes
    .filter((v: K8sObject) => v.name !== 'db-ca')
    .map((v: K8sObject) => {
      if (v.secret)
        return { name: v.name, hostPath: { path: folders[v.secret.secretName], type: 'Directory' } };
      if (v.persistentVolumeClaim) return { name: v.name, persistentVolumeClaim: { claimName: volume } };
      return v;
    });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: workload.spec.template.metadata.labels },
    spec,
  };
}

async function play(pod: K8sObject, configMap: K8sObject): Promise<string> {
  const file = join(dir, `${pod.metadata.name}.yaml`);
  await writeFile(file, stringify(pod));
  const configFile = join(dir, 'configmap.yaml');
  await writeFile(configFile, stringify(configMap));
  podman('kube', 'play', '--configmap', configFile, file);
  played.push(file);
  return `${pod.metadata.name}-${pod.spec.containers[0].name}`;
}

let httpPort: number;
let controlPlane: string;

before(async () => {
  // Podman installed and configured as the project's other container suites have it.
  execFileSync('bash', [`${ROOT}scripts/setup-podman.sh`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const refs = execFileSync('bash', [`${ROOT}deploy/images/build.sh`], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  assert.ok(refs.split('\n').includes(`localhost/cphone/control-plane:${VERSION}`), refs);
  dir = await mkdtemp(join(tmpdir(), 'cphone-kube-'));
  await chmod(dir, 0o755);
  db = await freshDatabase('cphone_kube');
});

after(async () => {
  for (const file of played.reverse()) {
    try {
      podman('kube', 'down', file);
    } catch {
      // already gone
    }
  }
  try {
    podman('volume', 'rm', '--force', volume);
  } catch {
    // never made
  }
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the migration Job and the control plane pod run under podman kube play; /readyz answers 200', async () => {
  const objects = render();
  const find = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    assert.ok(found, `${kind}/${name}`);
    return found;
  };
  const deployment = find('Deployment', 'cphone-control-plane');
  const job = find('Job', 'cphone-migrate');
  const configMap = structuredClone(find('ConfigMap', 'cphone-control-plane'));
  assert.equal(
    deployment.spec.template.spec.containers[0].image,
    `localhost/cphone/control-plane:${VERSION}`,
  );
  httpPort = await freePort();
  const grpcPort = await freePort();
  Object.assign(configMap.data, {
    CPHONE_HTTP_HOST: '127.0.0.1',
    CPHONE_HTTP_PORT: String(httpPort),
    CPHONE_GRPC_HOST: '127.0.0.1',
    CPHONE_GRPC_PORT: String(grpcPort),
    CPHONE_PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
  });

  // What the Secrets would hold.
  const key = () => `k1:${randomBytes(32).toString('base64')}`;
  const secrets = { CPHONE_PAGE_TOKEN_KEYS: key(), CPHONE_WEBHOOK_SECRET_KEYS: key() };
  const folders = {
    'cphone-gateway-tls': join(dir, 'gateway-tls'),
    'cphone-stream-keys': join(dir, 'stream-keys'),
  };
  for (const folder of Object.values(folders)) await mkdir(folder, { mode: 0o755 });
  const ca = await createCertificateAuthority('cphone agent CA');
  const server = await issueServerCertificate(ca, { commonName: 'gateway', dnsNames: ['localhost'] });
  await writeFile(join(folders['cphone-gateway-tls'], 'tls.crt'), server.cert);
  await writeFile(join(folders['cphone-gateway-tls'], 'tls.key'), server.key, { mode: 0o644 });
  await writeFile(join(folders['cphone-gateway-tls'], 'ca.crt'), ca.cert);
  const streamKey = generateKeyPairSync('ed25519')
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
  await writeFile(join(folders['cphone-stream-keys'], 'sk-20261201T000000.pem'), streamKey, { mode: 0o644 });
  podman('volume', 'create', volume);
  const mountpoint = podman('volume', 'inspect', '--format', '{{.Mountpoint}}', volume);
  execFileSync('chown', ['1000:1000', mountpoint]);

  // The Job first: it migrates the fresh database and exits 0.
  const migrate = await play(podFrom(job, `cphone-migrate-${suffix}`, {}, folders), configMap);
  const exited = await waitFor(
    'the migration container to exit',
    () => podman('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', migrate),
    (state) => state.startsWith('exited'),
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  assert.equal(exited, 'exited 0', podman('logs', migrate));

  controlPlane = await play(
    podFrom(deployment, `cphone-control-plane-${suffix}`, secrets, folders),
    configMap,
  );
  const ready = await waitFor(
    '/readyz to answer 200',
    () => fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.status),
    (status) => status === 200,
    { timeoutMs: 120_000, intervalMs: 500 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${podman('logs', controlPlane)}`);
  });
  assert.equal(ready, 200);

  // A real API call with the bootstrap key the first start wrote to the shared data volume.
  const bootstrapKey = (await readFile(join(mountpoint, 'bootstrap-admin-key'), 'utf8')).trim();
  const tenant = await getOwnTenant(`http://127.0.0.1:${httpPort}`, bootstrapKey);
  assert.equal(tenant.status, 200, JSON.stringify(tenant.body));

  // The container runs as the spec says.
  const [inspected] = JSON.parse(podman('inspect', controlPlane)) as K8sObject[];
  assert.ok(inspected);
  assert.equal(inspected?.Config.User, '1000:1000');
  assert.equal(inspected?.HostConfig.ReadonlyRootfs, true);
  assert.deepEqual(inspected?.EffectiveCaps ?? [], []);
  const tmpMount = (inspected.Mounts as K8sObject[]).find((m) => m.Destination === '/tmp');
  assert.ok(tmpMount, 'an emptyDir on /tmp');
});
