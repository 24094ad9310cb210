import { expectFinite, ModelProbeError, sessionArtifactFromSidecar, ServingSessionModel } from '@aisle/ml';
import type { SessionModelPort } from '@aisle/ranking-core';

/** What the model slot serves (structurally the runtime's `ServingModel`): the port, releasable. */
export type ServingSession = SessionModelPort & {
  readonly probeItems: readonly string[];
  release(): Promise<void>;
};

/**
 * The published session model (a registry artifact whose sidecar carries the selected settings and the
 * training sessions) rebuilt in-process with the code that selected it: what orders anonymous sessions.
 */
export async function loadSessionModel(artifact: {
  meta: { version: string };
  sidecar: Record<string, unknown>;
}): Promise<ServingSession> {
  const data = sessionArtifactFromSidecar(artifact.sidecar);
  const model = new ServingSessionModel(data);
  const version = artifact.meta.version;
  // Probe input: the first two items of the most recent training session.
  const last = data.sessions[data.sessions.length - 1];
  const probeItems = last ? Array.from(last.subarray(0, 2), (i) => data.itemIds[i] as string) : [];
  return {
    version,
    dependency: 'session_model',
    probeItems,
    next: (sessionItemIds, k) => Promise.resolve({ version, items: model.recommend(sessionItemIds, k) }),
    release: () => Promise.resolve(),
  };
}

/** A session model must answer a known session with items and finite scores. */
export async function probeSessionModel(model: ServingSession): Promise<void> {
  const budget = { deadline: Date.now() + 5000, signal: new AbortController().signal };
  const got = await model.next(model.probeItems, 10, budget);
  if (got.items.length === 0) throw new ModelProbeError('session model: no items for a training session');
  expectFinite(
    'session model score',
    Float32Array.from(got.items, (i) => i.score),
    { length: got.items.length },
  );
}
