import type { FieldMask } from '@bufbuild/protobuf/wkt';
import { InvalidArgumentError } from '../errors.js';

/** `displayName` -> `display_name`: Connect JSON clients send field masks in lowerCamelCase. */
function snake(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The paths of an update mask, each one of `allowed`. An empty or absent mask is refused: an
 * update names what it changes, so a client built against an older API cannot clear new fields.
 */
export function maskPaths(mask: FieldMask | undefined, allowed: readonly string[]): Set<string> {
  const paths = (mask?.paths ?? []).map(snake);
  if (paths.length === 0) {
    throw new InvalidArgumentError('update_mask', '', `must name at least one of ${allowed.join(', ')}`);
  }
  for (const path of paths) {
    if (!allowed.includes(path)) {
      throw new InvalidArgumentError('update_mask', path, `must be one of ${allowed.join(', ')}`);
    }
  }
  return new Set(paths);
}
