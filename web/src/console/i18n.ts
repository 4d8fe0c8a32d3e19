// The console's words in the reader's language: English or Simplified Chinese, chosen from the
// saved choice, else the browser's languages. Switching re-renders every component that listens
// for `locale-changed` (the app shell does, and re-renders its pages).
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import { en, type MessageKey, type Messages, zhCN } from './messages.js';

export type Locale = 'en' | 'zh-CN';
export const LOCALES: readonly { id: Locale; name: string }[] = [
  { id: 'en', name: 'English' },
  { id: 'zh-CN', name: '简体中文' },
];

const TABLES: Record<Locale, Messages> = { en, 'zh-CN': zhCN };
const STORAGE_KEY = 'cphone.locale';

function initialLocale(): Locale {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (saved === 'en' || saved === 'zh-CN') return saved;
  const wanted = globalThis.navigator?.languages ?? [];
  return wanted.some((l) => l.toLowerCase().startsWith('zh')) ? 'zh-CN' : 'en';
}

let current: Locale = initialLocale();
export const localeEvents = new EventTarget();

export function locale(): Locale {
  return current;
}

export function setLocale(next: Locale): void {
  if (next === current) return;
  current = next;
  globalThis.localStorage?.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
  localeEvents.dispatchEvent(new Event('locale-changed'));
}

/** The message `key` in the current language, `{name}` placeholders filled from `params`. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = TABLES[current][key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** A protobuf timestamp as the reader writes a date and time; empty when unset. */
export function formatTime(time: Timestamp | undefined): string {
  if (!time) return '';
  return new Intl.DateTimeFormat(current, { dateStyle: 'medium', timeStyle: 'short' }).format(
    timestampDate(time),
  );
}
