/**
 * Where agents fetch and put artifact bytes (served by the artifact store under /agent/v1, with the
 * host's credential as bearer). Kept in one place so the API and the HTTP routes agree.
 */
export function artifactDownloadUrl(publicUrl: string, sha256: string): string {
  return `${publicUrl.replace(/\/$/, '')}/agent/v1/artifacts/${sha256}`;
}

/** PullFile: the agent PUTs the file here; the store creates a FILE artifact of the tenant. */
export function artifactUploadUrl(publicUrl: string, tenantId: string, filename: string): string {
  const query = new URLSearchParams({ tenant_id: tenantId, filename });
  return `${publicUrl.replace(/\/$/, '')}/agent/v1/artifacts?${query}`;
}
