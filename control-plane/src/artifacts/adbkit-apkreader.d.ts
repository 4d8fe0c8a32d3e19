// The package ships no types; this is the part of its API the control plane uses.
declare module '@devicefarmer/adbkit-apkreader' {
  interface Manifest {
    package?: unknown;
    versionCode?: unknown;
    versionName?: unknown;
    usesSdk?: { minSdkVersion?: unknown; targetSdkVersion?: unknown } | null;
  }
  interface ApkReader {
    readManifest(): PromiseLike<Manifest>;
  }
  const ApkReader: { open(path: string | Buffer): PromiseLike<ApkReader> };
  export default ApkReader;
}
