// Public API of the Tribune viewer client (Node and browser). See client/README.md.

export { Viewer, SubscriptionRefusedError, DEFAULT_REGION_TIMEOUT_MS, DEFAULT_REGION_REPLAY, DEFAULT_DELIVERED_IDS } from './viewer.js'
export type { ViewerOptions, ViewerEvents, ReconnectInfo, RegionChange, StateMessage, StateWatch, WatchFeedOptions } from './viewer.js'
export { ServerUnavailableError, closedBeforeAnswer, parseRetryAfter, unavailableConnackCode, upgradeRefusalHook } from './refusal.js'
export type { FinishRequest, UpgradeRequest, UpgradeResponse } from './refusal.js'
export { TargetRotation, RegionRotation, shuffled, urlList, regionList, isRegions, withoutPassword } from './targets.js'
export type { BrokerUrls, BrokerRegions, BrokerTarget } from './targets.js'
export { DeliveredIds, IdResume, eventId } from './resume-by-id.js'
export type { IdDecision } from './resume-by-id.js'
export { FeedSubscription, FEED_TRANSITIONS, SubackFailureError, canTransition } from './feed-subscription.js'
export type {
  FeedState, FeedStateChange, FeedGap, FeedStats, FeedSubscriptionEvents, FeedSubscriptionOptions, FeedTransport, QoS
} from './feed-subscription.js'
export { Position } from './position.js'
export type { PositionDecision } from './position.js'
export { parseFeedPayload, decodePayload, payloadText } from './envelope.js'
export type { FeedEnvelope, FeedPosition, ResetNotice, ParsedFeedPayload } from './envelope.js'
export {
  replayFilter, parseFeedStart, isFeedLikeTopic, topicMatches, isValidTopicFilter, isValidEpoch, assertFeedTopic
} from './replay.js'
export type { FeedStart, NamedFeedStart } from './replay.js'
export { backoffDelay, backoffOptions, reconnectDelay, DEFAULT_BACKOFF } from './backoff.js'
export type { AttemptFailure, BackoffOptions } from './backoff.js'
export { TypedEmitter } from './emitter.js'
export type { EventMap, Listener } from './emitter.js'
