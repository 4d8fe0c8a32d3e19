import { create } from '@bufbuild/protobuf';
import {
  type Artifact,
  ArtifactKind,
  ArtifactSchema,
  type Upload,
  UploadSchema,
  UploadState,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, ts } from '../api/convert.js';
import type { ArtifactTable, UploadTable } from '../store/schema.js';

/** Largest chunk UploadChunk accepts; a Connect body of 16 MiB leaves room for the envelope. */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export function kindToProto(kind: 'apk' | 'file'): ArtifactKind {
  return kind === 'apk' ? ArtifactKind.APK : ArtifactKind.FILE;
}

export function kindFromProto(kind: ArtifactKind): 'apk' | 'file' | undefined {
  if (kind === ArtifactKind.APK) return 'apk';
  if (kind === ArtifactKind.FILE) return 'file';
  return undefined;
}

export function artifactToProto(row: Selectable<ArtifactTable>): Artifact {
  return create(
    ArtifactSchema,
    compact({
      sha256: row.sha256,
      tenantId: row.tenant_id,
      kind: kindToProto(row.kind),
      sizeBytes: BigInt(row.size_bytes),
      filename: row.filename,
      apk:
        row.kind === 'apk'
          ? {
              packageName: row.package_name,
              versionCode: BigInt(row.version_code),
              versionName: row.version_name,
              minSdk: row.min_sdk,
              targetSdk: row.target_sdk,
            }
          : undefined,
      createTime: ts(row.create_time),
    }),
  );
}

const STATE: Record<UploadTable['state'], UploadState> = {
  open: UploadState.OPEN,
  finalized: UploadState.FINALIZED,
  failed: UploadState.FAILED,
};

export function uploadToProto(row: Selectable<UploadTable>): Upload {
  return create(
    UploadSchema,
    compact({
      uploadId: row.id,
      tenantId: row.tenant_id,
      kind: kindToProto(row.kind),
      filename: row.filename,
      sizeBytes: BigInt(row.expected_size),
      sha256: row.expected_sha256,
      committedOffset: BigInt(row.committed_bytes),
      maxChunkBytes: MAX_CHUNK_BYTES,
      state: STATE[row.state],
      createTime: ts(row.create_time),
      expireTime: ts(row.expire_time),
    }),
  );
}
