import { churnV1 } from '@aisle/contracts';
import type { ChurnRiskPort } from '@aisle/ranking-core';
import { createGrpcClient, type grpc, type GrpcClient } from '@aisle/runtime';
import { fromPinned } from './arm-ports';

export type ChurnGrpcClient = GrpcClient<typeof churnV1.ChurnServiceService>;

/** One channel to churn-prediction, shared by every tenant's port. */
export function churnGrpcClient(address: string, credentials?: grpc.ChannelCredentials): ChurnGrpcClient {
  return createGrpcClient(churnV1.ChurnServiceService, address, {
    channelOptions: { 'grpc.keepalive_time_ms': 30_000 },
    ...(credentials ? { credentials } : {}),
  });
}

/**
 * One tenant's churn risk over churn-prediction's gRPC API (one deadline per call, from the budget): by
 * the `version` named (an experiment arm's pin), or the active one.
 */
export function churnClient(tenant: string, client: ChurnGrpcClient, version?: string): ChurnRiskPort {
  return {
    dependency: 'churn',
    version,
    async risk(userId, budget) {
      const { scores } = await client.predict(
        { tenant, userIds: [userId], modelVersion: version ?? '' },
        { deadline: budget.deadline, signal: budget.signal },
      );
      const s = scores[0];
      if (s?.known) fromPinned('churn', version, s.modelVersion);
      return s?.known ? s.risk : undefined;
    },
  };
}
