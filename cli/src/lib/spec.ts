// A device as people write it: flags (--image, --cpu 2, --memory 4Gi …) or a YAML/JSON file in the
// API's own shape (CreateDeviceRequest: displayName, labels, spec, placement, desiredPowerState,
// restartPolicy; snake_case names work too). Flags given with -f override the file's fields.
import { readFile } from 'node:fs/promises';
import { create, fromJson, type JsonValue } from '@bufbuild/protobuf';
import {
  type CreateDeviceRequest,
  CreateDeviceRequestSchema,
  DeviceSpecSchema,
  PlacementSchema,
  ScreenSpecSchema,
} from '@cphone/proto/api';
import { parse } from 'yaml';
import { UsageError } from './errors.js';
import { labelsFrom } from './output.js';

export interface SpecFlags {
  file?: string;
  image?: string;
  cpu?: string;
  memory?: string;
  storage?: string;
  screen?: string;
  label?: string[];
  nodeSelector?: string[];
  arch?: string;
  host?: string;
  name?: string;
}

/** Options shared by `devices create` and `hosts explain`. */
export const SPEC_OPTIONS: readonly [string, string][] = [
  ['-f, --file <spec.yaml>', 'a CreateDeviceRequest in YAML or JSON ("-" reads stdin)'],
  ['--image <id>', 'image id (spec.imageId)'],
  ['--cpu <cores>', 'vCPUs, e.g. 2 or 1.5 or 1500m'],
  ['--memory <size>', 'memory, e.g. 4Gi or 2048Mi'],
  ['--storage <size>', 'data disk, e.g. 16Gi'],
  ['--screen <WxH[@dpi]>', 'screen, e.g. 1080x1920@420'],
  ['--node-selector <k=v>', 'only hosts with this label (repeatable)'],
  ['--arch <arch>', 'only hosts of this architecture (arm64, amd64)'],
  ['--host <id>', 'pin to one host'],
];

export async function readDoc(path: string): Promise<unknown> {
  const text =
    path === '-'
      ? await readStdin()
      : await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new UsageError(`--file ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        });
  try {
    return parse(text);
  } catch (e) {
    throw new UsageError(`--file ${path}: not valid YAML or JSON: ${(e as Error).message}`);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function deviceRequestFrom(flags: SpecFlags): Promise<CreateDeviceRequest> {
  let request = create(CreateDeviceRequestSchema, {});
  if (flags.file) {
    const doc = await readDoc(flags.file);
    try {
      request = fromJson(CreateDeviceRequestSchema, (doc ?? {}) as JsonValue);
    } catch (e) {
      throw new UsageError(`--file ${flags.file}: ${(e as Error).message}`);
    }
  }
  request.spec ??= create(DeviceSpecSchema, {});
  const s = request.spec;
  if (flags.image) s.imageId = flags.image;
  if (flags.cpu) s.vcpuMillicores = millicores(flags.cpu);
  if (flags.memory) s.memoryMib = sizeIn(flags.memory, 'Mi', '--memory');
  if (flags.storage) s.storageGib = sizeIn(flags.storage, 'Gi', '--storage');
  if (flags.screen) {
    const m = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(flags.screen);
    if (!m) throw new UsageError(`--screen "${flags.screen}" is not WIDTHxHEIGHT[@DPI], e.g. 1080x1920@420`);
    s.screen ??= create(ScreenSpecSchema, {});
    s.screen.widthPx = Number(m[1]);
    s.screen.heightPx = Number(m[2]);
    if (m[3]) s.screen.dpi = Number(m[3]);
  }
  if (flags.name) request.displayName = flags.name;
  if (flags.label?.length) request.labels = { ...request.labels, ...labelsFrom(flags.label, '--label') };
  if (flags.nodeSelector?.length || flags.arch || flags.host) {
    request.placement ??= create(PlacementSchema, {});
    const p = request.placement;
    if (flags.nodeSelector?.length)
      p.nodeSelector = { ...p.nodeSelector, ...labelsFrom(flags.nodeSelector, '--node-selector') };
    if (flags.arch) p.arch = flags.arch;
    if (flags.host) p.hostId = flags.host;
  }
  if (!s.imageId) throw new UsageError('an image is required: --image ID or spec.imageId in --file');
  return request;
}

export function millicores(value: string, flag = '--cpu'): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(value.trim());
  if (!m) throw new UsageError(`${flag} "${value}" is not a number of cores (2, 1.5) or millicores (1500m)`);
  return m[2] ? Math.round(Number(m[1])) : Math.round(Number(m[1]) * 1000);
}

/** "4Gi", "2048Mi", "2G", or a bare number in the target unit. */
export function sizeIn(value: string, unit: 'Mi' | 'Gi', flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?i?B?$/i.exec(value.trim());
  if (!m) throw new UsageError(`${flag} "${value}" is not a size such as 4Gi or 2048Mi`);
  const n = Number(m[1]);
  const suffix = (m[2] ?? unit).replace(/i$/i, '').toUpperCase();
  const exp = { K: 1, M: 2, G: 3, T: 4 }[suffix as 'K'] ?? 0;
  const bytes = n * 1024 ** exp;
  const out = bytes / 1024 ** (unit === 'Mi' ? 2 : 3);
  if (!Number.isInteger(out)) throw new UsageError(`${flag} "${value}" is not a whole number of ${unit}B`);
  return out;
}
