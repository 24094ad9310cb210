import type { StoreOf } from '@aisle/store';
import type { ScoreRepository } from './churn.service';

/** One tenant's churn scores in the store. */
export function scoreRepository(store: StoreOf<'churnScores'>, tenant: string): ScoreRepository {
  return {
    getMany: (ids) => store.churnScores.getMany(tenant, ids),
    upsertMany: (rs) => store.churnScores.upsertMany(rs.map((r) => ({ ...r, tenant }))),
    listAtRisk: (minRisk, limit, after) => store.churnScores.listAtRisk(tenant, minRisk, limit, after),
  };
}
