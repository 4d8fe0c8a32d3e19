// @cphone/sfu/testing: what tests of the sfu, and of the agent around it, use to drive it.
export { type MediasoupCensus, type MediasoupCounts, startMediasoupCensus } from './census.js';
export {
  launchChromium,
  ViewerPage,
  type ViewerStartOptions,
  type ViewerState,
  viewerBundle,
} from './chromium.js';
export { type FixtureFeed, FixtureFeeds, type FixtureFeedsOptions } from './fixture-feeds.js';
export {
  type AccessUnit,
  FIXTURE_FPS,
  type H264Recording,
  loadH264Recording,
  loadOpusPackets,
  RtpPacketizer,
  splitAnnexB,
} from './media-fixtures.js';
export { playerPageHtml } from './player-page.js';
export { type CloseInfo, SignalClient } from './signal-client.js';
export { startTestSfu, type TestSfu } from './test-sfu.js';
export { type TestTokens, testTokens } from './tokens.js';
