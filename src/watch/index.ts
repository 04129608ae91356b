export {
  ChangeFeed,
  type ChangeFeedEvents,
  type ChangeFeedOptions,
  type FeedState,
  type ResyncReason,
  type UnavailableReason,
} from './change-feed.js';
