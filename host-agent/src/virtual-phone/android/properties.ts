/** System properties (`getprop`/`setprop`). `ro.*` keys are write-once, as on Android. */
export class Properties {
  readonly #values = new Map<string, string>();
  /** Told of every accepted set (persistence of `persist.*` keys listens here). */
  onSet: ((key: string, value: string) => void) | undefined;

  constructor(initial: Record<string, string> = {}) {
    for (const [key, value] of Object.entries(initial)) this.#values.set(key, value);
  }

  get(key: string): string {
    return this.#values.get(key) ?? '';
  }

  /** Returns false where Android's property service would refuse (changing a read-only key). */
  set(key: string, value: string, { force = false }: { force?: boolean } = {}): boolean {
    if (!force && key.startsWith('ro.') && this.#values.has(key)) return false;
    this.#values.set(key, value);
    this.onSet?.(key, value);
    return true;
  }

  /** Removes a key (init's property area starts empty at boot). */
  delete(key: string): void {
    this.#values.delete(key);
  }

  /** Every key starting with `prefix`, with its value. */
  entries(prefix = ''): [string, string][] {
    return [...this.#values.entries()].filter(([key]) => key.startsWith(prefix));
  }

  /** `getprop` without arguments: every property as `[key]: [value]`, sorted. */
  dump(): string {
    return [...this.#values.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => `[${key}]: [${value}]\n`)
      .join('');
  }
}

export interface DeviceIdentity {
  serial: string;
  /** ro.product.model */
  model: string;
  /** ro.product.name */
  name: string;
  /** ro.product.device */
  device: string;
  manufacturer: string;
  sdk: number;
  release: string;
  /** ro.product.cpu.abi: Redroid runs the host's own architecture. */
  abi: string;
}

/** The ABI a Redroid image built for this host reports: x86_64 on amd64, arm64-v8a on arm64. */
export function hostAbi(arch: string = process.arch): string {
  return arch === 'x64' ? 'x86_64' : arch === 'arm64' ? 'arm64-v8a' : arch;
}

export function defaultProperties(identity: DeviceIdentity): Record<string, string> {
  return {
    'ro.serialno': identity.serial,
    'ro.product.model': identity.model,
    'ro.product.name': identity.name,
    'ro.product.device': identity.device,
    'ro.product.brand': 'cphone',
    'ro.product.manufacturer': identity.manufacturer,
    'ro.product.cpu.abi': identity.abi,
    'ro.product.cpu.abilist': identity.abi,
    // Redroid's *_64only images carry no 32-bit ABI.
    'ro.product.cpu.abilist64': identity.abi,
    'ro.product.cpu.abilist32': '',
    'ro.build.version.sdk': String(identity.sdk),
    'ro.build.version.release': identity.release,
    'ro.build.type': 'userdebug',
    'ro.build.tags': 'test-keys',
    'ro.build.fingerprint': `cphone/${identity.name}/${identity.device}:${identity.release}/CPHONE/1:userdebug/test-keys`,
    'ro.debuggable': '1',
    'ro.secure': '1',
    'ro.adb.secure': '1',
    'persist.sys.timezone': 'UTC',
    // sys.boot_completed and dev.bootcomplete stay unset until boot completes, as on Android.
    'init.svc.bootanim': 'running',
  };
}
