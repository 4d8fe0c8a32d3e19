// The Kubernetes manifests (deploy/k8s), checked offline: the base and the production overlay are
// rendered with kubectl 1.35's kustomize (scripts/kubectl.mjs), every built-in object is validated
// against the Kubernetes 1.27 JSON schemas of the `kubernetes-models` package, and what the project
// relies on is asserted: the control plane's settings cover control-plane/src/config.ts and load,
// probes and ports match the process, the migration Job precedes the rollout, the Services, the
// NetworkPolicies, and the CloudNativePG Cluster (no registry package has its CRD schema, so its
// fields are asserted here).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@cphone/control-plane';
import { parseAllDocuments } from 'yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION: string = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).version;

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are plain JSON checked field by field.
type K8sObject = Record<string, any>;

const kubectl = execFileSync(process.execPath, [`${ROOT}scripts/kubectl.mjs`], { encoding: 'utf8' }).trim();

function render(dir: string): K8sObject[] {
  const out = execFileSync(kubectl, ['kustomize', `${ROOT}${dir}`], { encoding: 'utf8' });
  return parseAllDocuments(out).map((doc) => {
    assert.deepEqual(doc.errors, [], `${dir}: YAML errors`);
    return doc.toJSON() as K8sObject;
  });
}

const CUSTOM_GROUPS = new Set(['postgresql.cnpg.io', 'barmancloud.cnpg.io']);

/** Validates a built-in object against its kubernetes-models schema; throws naming the object. */
async function validateBuiltIn(object: K8sObject): Promise<void> {
  const apiVersion: string = object.apiVersion;
  const module = (await import(`kubernetes-models/${apiVersion}`)) as Record<
    string,
    new (
      data: K8sObject,
    ) => { validate(): void }
  >;
  const Model = module[object.kind];
  assert.ok(Model, `no schema for ${apiVersion} ${object.kind}`);
  try {
    new Model(object).validate();
  } catch (err) {
    throw new Error(`${object.kind}/${object.metadata?.name}: ${(err as Error).message}`);
  }
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `no ${kind}/${name}`);
  return found;
}

function matches(selector: Record<string, string>, labels: Record<string, string> = {}): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const base = render('deploy/k8s/base');
const production = render('deploy/k8s/overlays/production');

describe('deploy/k8s manifests', () => {
  test('render and validate against the Kubernetes schemas (CRDs excepted)', async () => {
    for (const [name, objects] of [
      ['base', base],
      ['production', production],
    ] as const) {
      assert.ok(objects.length >= 15, `${name}: ${objects.length} objects`);
      for (const object of objects) {
        const group = String(object.apiVersion).includes('/')
          ? (String(object.apiVersion).split('/')[0] ?? '')
          : '';
        if (CUSTOM_GROUPS.has(group)) continue;
        await validateBuiltIn(object);
      }
    }
    // The check can fail: a wrongly typed field is refused.
    const broken = structuredClone(find(production, 'Deployment', 'cphone-control-plane'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    await assert.rejects(validateBuiltIn(broken), /containerPort must be integer/);
    const kinds = new Set(production.map((o) => `${o.apiVersion} ${o.kind}`));
    for (const kind of [
      'apps/v1 Deployment',
      'policy/v1 PodDisruptionBudget',
      'batch/v1 Job',
      'v1 Service',
      'v1 ConfigMap',
      'networking.k8s.io/v1 NetworkPolicy',
      'networking.k8s.io/v1 Ingress',
      'postgresql.cnpg.io/v1 Cluster',
      'postgresql.cnpg.io/v1 ScheduledBackup',
      'barmancloud.cnpg.io/v1 ObjectStore',
    ]) {
      assert.ok(kinds.has(kind), `production renders no ${kind}`);
    }
  });

  test('production: one namespace, images from the registry at the release version', () => {
    for (const object of production) {
      if (object.kind === 'Namespace') continue;
      assert.equal(object.metadata.namespace, 'cphone', `${object.kind}/${object.metadata.name}`);
    }
    const images = (objects: K8sObject[]) =>
      objects
        .flatMap((o) => o.spec?.template?.spec?.containers ?? [])
        .map((c: K8sObject) => c.image as string)
        .sort();
    assert.deepEqual(images(base), [
      `localhost/cphone/console:${VERSION}`,
      `localhost/cphone/control-plane:${VERSION}`,
      `localhost/cphone/control-plane:${VERSION}`,
    ]);
    assert.deepEqual(images(production), [
      `registry.example.com/cphone/console:${VERSION}`,
      `registry.example.com/cphone/control-plane:${VERSION}`,
      `registry.example.com/cphone/control-plane:${VERSION}`,
    ]);
    const ns = find(production, 'Namespace', 'cphone');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  test('the control plane Deployment: replicas, probes, shutdown, hardening, spread', () => {
    const deployment = find(production, 'Deployment', 'cphone-control-plane');
    const config = find(production, 'ConfigMap', 'cphone-control-plane').data as K8sObject;
    const pod = deployment.spec.template;
    const [container] = pod.spec.containers;
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const port = (name: string) => container.ports.find((p: K8sObject) => p.name === name)?.containerPort;
    assert.equal(port('http'), Number(config.CPHONE_HTTP_PORT));
    assert.equal(port('grpc'), Number(config.CPHONE_GRPC_PORT));
    assert.equal(config.CPHONE_HTTP_HOST, '0.0.0.0');
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
    // main.ts exits by itself at most 15 s after SIGTERM: the kubelet must not kill it sooner.
    const mainTs = readFileSync(`${ROOT}control-plane/src/main.ts`, 'utf8');
    const forcedExitMs = Number(
      /setTimeout\(\(\) => process\.exit\(1\), ([\d_]+)\)/.exec(mainTs)?.[1]?.replace(/_/g, ''),
    );
    assert.equal(forcedExitMs, 15_000);
    assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > forcedExitMs);
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(container.resources.limits.memory);
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    // The images' user (deploy/images/Containerfile): every pod runs as it.
    const user = /^USER (\d+):(\d+)$/m.exec(readFileSync(`${ROOT}deploy/images/Containerfile`, 'utf8'));
    for (const o of production.filter((x) => x.spec?.template?.spec?.containers)) {
      assert.equal(o.spec.template.spec.securityContext.runAsUser, Number(user?.[1]), o.metadata.name);
      assert.equal(o.spec.template.spec.securityContext.runAsGroup, Number(user?.[2]), o.metadata.name);
    }
    assert.equal(pod.spec.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    const mounts = Object.fromEntries(container.volumeMounts.map((m: K8sObject) => [m.mountPath, m.name]));
    const volume = (name: string) => pod.spec.volumes.find((v: K8sObject) => v.name === name);
    assert.ok(volume(mounts['/tmp']).emptyDir);
    // Artifacts live in the data dir: every replica must see the same one.
    const data = volume(mounts[config.CPHONE_DATA_DIR]).persistentVolumeClaim.claimName;
    assert.deepEqual(find(production, 'PersistentVolumeClaim', data).spec.accessModes, ['ReadWriteMany']);
    assert.match(
      readFileSync(`${ROOT}control-plane/src/artifacts/artifact-service.ts`, 'utf8'),
      /join\(config\.dataDir, 'blobs'\)/,
    );
    for (const file of [config.CPHONE_TLS_CERT, config.CPHONE_TLS_KEY, config.CPHONE_TLS_CA]) {
      const dir = file.slice(0, file.lastIndexOf('/'));
      assert.equal(volume(mounts[dir]).secret.secretName, 'cphone-gateway-tls', file);
    }
    assert.equal(volume(mounts[config.CPHONE_STREAM_KEYS_DIR]).secret.secretName, 'cphone-stream-keys');
    const keys = pod.spec.topologySpreadConstraints.map((c: K8sObject) => c.topologyKey).sort();
    assert.deepEqual(keys, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const c of pod.spec.topologySpreadConstraints) {
      assert.ok(matches(c.labelSelector.matchLabels, pod.metadata.labels));
    }
    const pdb = find(production, 'PodDisruptionBudget', 'cphone-control-plane');
    assert.ok(matches(pdb.spec.selector.matchLabels, pod.metadata.labels));
    assert.equal(pdb.spec.maxUnavailable, 1);
  });

  test('every CPHONE_* setting of config.ts is set, secret or deliberately left out, and loads', () => {
    const source = readFileSync(`${ROOT}control-plane/src/config.ts`, 'utf8');
    const known = new Set(source.match(/CPHONE_[A-Z0-9_]+/g));
    const config = find(production, 'ConfigMap', 'cphone-control-plane').data as K8sObject;
    const secrets = ['CPHONE_PAGE_TOKEN_KEYS', 'CPHONE_WEBHOOK_SECRET_KEYS', 'CPHONE_TURN_SECRET'];
    // TLS for the API ends at the ingress; the console has its own Deployment.
    const leftOut = ['CPHONE_HTTP_TLS_CERT', 'CPHONE_HTTP_TLS_KEY', 'CPHONE_CONSOLE_DIR'];
    for (const name of known) {
      const where = [name in config, secrets.includes(name), leftOut.includes(name)].filter(Boolean);
      assert.equal(where.length, 1, `${name}: in the ConfigMap, a secret or left out (exactly one)`);
    }
    for (const name of Object.keys(config)) {
      assert.ok(known.has(name) || /^DATABASE_(HOST|NAME|OPTIONS)$/.test(name), `unknown setting ${name}`);
    }
    const deployment = find(production, 'Deployment', 'cphone-control-plane');
    const [container] = deployment.spec.template.spec.containers;
    assert.deepEqual(
      container.envFrom.map((e: K8sObject) => e.configMapRef?.name ?? e.secretRef?.name),
      ['cphone-control-plane', 'cphone-control-plane'],
    );
    // The settings load (the process's own validation), with stand-ins for the secrets.
    const key = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
    const loaded = loadConfig({
      ...config,
      CPHONE_PAGE_TOKEN_KEYS: key,
      CPHONE_WEBHOOK_SECRET_KEYS: key,
      DATABASE_URL: 'postgresql://u:p@cphone-db-rw:5432/cphone',
    });
    assert.equal(loaded.migrate, false);
    assert.equal(loaded.grpcPort, 8443);
    assert.ok(loaded.dbPoolSize * 3 < 200, 'three replicas stay under max_connections');
  });

  test('the database URL points at the CloudNativePG cluster: -rw Service, app Secret, CA', () => {
    const cluster = find(production, 'Cluster', 'cphone-db');
    const config = find(production, 'ConfigMap', 'cphone-control-plane').data as K8sObject;
    assert.equal(config.DATABASE_HOST, `${cluster.metadata.name}-rw`);
    assert.equal(config.DATABASE_NAME, cluster.spec.bootstrap.initdb.database);
    assert.match(config.DATABASE_OPTIONS, /sslmode=verify-full&sslrootcert=\/etc\/cphone\/db-ca\/ca\.crt/);
    for (const kind of ['Deployment', 'Job'] as const) {
      const object = production.find(
        (o) => o.kind === kind && /^cphone-(control-plane|migrate)/.test(o.metadata.name),
      );
      assert.ok(object);
      const pod = object.spec.template.spec;
      const env = Object.fromEntries(pod.containers[0].env.map((e: K8sObject) => [e.name, e]));
      assert.equal(
        env.DATABASE_URL.value,
        'postgresql://$(DATABASE_USER):$(DATABASE_PASSWORD)@$(DATABASE_HOST):5432/$(DATABASE_NAME)?$(DATABASE_OPTIONS)',
      );
      // $(VAR) expands only variables defined earlier in the list (or from envFrom).
      const names = pod.containers[0].env.map((e: K8sObject) => e.name);
      assert.ok(names.indexOf('DATABASE_URL') > names.indexOf('DATABASE_PASSWORD'));
      assert.equal(env.DATABASE_USER.valueFrom.secretKeyRef.name, `${cluster.metadata.name}-app`);
      assert.equal(env.DATABASE_USER.valueFrom.secretKeyRef.key, 'username');
      assert.equal(env.DATABASE_PASSWORD.valueFrom.secretKeyRef.key, 'password');
      const ca = pod.volumes.find((v: K8sObject) => v.secret?.secretName === `${cluster.metadata.name}-ca`);
      assert.ok(ca, `${kind} mounts the cluster's CA`);
      const mount = pod.containers[0].volumeMounts.find((m: K8sObject) => m.name === ca.name);
      assert.equal(mount.mountPath, '/etc/cphone/db-ca');
    }
  });

  test('the migration Job runs once per release, before the rollout, with the same image', () => {
    const job = find(production, 'Job', `cphone-migrate-${VERSION.replace(/\./g, '-')}`);
    const deployment = find(production, 'Deployment', 'cphone-control-plane');
    // Argo CD's order: the database, the ConfigMap the Job reads, the Job, then the rest (wave 0).
    const wave = (o: K8sObject) => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
    const cluster = find(production, 'Cluster', 'cphone-db');
    const config = find(production, 'ConfigMap', 'cphone-control-plane');
    assert.ok(wave(cluster) < wave(config) && wave(config) < wave(job) && wave(job) < wave(deployment));
    assert.equal(wave(find(production, 'ObjectStore', 'cphone-db-backups')), wave(cluster));
    assert.equal(job.metadata.labels['app.kubernetes.io/component'], 'migrate');
    const [migrate] = job.spec.template.spec.containers;
    assert.equal(migrate.image, deployment.spec.template.spec.containers[0].image);
    // The image's migration entry point: scripts/bundle.mjs bundles migrate-main.ts as migrate.mjs
    // into the image's /app (deploy/images/Containerfile).
    assert.deepEqual(migrate.command, ['node', '/app/migrate.mjs']);
    assert.match(
      readFileSync(`${ROOT}scripts/bundle.mjs`, 'utf8'),
      /migrate: 'control-plane\/src\/migrate-main\.ts'/,
    );
    assert.match(readFileSync(`${ROOT}deploy/images/Containerfile`, 'utf8'), /node \/app\/migrate\.mjs/);
    assert.equal(job.spec.template.spec.restartPolicy, 'Never');
    assert.equal(migrate.securityContext.readOnlyRootFilesystem, true);
    // The runbook's first `kubectl apply -l 'app.kubernetes.io/component in (config,migrate)'`
    // selects the ConfigMap and the Job alone; its first install's `-l app.kubernetes.io/name=cphone-db`
    // the database's objects alone.
    const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'];
    const selected = production.filter((o) => ['config', 'migrate'].includes(component(o)));
    assert.deepEqual(selected.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ConfigMap/cphone-control-plane',
      `Job/${job.metadata.name}`,
    ]);
    const db = production.filter((o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'cphone-db');
    assert.deepEqual(db.map((o) => o.kind).sort(), ['Cluster', 'ObjectStore', 'ScheduledBackup']);
  });

  test('Services: the API, and the gateway as an L4 load balancer to the gRPC port', () => {
    const deployment = find(production, 'Deployment', 'cphone-control-plane');
    const labels = deployment.spec.template.metadata.labels;
    const api = find(production, 'Service', 'cphone-api');
    const gateway = find(production, 'Service', 'cphone-gateway');
    assert.ok(matches(api.spec.selector, labels) && matches(gateway.spec.selector, labels));
    assert.equal(api.spec.ports[0].targetPort, 'http');
    assert.equal(gateway.spec.type, 'LoadBalancer');
    assert.equal(gateway.spec.externalTrafficPolicy, 'Local');
    assert.deepEqual(
      gateway.spec.ports.map((p: K8sObject) => [p.protocol, p.port, p.targetPort]),
      [['TCP', 8443, 'grpc']],
    );
    assert.ok(gateway.spec.loadBalancerSourceRanges.length > 0);
    const console = find(production, 'Deployment', 'cphone-console');
    const consoleService = find(production, 'Service', 'cphone-console');
    assert.ok(matches(consoleService.spec.selector, console.spec.template.metadata.labels));
    const ingress = find(production, 'Ingress', 'cphone');
    const backends = ingress.spec.rules[0].http.paths.map((p: K8sObject) => [p.path, p.backend.service.name]);
    assert.deepEqual(backends, [
      ['/cphone.api.v1.', 'cphone-api'],
      ['/agent/v1', 'cphone-api'],
      ['/', 'cphone-console'],
    ]);
  });

  test('NetworkPolicies: default deny, the database only for its clients', () => {
    const policies = production.filter((o) => o.kind === 'NetworkPolicy');
    const deny = find(production, 'NetworkPolicy', 'default-deny');
    assert.deepEqual(deny.spec.podSelector, {});
    assert.deepEqual(deny.spec.policyTypes, ['Ingress', 'Egress']);
    assert.equal(deny.spec.ingress, undefined);
    assert.equal(deny.spec.egress, undefined);
    const pods = production
      .filter((o) => o.spec?.template?.metadata?.labels)
      .map((o) => o.spec.template.metadata);
    // Each policy (but the namespace-wide ones) selects some pod of ours or the database's.
    for (const policy of policies) {
      const selector = policy.spec.podSelector.matchLabels;
      if (!selector) continue;
      const selectsDb = selector['cnpg.io/cluster'] === 'cphone-db';
      assert.ok(
        selectsDb || pods.some((p) => matches(selector, p.labels)),
        `${policy.metadata.name} selects nothing`,
      );
    }
    const db = find(production, 'NetworkPolicy', 'cphone-db');
    const pgFrom = db.spec.ingress.filter((r: K8sObject) => r.ports.some((p: K8sObject) => p.port === 5432));
    const clientRule = pgFrom.find(
      (r: K8sObject) => r.from[0].podSelector?.matchLabels?.['cphone.io/database-client'],
    );
    assert.ok(clientRule);
    const clients = pods
      .filter((p) => p.labels['cphone.io/database-client'] === 'true')
      .map((p) => p.labels['app.kubernetes.io/name']);
    assert.deepEqual(clients.sort(), ['cphone-control-plane', 'cphone-migrate']);
    const cp = find(production, 'NetworkPolicy', 'cphone-control-plane');
    const gatewayRule = cp.spec.ingress.find((r: K8sObject) =>
      r.ports.some((p: K8sObject) => p.port === 8443),
    );
    const gateway = find(production, 'Service', 'cphone-gateway');
    assert.deepEqual(
      gatewayRule.from.map((f: K8sObject) => f.ipBlock.cidr),
      gateway.spec.loadBalancerSourceRanges,
      'the agents network is the same in the policy and on the load balancer',
    );
    const dbEgress = cp.spec.egress.find(
      (r: K8sObject) => r.to[0].podSelector?.matchLabels?.['cnpg.io/cluster'],
    );
    assert.equal(dbEgress.ports[0].port, 5432);
    const dns = find(production, 'NetworkPolicy', 'allow-dns');
    assert.deepEqual(
      dns.spec.egress[0].ports.map((p: K8sObject) => `${p.protocol}/${p.port}`),
      ['UDP/53', 'TCP/53'],
    );
  });

  test('CloudNativePG: 3 instances, synchronous replication, WAL archive, scheduled backups', () => {
    const cluster = find(production, 'Cluster', 'cphone-db');
    assert.equal(cluster.apiVersion, 'postgresql.cnpg.io/v1');
    assert.equal(cluster.spec.instances, 3);
    assert.deepEqual(cluster.spec.postgresql.synchronous, {
      method: 'any',
      number: 1,
      dataDurability: 'required',
    });
    assert.equal(cluster.spec.minSyncReplicas, undefined, 'the deprecated fields are not mixed in');
    assert.deepEqual(cluster.spec.bootstrap.initdb, {
      database: 'cphone',
      owner: 'cphone',
      dataChecksums: true,
    });
    assert.equal(cluster.spec.affinity.podAntiAffinityType, 'required');
    assert.ok(Number(cluster.spec.postgresql.parameters.max_connections) >= 100);
    const [plugin] = cluster.spec.plugins;
    assert.equal(plugin.name, 'barman-cloud.cloudnative-pg.io');
    assert.equal(plugin.isWALArchiver, true);
    const store = find(production, 'ObjectStore', plugin.parameters.barmanObjectName);
    assert.equal(store.apiVersion, 'barmancloud.cnpg.io/v1');
    assert.match(store.spec.configuration.destinationPath, /^s3:\/\/[^/]+\/.+/);
    assert.match(store.spec.retentionPolicy, /^\d+[dwm]$/);
    assert.ok(store.spec.configuration.wal.compression && store.spec.configuration.data.compression);
    const backup = find(production, 'ScheduledBackup', 'cphone-db-nightly');
    assert.equal(backup.spec.cluster.name, cluster.metadata.name);
    assert.equal(backup.spec.method, 'plugin');
    assert.equal(backup.spec.pluginConfiguration.name, plugin.name);
    // CloudNativePG's schedule has six fields, seconds first.
    const fields = String(backup.spec.schedule).split(' ');
    assert.equal(fields.length, 6, backup.spec.schedule);
    assert.deepEqual(fields.slice(0, 3), ['0', '0', '3']);
  });
});
