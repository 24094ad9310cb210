import { unitOf, type JoinedRequest } from '@aisle/experiments';
import type { DocumentRepository } from '@aisle/store';
import type { JoinedRequests } from './experiment.service';
import {
  requestDocId,
  withOutcome,
  withServed,
  type JoinedDoc,
  type OutcomeEvent,
  type ServedInExperiment,
} from './join';

const COLLECTION = 'experiment_requests';
const PAGE = 500;

/**
 * The experiment service's own data: one document per (tenant, experiment, request) in the
 * `experiment_requests` collection, holding the served record and the outcomes joined to it. Ids are
 * `<experiment>/<request>`, so one experiment's requests are a contiguous id range.
 */
export class JoinRepository implements JoinedRequests {
  constructor(private readonly documents: DocumentRepository) {}

  /** Stores served records (one transaction); outcomes already attached to a request are kept. */
  async saveServed(served: readonly ServedInExperiment[]): Promise<void> {
    if (served.length === 0) return;
    const byTenant = groupBy(served, (s) => s.tenant);
    await this.documents.transact(async (tx) => {
      for (const [tenant, list] of byTenant) {
        const ids = list.map((s) => requestDocId(s.experimentId, s.record.requestId));
        const existing = await tx.getMany<JoinedDoc>(COLLECTION, tenant, ids);
        const docs = new Map<string, JoinedDoc>();
        list.forEach((s, i) => {
          const id = ids[i] as string;
          docs.set(id, withServed(docs.get(id) ?? existing.get(id), s.record));
        });
        await tx.putMany(COLLECTION, tenant, docs);
      }
    });
  }

  /**
   * Attaches outcomes to the requests they name, trying each candidate experiment's document. Returns the
   * outcomes whose request was found (attached now or before).
   */
  async attachOutcomes(
    outcomes: ReadonlyArray<{ event: OutcomeEvent; experimentIds: readonly string[] }>,
  ): Promise<Set<OutcomeEvent>> {
    const found = new Set<OutcomeEvent>();
    if (outcomes.length === 0) return found;
    const byTenant = groupBy(outcomes, (o) => o.event.tenant);
    await this.documents.transact(async (tx) => {
      for (const [tenant, list] of byTenant) {
        const ids = list.flatMap((o) => o.experimentIds.map((x) => requestDocId(x, o.event.requestId)));
        const docs = await tx.getMany<JoinedDoc>(COLLECTION, tenant, ids);
        const changed = new Map<string, JoinedDoc>();
        for (const o of list)
          for (const x of o.experimentIds) {
            const id = requestDocId(x, o.event.requestId);
            const doc = changed.get(id) ?? docs.get(id);
            if (!doc?.served) continue;
            found.add(o.event);
            const next = withOutcome(doc, o.event.outcome);
            if (next) changed.set(id, next);
          }
        await tx.putMany(COLLECTION, tenant, changed);
      }
    });
    return found;
  }

  /**
   * Right to be forgotten: deletes every stored request of the user (their served record with its
   * outcomes, of every experiment; event ids may embed the user id) and returns how many there were. Reads
   * the tenant's requests once: forget requests are rare, an analysis round reads as much.
   */
  async forgetUser(tenant: string, userId: string): Promise<number> {
    const unit = unitOf(userId, '');
    const ids: string[] = [];
    for await (const { id, doc } of this.documents.scan<JoinedDoc>(COLLECTION, tenant))
      if (doc.served?.unit === unit) ids.push(id);
    return ids.length === 0 ? 0 : this.documents.deleteMany(COLLECTION, tenant, ids);
  }

  async *requests(tenant: string, experimentId: string): AsyncIterable<JoinedRequest> {
    const prefix = requestDocId(experimentId, '');
    let after = prefix;
    for (;;) {
      const ids = (await this.documents.listIds(COLLECTION, tenant, after, PAGE)).filter((id) => id.startsWith(prefix));
      if (ids.length === 0) return;
      const docs = await this.documents.getMany<JoinedDoc>(COLLECTION, tenant, ids);
      for (const id of ids) {
        const doc = docs.get(id);
        if (doc?.served) yield { served: doc.served, outcomes: doc.outcomes };
      }
      if (ids.length < PAGE) return;
      after = ids[ids.length - 1] as string;
    }
  }
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = out.get(k);
    if (list) list.push(x);
    else out.set(k, [x]);
  }
  return out;
}
