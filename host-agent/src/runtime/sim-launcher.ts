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
  });
