import { DEFAULT_TENANT, featureV1, Headers, splitSubject, Subjects } from '@aisle/contracts';
import { decodeForget, header, type Logger, type NatsConnection } from '@aisle/runtime';

/** What a user-keyed cache needs to follow feature changes (a `UserWarmer`). */
export interface UserInvalidation {
  /** The user changed: what is cached of them is stale. */
  updated(userId: string): void;
  /** The user is to be forgotten: what is cached of them goes. */
  forgotten(userId: string): void;
  clear(): void;
}

/** The user caches of each tenant a replica serves. */
export interface UserCaches {
  /** The caches holding this tenant's users (none for a tenant not served here). */
  of(tenant: string): readonly UserInvalidation[];
  /** Every cache (all are dropped after a reconnect). */
  all(): Iterable<UserInvalidation>;
}

/**
 * Tells the user caches as soon as the feature service announces a change
 * (`aisle.features.v1.user_updated`, published after the change is stored), so that a new event shows
 * in the next request. A plain subscription: every replica hears every update. After a reconnect the
 * updates missed meanwhile are unknown, so everything cached is dropped.
 */
export function followUserUpdates(
  nc: NatsConnection,
  caches: UserCaches,
  logger: Logger,
  onUpdate: (tenant: string) => void = () => undefined,
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
      const tenant = update.tenant || DEFAULT_TENANT;
      const of = caches.of(tenant);
      if (of.length === 0) return;
      for (const c of of) c.updated(update.userId);
      onUpdate(tenant);
    },
  });
  // A forgotten user's cached context goes at once: the next answer for them is an anonymous one (ranking
  // stores no user data of its own; stale() no longer has the entry either).
  const forget = nc.subscribe(Subjects.privacyForgetAll, {
    callback: (err, msg) => {
      if (err) return;
      const req = decodeForget(msg.data, header(msg.headers, Headers.contentType));
      const tenant = splitSubject(msg.subject, 'aisle.privacy.v1')?.tenant;
      if (typeof req === 'string' || !req.userId || !tenant || (req.tenant && req.tenant !== tenant)) return;
      for (const c of caches.of(tenant)) c.forgotten(req.userId);
    },
  });
  // Ends when the connection closes.
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') for (const c of caches.all()) c.clear();
  })();
  return {
    stop: () => {
      sub.unsubscribe();
      forget.unsubscribe();
    },
  };
}
