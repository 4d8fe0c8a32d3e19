// @devicefarmer/adbkit-apkreader ships no types; this covers the part the phone uses.
declare module '@devicefarmer/adbkit-apkreader' {
  interface ApkManifest {
    package: string;
    versionCode: number;
    versionName: string;
  }
  interface ApkReader {
    readManifest(): Promise<ApkManifest>;
  }
  const ApkReaderStatic: { open(apk: string | Buffer): Promise<ApkReader> };
  export default ApkReaderStatic;
}
