// The sim runtime starts phones through this seam: by default the in-process virtual phone.
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import type { ScreenSpec } from './types.js';

export interface VirtualPhoneLaunch {
  readonly host: string;
  /** 0 lets the system choose a free port. */
  readonly port: number;
  readonly serial: string;
  readonly bootDelayMs: number;
  readonly screen: ScreenSpec;
  readonly model?: string;
  /** The phone's data folder (its /data volume), kept across stop/start. */
  readonly dataDir?: string;
  /** The Android the image holds (androidFromImage); the phone's default when unknown. */
  readonly android?: { readonly release: string; readonly sdk: number };
}

/** API level of each Android release Redroid publishes (its tags start with the release). */
const SDK_OF_RELEASE: Readonly<Record<string, number>> = {
  '8': 27,
  '9': 28,
  '10': 29,
  '11': 30,
  '12': 31,
  '13': 33,
  '14': 34,
  '15': 35,
  '16': 36,
};

/**
 * The Android a Redroid image reference holds, as a Redroid phone reports it: the tag's major
 * release (`redroid/redroid:14.0.0_64only-latest` -> 14 / API 34). Undefined for other images.
 */
export function androidFromImage(image: string): { release: string; sdk: number } | undefined {
  const major = /:(\d+)(?:\.\d+)*(?:[_-]|$)/.exec(image)?.[1];
  const sdk = major === undefined ? undefined : SDK_OF_RELEASE[major];
  return major !== undefined && sdk !== undefined ? { release: major, sdk } : undefined;
}

export interface LaunchedPhone {
  readonly port: number;
  close(): Promise<void> | void;
}

export type PhoneLauncher = (options: VirtualPhoneLaunch) => Promise<LaunchedPhone>;

/** Starts a virtual phone of `host-agent/src/virtual-phone` in this process. */
export const launchVirtualPhone = (options: VirtualPhoneLaunch): Promise<VirtualPhone> =>
  startVirtualPhone({
    host: options.host,
    port: options.port,
    serial: options.serial,
    bootDelayMs: options.bootDelayMs,
    screen: { width: options.screen.width, height: options.screen.height, dpi: options.screen.dpi },
    ...(options.model !== undefined ? { model: options.model } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    ...(options.android !== undefined ? { android: options.android } : {}),
  });
