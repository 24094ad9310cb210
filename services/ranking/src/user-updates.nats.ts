import { DEFAULT_TENANT, featureV1, Subjects } from '@aisle/contracts';
import type { Logger, NatsConnection } from '@aisle/runtime';

/** What a user-keyed cache needs to follow feature changes. */
export interface UserInvalidation {
  invalidate(userId: string): void;
  clear(): void;
}

/**
 * Drops a user's cached context as soon as the feature service announces a change
 * (`aisle.features.v1.user_updated`, published after the change is stored), so that a new event shows
 * in the next request. A plain subscription: every replica hears every update. After a reconnect the
 * updates missed meanwhile are unknown, so everything cached is dropped.
 */
export function followUserUpdates(
  nc: NatsConnection,
  tenant: string,
  caches: readonly UserInvalidation[],
  logger: Logger,
  onUpdate: () => void = () => undefined,
): { stop(): void } {
  const sub = nc.subscribe(Subjects.userFeaturesUpdated, {
    callback: (err, msg) => {
      if (err) return;
      let update: featureV1.UserFeaturesUpdated;
      try {
        update = featureV1.UserFeaturesUpdated.decode(msg.data);
      } catch {
        logger.warn('undecodable user_updated message ignored', { subject: msg.subject });
        return;
      }
      if ((update.tenant || DEFAULT_TENANT) !== tenant) return;
      for (const c of caches) c.invalidate(update.userId);
      onUpdate();
    },
  });
  // Ends when the connection closes.
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') for (const c of caches) c.clear();
  })();
  return { stop: () => sub.unsubscribe() };
}
