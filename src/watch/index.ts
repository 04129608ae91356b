export {
  ChangeFeed,
  LAST_CHANGED_APPLICATION,
  type ChangeFeedEvents,
  type ChangeFeedOptions,
  type FeedState,
  type ResyncReason,
  type UnavailableReason,
} from './change-feed.js';
