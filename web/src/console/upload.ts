// Files to and from the platform's artifacts. Up: a file to an artifact through the resumable upload API (ArtifactService): hash it, open an
// upload keyed by the hash (so a retried or interrupted upload of the same file continues where
// the server's committed offset says), send chunks, finalize. An artifact the tenant already has
// is not sent again.
import { type Artifact, ArtifactKind } from '@cphone/proto/api';
import { api } from './api.js';

export async function sha256Hex(file: Blob): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function uploadArtifact(
  file: File,
  kind: ArtifactKind,
  onProgress: (fraction: number) => void,
): Promise<Artifact> {
  const sha256 = await sha256Hex(file);
  const opened = await api.artifacts.createUpload({
    requestId: `console-${kind === ArtifactKind.APK ? 'apk' : 'file'}-${sha256.slice(0, 40)}`,
    kind,
    filename: file.name,
    sizeBytes: BigInt(file.size),
    sha256,
  });
  if (opened.existingArtifact) {
    onProgress(1);
    return opened.existingArtifact;
  }
  const upload = opened.upload;
  if (!upload) throw new Error('CreateUpload answered with neither an upload nor an artifact');
  const chunk = Math.max(1, upload.maxChunkBytes || 4 * 1024 * 1024);
  let offset = Number(upload.committedOffset);
  onProgress(file.size ? offset / file.size : 1);
  while (offset < file.size) {
    const data = new Uint8Array(await file.slice(offset, offset + chunk).arrayBuffer());
    const answer = await api.artifacts.uploadChunk({
      uploadId: upload.uploadId,
      offset: BigInt(offset),
      data,
    });
    offset = Number(answer.committedOffset);
    onProgress(offset / file.size);
  }
  const done = await api.artifacts.finalizeUpload({ uploadId: upload.uploadId });
  if (!done.artifact) throw new Error('FinalizeUpload answered without an artifact');
  return done.artifact;
}

/** An artifact's bytes as a Blob, streamed by DownloadArtifact; `onBytes` hears the running total. */
export async function downloadArtifact(sha256: string, onBytes: (received: number) => void): Promise<Blob> {
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let received = 0;
  for await (const chunk of api.artifacts.downloadArtifact({ sha256 })) {
    parts.push(chunk.data as Uint8Array<ArrayBuffer>);
    received += chunk.data.length;
    onBytes(received);
  }
  return new Blob(parts);
}

/** Hands a Blob to the browser as a download named `filename`. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
