import { DEFAULT_TENANT, type clickstreamV1, type rankingV1 } from '@aisle/contracts';
import {
  CLOCK_SKEW_MS,
  experimentEnd,
  isOutcomeType,
  unitOf,
  type Experiment,
  type Outcome,
  type ServedRecord,
} from '@aisle/experiments';

/**
 * The join of impressions and outcomes, the experiment service's core rule: a served response in an
 * experiment is kept by (experiment, request id); a click, add-to-cart or purchase that names a request
 * id is attached to it when the request showed the item (the analysis applies the attribution window).
 * Both sides are idempotent (by request id, by event id), so redelivery and replay change nothing.
 */

export interface ServedInExperiment {
  tenant: string;
  experimentId: string;
  record: ServedRecord;
}

/** The experiment part of a served event, or undefined when the response was not in an experiment. */
export function servedInExperiment(s: rankingV1.Served): ServedInExperiment | undefined {
  const x = s.experiment;
  if (!x?.experimentId || !s.requestId || !s.servedAt) return undefined;
  return {
    tenant: s.tenant || DEFAULT_TENANT,
    experimentId: x.experimentId,
    record: {
      requestId: s.requestId,
      unit: unitOf(s.userId, s.sessionId ?? ''),
      servedAt: s.servedAt.getTime(),
      arm: x.arm,
      interleaved: x.interleaved,
      items: s.items.map((i) => ({ itemId: i.itemId, team: i.team ?? '' })),
      runs: x.runs.map((r) => ({ arm: r.arm, latencyMs: r.latencyMs, degraded: r.degraded, failed: r.failed })),
    },
  };
}

export interface OutcomeEvent {
  tenant: string;
  requestId: string;
  outcome: Outcome;
}

/** An outcome that can be joined (a click, add-to-cart or purchase naming a request and an item), or undefined. */
export function outcomeOf(e: clickstreamV1.Event): OutcomeEvent | undefined {
  if (!isOutcomeType(e.type) || !e.requestId || !e.itemId || !e.eventId || !e.occurredAt) return undefined;
  const quantity = e.quantity || 1;
  return {
    tenant: e.tenant || DEFAULT_TENANT,
    requestId: e.requestId,
    outcome: {
      eventId: e.eventId,
      type: e.type,
      itemId: e.itemId,
      occurredAt: e.occurredAt.getTime(),
      revenue: e.type === 'purchase' && Number.isFinite(e.price) ? e.price * quantity : 0,
    },
  };
}

/**
 * The experiments an outcome at `occurredAt` may belong to: the tenant's experiments that were taking
 * traffic then, or had stopped no longer than their attribution window before.
 */
export function candidateExperiments(
  experiments: Iterable<Experiment>,
  tenant: string,
  occurredAt: number,
): Experiment[] {
  const out: Experiment[] = [];
  for (const e of experiments) {
    if (e.tenant !== tenant) continue;
    const start = e.startTime?.getTime() ?? 0;
    const end = experimentEnd(e);
    if (occurredAt < start - CLOCK_SKEW_MS) continue;
    if (end !== undefined && occurredAt > end + e.attributionWindowSeconds * 1000) continue;
    out.push(e);
  }
  return out;
}

/** The document id of a request in an experiment: experiment ids cannot contain '/', so ids sort by experiment. */
export function requestDocId(experimentId: string, requestId: string): string {
  return `${experimentId}/${requestId}`;
}

export interface JoinedDoc {
  served?: ServedRecord;
  outcomes: Outcome[];
}

/** A served record joins a document: outcomes that arrived first are kept. */
export function withServed(doc: JoinedDoc | undefined, served: ServedRecord): JoinedDoc {
  return { served, outcomes: doc?.outcomes ?? [] };
}

/** An outcome joins a document once (by event id); returns undefined when it was there already. */
export function withOutcome(doc: JoinedDoc, outcome: Outcome): JoinedDoc | undefined {
  if (doc.outcomes.some((o) => o.eventId === outcome.eventId)) return undefined;
  return { ...doc, outcomes: [...doc.outcomes, outcome] };
}
