// Every string the player shows or reads out (labels, states, close reasons), in English and
// Simplified Chinese. The element picks a table from its `lang` attribute, else the document's.

export interface Messages {
  readonly screen: string;
  readonly keyboard: string;
  readonly toolbar: string;
  readonly back: string;
  readonly home: string;
  readonly appSwitch: string;
  readonly volumeUp: string;
  readonly volumeDown: string;
  readonly power: string;
  readonly rotate: string;
  readonly fullscreen: string;
  readonly unmute: string;
  readonly mute: string;
  readonly stats: string;
  readonly quality: string;
  readonly qualityAuto: string;
  readonly viewOnly: string;
  readonly connecting: string;
  readonly connected: string;
  readonly reconnecting: string;
  readonly closed: string;
  readonly noSession: string;
  readonly fps: string;
  readonly bitrate: string;
  readonly rtt: string;
  readonly loss: string;
  readonly glassToGlass: string;
  readonly firstFrame: string;
  /** Why the stream closed, by close code (see the sfu's close codes); `other` for the rest. */
  readonly close: Readonly<Record<number, string>> & { readonly expired: string; readonly other: string };
}

const en: Messages = {
  screen: 'Phone screen',
  keyboard: 'Type on the phone',
  toolbar: 'Phone buttons',
  back: 'Back',
  home: 'Home',
  appSwitch: 'Recent apps',
  volumeUp: 'Volume up',
  volumeDown: 'Volume down',
  power: 'Power',
  rotate: 'Rotate',
  fullscreen: 'Full screen',
  unmute: 'Turn sound on',
  mute: 'Turn sound off',
  stats: 'Show statistics',
  quality: 'Picture quality',
  qualityAuto: 'Auto',
  viewOnly: 'View only',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
  noSession: 'No stream session: set a token and sfu-url, a session or a tokenProvider',
  fps: 'fps',
  bitrate: 'bitrate',
  rtt: 'RTT',
  loss: 'loss',
  glassToGlass: 'glass-to-glass',
  firstFrame: 'first frame',
  close: {
    1000: 'The stream ended',
    1001: 'The phone’s host is restarting',
    1006: 'The connection was lost',
    4400: 'The player sent a message the host refused',
    4401: 'The stream token is not valid',
    4403: 'This session may not control the phone',
    4404: 'The phone is not available',
    4408: 'The host did not get the join in time',
    4409: 'Too many people are watching this phone',
    4410: 'The session was revoked',
    4411: 'The phone was stopped',
    4412: 'The session was opened in another window',
    4415: 'This browser cannot play the stream',
    4500: 'The host had an internal error',
    4503: 'The host’s media restarted',
    expired: 'The stream token has expired',
    other: 'The stream closed',
  },
};

const zhCN: Messages = {
  screen: '手机屏幕',
  keyboard: '在手机上输入',
  toolbar: '手机按键',
  back: '返回',
  home: '主屏幕',
  appSwitch: '最近应用',
  volumeUp: '音量加',
  volumeDown: '音量减',
  power: '电源',
  rotate: '旋转',
  fullscreen: '全屏',
  unmute: '打开声音',
  mute: '关闭声音',
  stats: '显示统计',
  quality: '画质',
  qualityAuto: '自动',
  viewOnly: '仅观看',
  connecting: '正在连接…',
  connected: '已连接',
  reconnecting: '正在重新连接…',
  closed: '已断开',
  noSession: '没有串流会话：请设置 token 和 sfu-url、session 或 tokenProvider',
  fps: '帧率',
  bitrate: '码率',
  rtt: '往返时延',
  loss: '丢包',
  glassToGlass: '端到端时延',
  firstFrame: '首帧',
  close: {
    1000: '串流已结束',
    1001: '手机所在主机正在重启',
    1006: '连接已中断',
    4400: '主机拒绝了播放器发送的消息',
    4401: '串流令牌无效',
    4403: '此会话无权控制手机',
    4404: '手机不可用',
    4408: '主机未及时收到加入请求',
    4409: '观看此手机的人数已满',
    4410: '会话已被撤销',
    4411: '手机已停止',
    4412: '会话已在另一个窗口中打开',
    4415: '此浏览器无法播放该串流',
    4500: '主机内部错误',
    4503: '主机的媒体服务已重启',
    expired: '串流令牌已过期',
    other: '串流已关闭',
  },
};

const TABLES: Readonly<Record<string, Messages>> = { en, 'zh-CN': zhCN };

/** The table for a BCP 47 tag: zh (any Chinese but Traditional) is zh-CN; anything else English. */
export function messagesFor(lang: string | null | undefined): Messages {
  const tag = (lang ?? '').toLowerCase();
  if (tag.startsWith('zh') && !/^zh-(tw|hk|mo|hant)/.test(tag)) return TABLES['zh-CN'] ?? en;
  return en;
}

/** The close in words: the table's text for its code, the sfu's own message after it when it has one. */
export function closeText(m: Messages, code: number, reason: string, expired: boolean): string {
  const words = expired ? m.close.expired : (m.close[code] ?? m.close.other);
  // The sfu's reason is `REASON: message`; the message is fit to show (and may be the revoker's).
  const detail = reason.includes(': ') ? reason.slice(reason.indexOf(': ') + 2) : '';
  return detail && !expired ? `${words} (${code}: ${detail})` : `${words} (${code})`;
}
