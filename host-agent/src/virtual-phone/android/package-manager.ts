import ApkReader from '@devicefarmer/adbkit-apkreader';
import type { MemoryFileSystem } from './file-system.js';

export interface InstalledPackage {
  packageName: string;
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

/**
 * The package list `pm` works on. An install reads the real APK's binary manifest and copies the
 * APK to /data/app, as Android does; the list itself is what /data/system/packages.xml holds.
 */
export class PackageManager {
  readonly #packages = new Map<string, InstalledPackage>();

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

  async install(apk: Uint8Array, { replace = true }: { replace?: boolean } = {}): Promise<InstalledPackage> {
    let manifest: { package: string; versionCode: number; versionName: string };
    try {
      manifest = await (await ApkReader.open(Buffer.from(apk))).readManifest();
    } catch (error) {
      throw new InstallError(
        'INSTALL_FAILED_INVALID_APK',
        `Failed to parse APK: ${(error as Error).message}`,
      );
    }
    if (!manifest.package)
      throw new InstallError('INSTALL_PARSE_FAILED_MANIFEST_MALFORMED', 'no package name');
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
      size: apk.byteLength,
      installedAt: new Date(),
    };
    this.fs.write(pkg.path, apk);
    this.#packages.set(pkg.packageName, pkg);
    this.onChange({ kind: 'installed', pkg });
    return pkg;
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
