import ApkReader from '@devicefarmer/adbkit-apkreader';
import { InvalidArgumentError } from '../errors.js';

export interface ApkFacts {
  packageName: string;
  versionCode: number;
  versionName: string;
  minSdk: number;
  targetSdk: number;
}

const PACKAGE = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$/;

function int(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 0;
}

/**
 * Reads an APK's binary AndroidManifest.xml. Anything that is not a zip holding a parsable
 * manifest with a package name is INVALID_ARGUMENT naming the upload: the client sent a bad file.
 */
export async function readApkFacts(path: string, uploadId: string): Promise<ApkFacts> {
  let manifest: Awaited<ReturnType<Awaited<ReturnType<typeof ApkReader.open>>['readManifest']>>;
  try {
    manifest = await (await ApkReader.open(path)).readManifest();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidArgumentError(
      'upload_id',
      uploadId,
      `is not an APK (a zip with AndroidManifest.xml): ${reason}`,
    );
  }
  const packageName = typeof manifest.package === 'string' ? manifest.package : '';
  if (!PACKAGE.test(packageName)) {
    throw new InvalidArgumentError(
      'upload_id',
      uploadId,
      `the APK manifest's package ${JSON.stringify(packageName)} is not a package name`,
    );
  }
  return {
    packageName,
    versionCode: int(manifest.versionCode),
    versionName: typeof manifest.versionName === 'string' ? manifest.versionName : '',
    minSdk: int(manifest.usesSdk?.minSdkVersion),
    targetSdk: int(manifest.usesSdk?.targetSdkVersion),
  };
}
