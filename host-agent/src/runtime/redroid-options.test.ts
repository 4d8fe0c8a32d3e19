import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { dockerRuntimeConfig } from './docker-config.js';
import { phoneNetworkFor } from './phone-network.js';
import { redroidBootArgs, redroidCreateOptions, redroidVolumeOptions } from './redroid-options.js';
import type { DeviceSpec } from './types.js';

const spec: DeviceSpec = {
  deviceId: 'dev-7f3a',
  tenantId: 'acme',
  specRevision: 4,
  image: 'redroid/redroid:12.0.0_64only-latest',
  vcpuMillicores: 2500,
  memoryMib: 3072,
  storageGib: 16,
  screen: { width: 1080, height: 1920, dpi: 480, fps: 60 },
  gpuMode: 'host',
  properties: { 'ro.secure': '0', 'ro.product.model': 'Pixel 7' },
  labels: { 'com.example/team': 'qa' },
};

describe('redroidCreateOptions', () => {
  const config = dockerRuntimeConfig({ scope: 'host-1' });
  const options = redroidCreateOptions(spec, config);
  const host = options.HostConfig!;

  it('names the container after the device and runs the spec image', () => {
    assert.equal(options.name, 'cphone-dev-7f3a');
    assert.equal(options.Hostname, 'dev-7f3a');
    assert.equal(options.Image, 'redroid/redroid:12.0.0_64only-latest');
  });

  it('passes Redroid boot arguments as the command, ro.* properties sorted after them', () => {
    assert.deepEqual(options.Cmd, [
      'androidboot.redroid_width=1080',
      'androidboot.redroid_height=1920',
      'androidboot.redroid_dpi=480',
      'androidboot.redroid_fps=60',
      'androidboot.redroid_gpu_mode=host',
      'androidboot.use_memfd=1',
      'ro.product.model=Pixel 7',
      'ro.secure=0',
    ]);
    assert.equal(options.Entrypoint, undefined, "Redroid's own /init stays the entrypoint");
  });

  it("runs privileged with Redroid's own init as PID 1, no engine restarts, and the spec limits", () => {
    assert.equal(host.Privileged, true);
    assert.equal(host.Init, undefined, "no init in front of Android's init");
    assert.deepEqual(host.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
    assert.equal(host.Memory, 3072 * 1024 * 1024);
    assert.equal(host.MemorySwap, 3072 * 1024 * 1024);
    assert.equal(host.NanoCpus, 2_500_000_000);
  });

  it('mounts the per-device named volume at /data', () => {
    assert.deepEqual(host.Binds, ['cphone-dev-7f3a-data:/data']);
    const volume = redroidVolumeOptions(spec, config);
    assert.equal(volume.Name, 'cphone-dev-7f3a-data');
    assert.equal(volume.Driver, 'local');
    assert.deepEqual(volume.DriverOpts, {});
    assert.equal(volume.Labels['dev.cphone.device-id'], 'dev-7f3a');
    assert.equal(volume.Labels['dev.cphone.scope'], 'host-1');
    assert.equal(volume.Labels['dev.cphone.spec-revision'], undefined);
  });

  it('labels the container for rediscovery; runtime labels win over spec labels', () => {
    assert.deepEqual(options.Labels, {
      'com.example/team': 'qa',
      'dev.cphone.managed': 'true',
      'dev.cphone.scope': 'host-1',
      'dev.cphone.device-id': 'dev-7f3a',
      'dev.cphone.tenant-id': 'acme',
      'dev.cphone.spec-revision': '4',
    });
  });

  it("joins its tenant's network and publishes ADB on loopback only, on an engine-chosen port", () => {
    const { name } = phoneNetworkFor(dockerRuntimeConfig({ scope: 'host-1' }), 'acme');
    assert.match(name, /^cphone-[0-9a-f]{12}$/);
    assert.equal(host.NetworkMode, name);
    assert.deepEqual(options.NetworkingConfig, { EndpointsConfig: { [name]: {} } });
    assert.deepEqual(options.ExposedPorts, { '5555/tcp': {} });
    assert.deepEqual(host.PortBindings, { '5555/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    assert.equal(host.PublishAllPorts, false);
  });

  it('passes no devices by default (binderfs) and the configured binder nodes otherwise', () => {
    assert.deepEqual(host.Devices, []);
    const numbered = redroidCreateOptions(
      spec,
      dockerRuntimeConfig({
        devices: [
          { hostPath: '/dev/binder1', containerPath: '/dev/binder' },
          { hostPath: '/dev/binder2', containerPath: '/dev/hwbinder' },
        ],
      }),
    );
    assert.deepEqual(numbered.HostConfig?.Devices, [
      { PathOnHost: '/dev/binder1', PathInContainer: '/dev/binder', CgroupPermissions: 'rwm' },
      { PathOnHost: '/dev/binder2', PathInContainer: '/dev/hwbinder', CgroupPermissions: 'rwm' },
    ]);
  });

  it('bridge access publishes no host port', () => {
    const bridged = redroidCreateOptions(spec, dockerRuntimeConfig({ adbAccess: 'bridge' }));
    assert.deepEqual(bridged.HostConfig?.PortBindings, {});
  });

  it('test seams replace image and command only', () => {
    const seamed = redroidCreateOptions(
      spec,
      dockerRuntimeConfig({ imageOverride: 'localhost/cphone-standin:x', commandOverride: ['--serve'] }),
    );
    assert.equal(seamed.Image, 'localhost/cphone-standin:x');
    assert.deepEqual(seamed.Cmd, ['--serve']);
    assert.equal(seamed.HostConfig?.Privileged, true);
  });
});

describe('redroidBootArgs', () => {
  it('adds GPU node, DNS servers and drops memfd as configured', () => {
    const args = redroidBootArgs(
      { ...spec, properties: {} },
      dockerRuntimeConfig({ gpuNode: '/dev/dri/renderD128', dns: ['10.0.0.2', '10.0.0.3'], useMemfd: false }),
    );
    assert.deepEqual(args.slice(5), [
      'androidboot.redroid_gpu_node=/dev/dri/renderD128',
      'androidboot.redroid_net_ndns=2',
      'androidboot.redroid_net_dns1=10.0.0.2',
      'androidboot.redroid_net_dns2=10.0.0.3',
    ]);
  });

  it('asks the volume driver for a size when storage quotas are enforced', () => {
    const volume = redroidVolumeOptions(spec, dockerRuntimeConfig({ enforceStorageQuota: true }));
    assert.deepEqual(volume.DriverOpts, { size: '16g' });
  });
});
