import ApkReader from '@devicefarmer/adbkit-apkreader';
import type { MemoryFileSystem } from './file-system.js';

export interface InstalledPackage {
  packageName: string;
  /** Split APKs installed with the base (`install-multiple`), by split name. */
  splits?: string[];
  versionCode: number;
  versionName: string;
  /** Where the APK lies on the phone: `/data/app/<package>-1/base.apk` once installed. */
  path: string;
  size: number;
  installedAt: Date;
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
  constructor(
    /** Android's failure code, printed as `Failure [CODE: message]`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const appDir = (packageName: string) => `/data/app/${packageName}-1`;

interface Manifest {
  package: string;
  versionCode: number;
  versionName: string;
  /** Set on a split APK: its name (config.xxhdpi, feature …). */
  split?: string;
}

async function readManifest(apk: Uint8Array): Promise<Manifest> {
  let manifest: Manifest;
  try {
    manifest = await (await ApkReader.open(Buffer.from(apk))).readManifest();
  } catch (error) {
    throw new InstallError('INSTALL_FAILED_INVALID_APK', `Failed to parse APK: ${(error as Error).message}`);
  }
  if (!manifest.package) throw new InstallError('INSTALL_PARSE_FAILED_MANIFEST_MALFORMED', 'no package name');
  return manifest;
}

/**
 * The package list `pm` works on. An install reads the real APK's binary manifest and copies the
 * APK to /data/app, as Android does; the list itself is what /data/system/packages.xml holds.
 */
export class PackageManager {
  readonly #packages = new Map<string, InstalledPackage>();
  readonly #sessions = new Map<number, Map<string, Uint8Array>>();
  #nextSession = 1_276_532_671;

  constructor(
    readonly fs: MemoryFileSystem,
    readonly onChange: (event: { kind: 'installed' | 'uninstalled'; pkg: InstalledPackage }) => void,
    /** The platform's own packages carry the SDK level and release as their version. */
    platform: { sdk: number; release: string } = { sdk: 31, release: '12' },
  ) {
    for (const name of ['android', 'com.android.settings', 'com.android.shell', 'com.android.systemui']) {
      this.#packages.set(name, {
        packageName: name,
        versionCode: platform.sdk,
        versionName: platform.release,
        path: `/system/app/${name}/${name}.apk`,
        size: 0,
        installedAt: new Date(0),
      });
    }
  }

  /** Packages installed before this boot (read from the phone's data), without install events. */
  restore(packages: readonly InstalledPackage[]): void {
    for (const pkg of packages) this.#packages.set(pkg.packageName, pkg);
  }

  /** What a user installed (system packages excluded). */
  userPackages(): InstalledPackage[] {
    return this.list().filter((p) => p.installedAt.getTime() > 0);
  }

  async install(
    apk: Uint8Array,
    { replace = true, splits = [] }: { replace?: boolean; splits?: readonly Uint8Array[] } = {},
  ): Promise<InstalledPackage> {
    const manifest = await readManifest(apk);
    if (manifest.split) {
      throw new InstallError('INSTALL_FAILED_INVALID_APK', `Missing base APK for split ${manifest.split}`);
    }
    const splitManifests = await Promise.all(splits.map(readManifest));
    const splitNames: string[] = [];
    for (const split of splitManifests) {
      if (!split.split) {
        throw new InstallError('INSTALL_FAILED_INVALID_APK', `Split null was defined multiple times`);
      }
      if (split.package !== manifest.package) {
        throw new InstallError(
          'INSTALL_FAILED_INVALID_APK',
          `Inconsistent package ${split.package} in split ${split.split}; expected ${manifest.package}`,
        );
      }
      splitNames.push(split.split);
    }
    const existing = this.#packages.get(manifest.package);
    if (existing && !replace) {
      throw new InstallError(
        'INSTALL_FAILED_ALREADY_EXISTS',
        `Attempt to re-install ${manifest.package} without first uninstalling.`,
      );
    }
    if (existing && existing.versionCode > manifest.versionCode) {
      throw new InstallError(
        'INSTALL_FAILED_VERSION_DOWNGRADE',
        `Downgrade detected: Update version code ${manifest.versionCode} is older than current ${existing.versionCode}`,
      );
    }
    const pkg: InstalledPackage = {
      packageName: manifest.package,
      versionCode: manifest.versionCode,
      versionName: manifest.versionName,
      path: `${appDir(manifest.package)}/base.apk`,
      size: apk.byteLength + splits.reduce((sum, split) => sum + split.byteLength, 0),
      installedAt: new Date(),
      ...(splitNames.length ? { splits: splitNames } : {}),
    };
    if (existing && this.fs.stat(appDir(pkg.packageName))) {
      this.fs.remove(appDir(pkg.packageName), { recursive: true });
    }
    this.fs.write(pkg.path, apk);
    for (const [k, split] of splits.entries()) {
      this.fs.write(`${appDir(pkg.packageName)}/split_${splitNames[k]}.apk`, split);
    }
    this.#packages.set(pkg.packageName, pkg);
    this.onChange({ kind: 'installed', pkg });
    return pkg;
  }

  /** `pm install-create`: a session the APKs of one app (base and splits) are written into. */
  createSession(): number {
    const id = this.#nextSession++;
    this.#sessions.set(id, new Map());
    return id;
  }

  /** `pm install-write`; false for an unknown session. */
  writeSession(id: number, name: string, apk: Uint8Array): boolean {
    const session = this.#sessions.get(id);
    session?.set(name, apk);
    return session !== undefined;
  }

  abandonSession(id: number): boolean {
    return this.#sessions.delete(id);
  }

  /** `pm install-commit`: installs the session's base APK with its splits, atomically. */
  async commitSession(id: number): Promise<InstalledPackage> {
    const session = this.#sessions.get(id);
    if (!session) throw new InstallError('INSTALL_FAILED_INTERNAL_ERROR', `Session ${id} does not exist`);
    this.#sessions.delete(id);
    const apks = [...session.values()];
    const manifests = await Promise.all(apks.map(readManifest));
    const bases = manifests.flatMap((m, k) => (m.split ? [] : [apks[k]!]));
    if (bases.length !== 1) {
      throw new InstallError(
        'INSTALL_FAILED_INVALID_APK',
        bases.length ? 'Split null was defined multiple times' : 'Full install must include a base package',
      );
    }
    return this.install(bases[0]!, { splits: apks.filter((apk) => apk !== bases[0]) });
  }

  uninstall(packageName: string): boolean {
    const pkg = this.#packages.get(packageName);
    if (!pkg) return false;
    this.#packages.delete(packageName);
    if (this.fs.stat(appDir(packageName))) this.fs.remove(appDir(packageName), { recursive: true });
    this.onChange({ kind: 'uninstalled', pkg });
    return true;
  }

  get(packageName: string): InstalledPackage | undefined {
    return this.#packages.get(packageName);
  }

  list(): InstalledPackage[] {
    return [...this.#packages.values()].sort((a, b) => (a.packageName < b.packageName ? -1 : 1));
  }
}
