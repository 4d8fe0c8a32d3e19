// cphone artifacts: the APKs and files of a tenant, addressed by sha256. get, describe, upload
// (resumable), download (resumes from the local file's size).
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Artifact, ArtifactKind, ArtifactSchema } from '@cphone/proto/api';
import { type Command, Option } from 'commander';
import type { Api } from '../lib/api.js';
import { action, type Ctx, examples } from '../lib/command.js';
import { CliError, EXIT, UsageError } from '../lib/errors.js';
import { age, type Column, enumText, printResources } from '../lib/output.js';
import { bytesText } from '../lib/progress.js';
import { listAll } from '../lib/resolve.js';
import {
  downloadArtifact,
  UPLOAD_OPTIONS,
  type UploadFlags,
  uploadFile,
  uploadOptions,
} from '../lib/transfer.js';
import { watchList } from '../lib/watch.js';

const packageText = (a: Artifact) =>
  a.apk?.packageName ? `${a.apk.packageName}${a.apk.versionName ? `@${a.apk.versionName}` : ''}` : '-';

export const ARTIFACT_COLUMNS: Column<Artifact>[] = [
  { header: 'SHA256', cell: (a) => a.sha256.slice(0, 12) },
  { header: 'KIND', cell: (a) => enumText(ArtifactKind, a.kind) },
  { header: 'FILENAME', cell: (a) => a.filename || '-' },
  { header: 'SIZE', cell: (a) => bytesText(Number(a.sizeBytes)) },
  { header: 'PACKAGE', cell: packageText },
  { header: 'AGE', cell: (a) => age(a.createTime) },
  { header: 'DIGEST', cell: (a) => a.sha256, wide: true },
  { header: 'TENANT', cell: (a) => a.tenantId, wide: true },
  {
    header: 'EXPIRES',
    cell: (a) => (a.expireTime ? timestampDate(a.expireTime).toISOString() : 'never'),
    wide: true,
  },
];

function kindOf(value: string | undefined): ArtifactKind {
  if (value === undefined) return ArtifactKind.UNSPECIFIED;
  return value === 'apk' ? ArtifactKind.APK : ArtifactKind.FILE;
}

async function listArtifacts(
  api: Api,
  tenantId: string,
  kind: ArtifactKind,
  packageName = '',
): Promise<Artifact[]> {
  return listAll(async (pageToken) => {
    const r = await api.artifacts.listArtifacts({ tenantId, pageSize: 1000, pageToken, kind, packageName });
    return { items: r.artifacts, nextPageToken: r.nextPageToken };
  });
}

/** An artifact by its sha256, or by a prefix of at least 6 hex characters (as git takes commits). */
export async function resolveArtifact(ctx: Ctx, ref: string): Promise<Artifact> {
  const api = await ctx.api();
  const tenantId = await ctx.tenant();
  const sha = ref.toLowerCase();
  if (!/^[0-9a-f]{6,64}$/.test(sha)) {
    throw new UsageError(`"${ref}" is not a sha256 (64 hex characters) or a prefix of at least 6`);
  }
  if (sha.length === 64) {
    const { artifact } = await api.artifacts.getArtifact({ tenantId, sha256: sha });
    if (artifact) return artifact;
  }
  const matches = (await listArtifacts(api, tenantId, ArtifactKind.UNSPECIFIED)).filter((a) =>
    a.sha256.startsWith(sha),
  );
  if (matches.length === 1 && matches[0]) return matches[0];
  if (!matches.length) throw new CliError(`NOT_FOUND: artifact "${ref}" does not exist`, EXIT.notFound);
  throw new CliError(
    `INVALID_ARGUMENT: ${matches.length} artifacts start with "${ref}": give more of the sha256`,
    EXIT.invalidArgument,
  );
}

function print(ctx: Ctx, items: Artifact[], single: boolean): void {
  printResources(ctx.out, ArtifactSchema, items, ARTIFACT_COLUMNS, { single, name: (a) => a.sha256 });
}

function describe(ctx: Ctx, a: Artifact): void {
  if (ctx.out.format !== 'table' && ctx.out.format !== 'wide') {
    print(ctx, [a], true);
    return;
  }
  const time = (t: Artifact['createTime']) =>
    t ? `${timestampDate(t).toISOString()} (${age(t)} ago)` : 'never';
  const lines = [
    `SHA256:     ${a.sha256}`,
    `Kind:       ${enumText(ArtifactKind, a.kind)}`,
    `Filename:   ${a.filename || '-'}`,
    `Size:       ${bytesText(Number(a.sizeBytes))} (${a.sizeBytes} bytes)`,
    `Tenant:     ${a.tenantId}`,
    `Created:    ${time(a.createTime)}`,
    `Expires:    ${a.expireTime ? time(a.expireTime) : 'never (kept)'}`,
    ...(a.apk
      ? [
          'APK:',
          `  package:  ${a.apk.packageName}`,
          `  version:  ${a.apk.versionName || '-'} (code ${a.apk.versionCode})`,
          `  sdk:      min ${a.apk.minSdk}, target ${a.apk.targetSdk}`,
          `  abis:     ${a.apk.nativeAbis.join(', ') || 'none (pure Java/Kotlin)'}`,
        ]
      : []),
  ];
  ctx.out.write(`${lines.join('\n')}\n`);
}

export function registerArtifacts(program: Command): void {
  const artifacts = program
    .command('artifacts')
    .alias('artifact')
    .alias('art')
    .description('APKs and files uploaded for phones: list, inspect, upload, download');

  examples(
    artifacts
      .command('get')
      .alias('list')
      .description('list artifacts (newest first), or show the named ones')
      .argument('[artifacts...]', 'sha256 or a prefix of it')
      .addOption(new Option('--kind <kind>', 'only this kind').choices(['apk', 'file']))
      .option('--package <name>', 'only APKs of this package')
      .option('-w, --watch', 'keep printing changes (polls every 2 s)')
      .action(
        action<{ kind?: string; package?: string; watch?: boolean }>(async (ctx, [refs], opts) => {
          const api = await ctx.api();
          const tenantId = await ctx.tenant();
          const wanted = (refs as string[]) ?? [];
          const fetch = async () =>
            wanted.length
              ? Promise.all(wanted.map((r) => resolveArtifact(ctx, r)))
              : listArtifacts(api, tenantId, kindOf(opts.kind), opts.package);
          if (opts.watch) {
            await watchList(ctx, fetch, ArtifactSchema, ARTIFACT_COLUMNS, (a) => a.sha256);
            return;
          }
          print(ctx, await fetch(), wanted.length === 1);
        }),
      ),
    ['cphone artifacts get', 'cphone artifacts get --kind apk --package com.example.app -o wide'],
  );

  examples(
    artifacts
      .command('describe')
      .description("an artifact's size, name, times and, for an APK, its package, version and SDKs")
      .argument('<artifact>', 'sha256 or a prefix of it')
      .action(action(async (ctx, [ref]) => describe(ctx, await resolveArtifact(ctx, ref as string)))),
    ['cphone artifacts describe 3f2a9c'],
  );

  const upload = artifacts
    .command('upload')
    .description('upload a file (resumable: run the same command again after an interruption to continue)')
    .argument('<file>', 'the local file')
    .addOption(
      new Option('--kind <kind>', 'what it is (default: apk for *.apk, else file)').choices(['apk', 'file']),
    );
  for (const [flags, help, parse] of UPLOAD_OPTIONS) upload.option(flags, help, parse);
  examples(
    upload.action(
      action<UploadFlags & { kind?: string }>(async (ctx, [file], opts) => {
        const path = file as string;
        const kind = opts.kind
          ? kindOf(opts.kind)
          : path.toLowerCase().endsWith('.apk')
            ? ArtifactKind.APK
            : ArtifactKind.FILE;
        const artifact = await uploadFile(ctx, path, uploadOptions(kind, opts));
        if (ctx.out.format === 'table' || ctx.out.format === 'wide') ctx.out.write(`${artifact.sha256}\n`);
        else print(ctx, [artifact], true);
      }),
    ),
    [
      'cphone artifacts upload app-release.apk',
      'cphone artifacts upload dataset.bin --kind file --limit-rate 2Mi',
    ],
  );

  examples(
    artifacts
      .command('download')
      .description('write an artifact to a file; a partial file is continued from its size')
      .argument('<artifact>', 'sha256 or a prefix of it')
      .option('--file <path>', 'where to write it (default: its file name here; "-" for stdout)')
      .option('--restart', 'start again from byte 0 instead of continuing a partial file')
      .action(
        action<{ file?: string; restart?: boolean }>(async (ctx, [ref], opts) => {
          const artifact = await resolveArtifact(ctx, ref as string);
          const path = opts.file ?? (artifact.filename || artifact.sha256);
          const saved = await downloadArtifact(ctx, artifact, path, { resume: !opts.restart });
          if (path !== '-' && ctx.out.format !== 'table' && ctx.out.format !== 'wide') {
            print(ctx, [artifact], true);
          } else if (path !== '-') {
            ctx.out.write(`${saved.path}\n`);
          }
        }),
      ),
    ['cphone artifacts download 3f2a9c --file app.apk'],
  );
}
