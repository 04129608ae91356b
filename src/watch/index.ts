export { ChangeFeed, type ChangeFeedOptions } from './change-feed.js';
export type { ChangeFeedEvents, FeedState, ResyncReason } from './feed.js';
