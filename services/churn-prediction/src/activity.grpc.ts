import { featureV1 } from '@aisle/contracts';
import { createGrpcClient, isGrpcError, type grpc } from '@aisle/runtime';
import { ActivityUnavailableError, type ActivitySource, type UserActivity } from './churn.service';

/** Leaves the caller this long to turn a late answer into its own status. */
const DEADLINE_MARGIN_MS = 50;

/**
 * The users' activity, from the feature service's gRPC API. Every failure to get an answer (down,
 * late, overloaded) is ActivityUnavailableError: scoring can wait, Predict says UNAVAILABLE.
 */
export function featureActivitySource(opts: {
  address: string;
  tenant: string;
  credentials: grpc.ChannelCredentials;
  timeoutMs: number;
}): ActivitySource & { close(): void } {
  const { tenant } = opts;
  const client = createGrpcClient(featureV1.FeatureServiceService, opts.address, {
    deadlineMs: opts.timeoutMs,
    credentials: opts.credentials,
  });
  const unavailable = (err: unknown): never => {
    if (isGrpcError(err))
      throw new ActivityUnavailableError(`feature service: ${err.code} ${err.details}`, { cause: err });
    throw err;
  };
  return {
    close: () => client.close(),
    async users(ids, { deadline } = {}) {
      const deadlineMs =
        deadline === undefined ? opts.timeoutMs : Math.min(opts.timeoutMs, deadline - Date.now() - DEADLINE_MARGIN_MS);
      if (deadlineMs <= 0) throw new ActivityUnavailableError('no time left to ask the feature service');
      const res = await client
        .getUserFeatures({ tenant, userIds: [...ids], recentLimit: 0 }, { deadlineMs })
        .catch(unavailable);
      const users = res.users.map((u): UserActivity => ({
        userId: u.userId,
        known: u.known,
        firstSeen: u.firstSeenAt?.getTime() ?? 0,
        lastSeen: u.lastSeenAt?.getTime() ?? 0,
        sessions: u.sessions,
        events: u.counts
          ? u.counts.view +
            u.counts.click +
            u.counts.addToCart +
            u.counts.removeFromCart +
            u.counts.purchase +
            u.counts.search
          : 0,
        purchases: u.purchases,
        spend: u.spend,
        recent: u.recent.map((r) => ({ type: r.type, at: r.occurredAt?.getTime() ?? 0 })),
      }));
      return { users, asOf: res.asOf?.getTime() ?? 0 };
    },
    listUsers: (pageSize, pageToken) => client.listUsers({ tenant, pageSize, pageToken }).catch(unavailable),
  };
}
