// cphone images: device templates (a Redroid container image plus default and minimum sizes). get,
// describe, create and update (from flags or a file in the API's Image shape), delete.
import { randomUUID } from 'node:crypto';
import { clone, create, fromJson, type JsonValue } from '@bufbuild/protobuf';
import {
  CreateImageRequestSchema,
  DeviceSpecSchema,
  type Image,
  ImageSchema,
  ImageState,
  ScreenSpecSchema,
  UpdateImageRequestSchema,
} from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import { action, type Ctx, collect, dryRun, examples, intOption, requireYes } from '../lib/command.js';
import { UsageError } from '../lib/errors.js';
import {
  age,
  type Column,
  coresText,
  editLabels,
  enumText,
  labelsFrom,
  labelsMatch,
  labelsText,
  mibText,
  printResources,
} from '../lib/output.js';
import { listImages, resolveImage, tenantIdOf } from '../lib/resolve.js';
import { millicores, readDoc, sizeIn } from '../lib/spec.js';
import { watchList } from '../lib/watch.js';

const STATES = { active: ImageState.ACTIVE, deprecated: ImageState.DEPRECATED } as const;

/** The fields UpdateImage may change (its update_mask paths), as the Image's JSON names them. */
const MASK_PATHS: Record<string, string> = {
  displayName: 'display_name',
  containerImage: 'container_image',
  androidVersion: 'android_version',
  sdkLevel: 'sdk_level',
  archs: 'archs',
  defaultSpec: 'default_spec',
  minVcpuMillicores: 'min_vcpu_millicores',
  minMemoryMib: 'min_memory_mib',
  minStorageGib: 'min_storage_gib',
  state: 'state',
  labels: 'labels',
};

const owner = (i: Image) => i.tenantId || 'platform';

const IMAGE_COLUMNS: Column<Image>[] = [
  { header: 'NAME', cell: (i) => i.imageId },
  { header: 'DISPLAY NAME', cell: (i) => i.displayName },
  { header: 'ANDROID', cell: (i) => i.androidVersion || '-' },
  { header: 'SDK', cell: (i) => (i.sdkLevel ? String(i.sdkLevel) : '-') },
  { header: 'ARCH', cell: (i) => i.archs.join(',') || 'any' },
  {
    header: 'STATE',
    cell: (i) => enumText(ImageState, i.state),
    tint: (t, i, p) => (i.state === ImageState.DEPRECATED ? p.yellow(t) : p.green(t)),
  },
  { header: 'AGE', cell: (i) => age(i.createTime) },
  { header: 'CONTAINER IMAGE', cell: (i) => i.containerImage, wide: true },
  { header: 'OWNER', cell: owner, wide: true },
  { header: 'LABELS', cell: (i) => labelsText(i.labels), wide: true },
];

interface ImageFlags {
  file?: string;
  id?: string;
  name?: string;
  containerImage?: string;
  androidVersion?: string;
  sdk?: number;
  arch?: string[];
  cpu?: string;
  memory?: string;
  storage?: string;
  screen?: string;
  minCpu?: string;
  minMemory?: string;
  minStorage?: string;
  label?: string[];
  state?: keyof typeof STATES;
  requestId?: string;
  dryRun?: boolean;
}

function addImageOptions(command: Command): Command {
  return command
    .option(
      '-f, --file <image.yaml>',
      'an Image in YAML or JSON, the API\'s shape ("-" reads stdin); flags override it',
    )
    .option('--name <name>', 'display name, e.g. "Android 14 (arm64)"')
    .option('--container-image <ref>', 'the Redroid image, e.g. redroid/redroid:14.0.0_64only-latest')
    .option('--android-version <version>', 'Android release, e.g. 14')
    .option('--sdk <level>', 'Android API level, e.g. 34', intOption('--sdk', 0, 1000))
    .option('--arch <arch>', 'an architecture it runs on (repeatable; none means any)', collect)
    .option('--cpu <cores>', 'default vCPUs of its phones, e.g. 2 or 1500m')
    .option('--memory <size>', 'default memory, e.g. 4Gi')
    .option('--storage <size>', 'default data disk, e.g. 16Gi')
    .option('--screen <WxH[@dpi]>', 'default screen, e.g. 1080x1920@420')
    .option('--min-cpu <cores>', 'smallest vCPU allocation accepted')
    .option('--min-memory <size>', 'smallest memory accepted')
    .option('--min-storage <size>', 'smallest data disk accepted')
    .option('--dry-run', 'check everything, change nothing');
}

/** The image the file and flags describe, and the update_mask paths they touch. */
async function imageFrom(flags: ImageFlags, current?: Image): Promise<{ image: Image; paths: Set<string> }> {
  let image = create(ImageSchema, {});
  const paths = new Set<string>();
  if (flags.file) {
    const doc = (await readDoc(flags.file)) ?? {};
    try {
      image = fromJson(ImageSchema, doc as JsonValue);
    } catch (e) {
      throw new UsageError(`--file ${flags.file}: ${(e as Error).message}`);
    }
    for (const key of Object.keys(doc as object)) {
      const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      const path = MASK_PATHS[camel];
      if (path) paths.add(path);
    }
  }
  const set = <K extends keyof Image>(field: K, path: string, value: Image[K] | undefined) => {
    if (value === undefined) return;
    image[field] = value;
    paths.add(path);
  };
  set('displayName', 'display_name', flags.name);
  set('containerImage', 'container_image', flags.containerImage);
  set('androidVersion', 'android_version', flags.androidVersion);
  set('sdkLevel', 'sdk_level', flags.sdk);
  set('archs', 'archs', flags.arch);
  set(
    'minVcpuMillicores',
    'min_vcpu_millicores',
    flags.minCpu ? millicores(flags.minCpu, '--min-cpu') : undefined,
  );
  set(
    'minMemoryMib',
    'min_memory_mib',
    flags.minMemory ? sizeIn(flags.minMemory, 'Mi', '--min-memory') : undefined,
  );
  set(
    'minStorageGib',
    'min_storage_gib',
    flags.minStorage ? sizeIn(flags.minStorage, 'Gi', '--min-storage') : undefined,
  );
  set('state', 'state', flags.state ? STATES[flags.state] : undefined);
  if (flags.label?.length) set('labels', 'labels', editLabels(current?.labels ?? image.labels, flags.label));
  if (flags.cpu || flags.memory || flags.storage || flags.screen) {
    // The default spec is one field of the mask: start from the current one so a flag changes only itself.
    const base = image.defaultSpec ?? current?.defaultSpec;
    const s = base ? clone(DeviceSpecSchema, base) : create(DeviceSpecSchema, {});
    if (flags.cpu) s.vcpuMillicores = millicores(flags.cpu);
    if (flags.memory) s.memoryMib = sizeIn(flags.memory, 'Mi', '--memory');
    if (flags.storage) s.storageGib = sizeIn(flags.storage, 'Gi', '--storage');
    if (flags.screen) {
      const m = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(flags.screen);
      if (!m)
        throw new UsageError(`--screen "${flags.screen}" is not WIDTHxHEIGHT[@DPI], e.g. 1080x1920@420`);
      s.screen = create(ScreenSpecSchema, {
        widthPx: Number(m[1]),
        heightPx: Number(m[2]),
        dpi: Number(m[3] ?? 0),
      });
    }
    set('defaultSpec', 'default_spec', s);
  }
  return { image, paths };
}

function describeImage(ctx: Ctx, i: Image): void {
  const d = i.defaultSpec;
  const screen = d?.screen?.widthPx
    ? `${d.screen.widthPx}x${d.screen.heightPx}${d.screen.dpi ? `@${d.screen.dpi}` : ''}`
    : '-';
  const lines = [
    `Name:             ${i.imageId}`,
    `Display name:     ${i.displayName}`,
    `State:            ${enumText(ImageState, i.state)}`,
    `Owner:            ${owner(i)}`,
    `Container image:  ${i.containerImage}`,
    `Android:          ${i.androidVersion || '-'} (SDK ${i.sdkLevel || '-'})`,
    `Architectures:    ${i.archs.join(', ') || 'any'}`,
    `Defaults:         cpu ${d?.vcpuMillicores ? coresText(d.vcpuMillicores) : '-'}, memory ${d?.memoryMib ? mibText(d.memoryMib) : '-'}, storage ${d?.storageGib ? `${d.storageGib}Gi` : '-'}, screen ${screen}`,
    `Minimums:         cpu ${coresText(i.minVcpuMillicores)}, memory ${mibText(i.minMemoryMib)}, storage ${i.minStorageGib}Gi`,
    `Labels:           ${labelsText(i.labels)}`,
    `Created:          ${age(i.createTime)} ago`,
    `Updated:          ${age(i.updateTime)} ago`,
  ];
  ctx.out.write(`${lines.join('\n')}\n`);
}

function printImage(ctx: Ctx, image: Image | undefined, done: string): void {
  if (ctx.out.format === 'table' || ctx.out.format === 'wide') {
    ctx.out.write(`image/${image?.imageId ?? ''} ${done}\n`);
    return;
  }
  printResources(ctx.out, ImageSchema, image ? [image] : [], IMAGE_COLUMNS, {
    single: true,
    name: (i) => i.imageId,
  });
}

export function registerImages(program: Command): void {
  const images = program
    .command('images')
    .alias('image')
    .description('device templates: list, inspect, create, update, deprecate, delete');

  examples(
    images
      .command('get')
      .alias('list')
      .description('list the images your tenant may use, or show the named ones')
      .argument('[images...]', 'image ids or display names')
      .option('--arch <arch>', 'only images that run on this architecture')
      .option('-A, --all', 'also deprecated images')
      .option('-l, --selector <k=v>', 'only images with these labels (repeatable, comma-separated)', collect)
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<{ arch?: string; all?: boolean; selector?: string[]; watch?: boolean }>(
          async (ctx, [names], opts) => {
            const api = await ctx.api();
            const tenantId = await tenantIdOf(api, await ctx.tenant());
            const wanted = (names as string[]) ?? [];
            const selector = labelsFrom(opts.selector);
            const fetch = async () => {
              if (wanted.length) return Promise.all(wanted.map((n) => resolveImage(api, n, tenantId)));
              const all = await listImages(api, {
                tenantId,
                includeDeprecated: Boolean(opts.all),
                ...(opts.arch ? { arch: opts.arch } : {}),
              });
              return all.filter((i) => labelsMatch(i.labels, selector));
            };
            if (opts.watch) {
              await watchList(ctx, fetch, ImageSchema, IMAGE_COLUMNS, (i) => i.imageId);
              return;
            }
            printResources(ctx.out, ImageSchema, await fetch(), IMAGE_COLUMNS, {
              single: wanted.length === 1,
              name: (i) => i.imageId,
            });
          },
        ),
      ),
    [
      'cphone images get',
      'cphone images get --arch arm64 -A -o wide',
      'cphone images get android-14 -o yaml',
    ],
  );

  examples(
    images
      .command('describe')
      .description('an image: container image, Android version, defaults, minimums, labels')
      .argument('<image>', 'image id or display name')
      .action(
        action(async (ctx, [name]) => {
          const api = await ctx.api();
          const image = await resolveImage(api, name as string, await tenantIdOf(api, await ctx.tenant()));
          if (ctx.out.format === 'table' || ctx.out.format === 'wide') describeImage(ctx, image);
          else printImage(ctx, image, '');
        }),
      ),
    ['cphone images describe android-14'],
  );

  examples(
    addImageOptions(
      images
        .command('create')
        .description("create an image from a file (the API's Image shape) or flags")
        .option(
          '--id <id>',
          'its id: 3-63 lowercase letters, digits, "-" (default: generated; or imageId in the file)',
        )
        .option('--label <k=v>', 'label (repeatable)', collect)
        .option('--request-id <key>', 'idempotency key: a retry with the same key returns the same image'),
    ).action(
      action<ImageFlags>(async (ctx, _args, opts) => {
        const api = await ctx.api();
        const { image } = await imageFrom(opts);
        const imageId = opts.id ?? image.imageId;
        const res = await api.images.createImage({
          requestId: opts.requestId ?? randomUUID(),
          tenantId: await tenantIdOf(api, await ctx.tenant()),
          imageId,
          image,
          ...dryRun(opts, CreateImageRequestSchema),
        });
        printImage(ctx, res.image, opts.dryRun ? 'can be created (dry run: nothing was created)' : 'created');
      }),
    ),
    [
      'cphone images create -f android-14.yaml',
      'cphone images create --id android-14 --name "Android 14" --container-image redroid/redroid:14.0.0_64only-latest \\\n    --android-version 14 --sdk 34 --arch arm64 --cpu 2 --memory 4Gi --storage 16Gi --min-memory 2Gi',
    ],
  );

  examples(
    addImageOptions(
      images
        .command('update')
        .description('change an image: only the fields given (flags, or the keys present in --file)')
        .argument('<image>', 'image id or display name')
        .option('--label <k=v>', 'set a label; k- removes it (repeatable)', collect)
        .addOption(
          new Option('--state <state>', 'deprecated keeps its phones but refuses new ones').choices(
            Object.keys(STATES),
          ),
        ),
    ).action(
      action<ImageFlags>(async (ctx, [name], opts) => {
        const api = await ctx.api();
        const current = await resolveImage(api, name as string, await tenantIdOf(api, await ctx.tenant()));
        const { image, paths } = await imageFrom(opts, current);
        if (!paths.size) throw new UsageError('nothing to change: give a field flag or --file');
        image.imageId = current.imageId;
        const res = await api.images.updateImage({
          image,
          updateMask: { paths: [...paths] },
          ...dryRun(opts, UpdateImageRequestSchema),
        });
        printImage(ctx, res.image, opts.dryRun ? 'can be updated (dry run)' : 'updated');
      }),
    ),
    [
      'cphone images update android-14 --state deprecated',
      'cphone images update android-14 --memory 6Gi --label channel=beta',
    ],
  );

  examples(
    images
      .command('delete')
      .description('delete images (refused while phones use them: deprecate instead)')
      .argument('<images...>', 'image ids or display names')
      .option('--yes', 'confirm the deletion')
      .action(
        action<{ yes?: boolean }>(async (ctx, [names], opts) => {
          requireYes(opts, `deleting image ${(names as string[]).join(', ')}`);
          const api = await ctx.api();
          const tenantId = await tenantIdOf(api, await ctx.tenant());
          for (const n of names as string[]) {
            const image = await resolveImage(api, n, tenantId);
            await api.images.deleteImage({ imageId: image.imageId });
            ctx.out.write(`image/${image.imageId} deleted\n`);
          }
        }),
      ),
    ['cphone images delete android-14 --yes'],
  );
}
