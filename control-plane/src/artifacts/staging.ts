// Upload bytes staged on local disk at `<dataDir>/uploads/<upload id>` until finalize moves them
// into the blob store.
import { constants } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FailedPreconditionError } from '../errors.js';

export function createStaging(dataDir: string) {
  const dir = join(dataDir, 'uploads');
  const pathOf = (uploadId: string) => join(dir, uploadId);
  return {
    dir,
    pathOf,
    async create(uploadId: string): Promise<void> {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await (await open(pathOf(uploadId), 'w', 0o600)).close();
    },
    /**
     * Writes `data` at `offset` (the committed length) and makes it durable. Bytes past the offset
     * (a write that crashed before its commit reached the database) are cut off first.
     */
    async write(uploadId: string, offset: number, data: Uint8Array): Promise<void> {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = await open(pathOf(uploadId), constants.O_WRONLY | constants.O_CREAT, 0o600);
      try {
        const { size } = await file.stat();
        if (size < offset) {
          throw new FailedPreconditionError(
            `upload ${JSON.stringify(uploadId)} lost its staged bytes on this server (${size} of ${offset}); start a new upload`,
          );
        }
        await file.truncate(offset);
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await file.write(data, written, data.length - written, offset + written);
          written += bytesWritten;
        }
        await file.datasync();
      } finally {
        await file.close();
      }
    },
    async remove(uploadId: string): Promise<void> {
      await rm(pathOf(uploadId), { force: true });
    },
  };
}

export type Staging = ReturnType<typeof createStaging>;
