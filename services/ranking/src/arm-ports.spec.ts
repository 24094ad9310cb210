import type { CallBudget, ChurnRiskPort, PipelinePorts, Retrieved } from '@aisle/ranking-core';
import { fromPinned, pinnedPorts, RemotePinWarmer, type PinnedClients } from './arm-ports';

type Pins = { sasrec?: string | undefined; text_encoder?: string | undefined };

/** Clients that record what they were asked for; `answer` says which version answers (as a service would). */
function clients(answer: (kind: string, pinned: string | undefined) => string | Error) {
  const calls: string[] = [];
  const reply = async (kind: string, pinned: string | undefined): Promise<Retrieved> => {
    calls.push(`${kind}:${pinned ?? 'active'}`);
    const v = answer(kind, pinned);
    if (v instanceof Error) throw v;
    return { items: [{ itemId: 'x', score: 1 }], version: fromPinned(kind, pinned, v) };
  };
  const c: PinnedClients = {
    embedding: (pins: Pins) => ({
      dependency: 'embedding',
      bySequence: () => reply('sasrec', pins.sasrec),
      byText: () => reply('text_encoder', pins.text_encoder),
    }),
    churn: (version): ChurnRiskPort => ({
      dependency: 'churn',
      version,
      risk: async () => (await reply('churn', version), 0.7),
    }),
    cache: { maxEntries: 10, ttlMs: 60_000 },
  };
  return { c, calls };
}

const budget: CallBudget = { deadline: Date.now() + 1000, signal: new AbortController().signal };
const production = { catalog: {}, sequenceRetrieval: 'prod-seq', textRetrieval: 'prod-text', churnRisk: 'prod-churn' };
const ports = production as unknown as PipelinePorts;

test('an arm without remote pins uses production ports; each pin gets a port naming its version', async () => {
  const { c, calls } = clients((_k, pinned) => pinned ?? 'active');
  expect(pinnedPorts(ports, {}, c)).toEqual(ports);
  const arm = pinnedPorts(ports, { sasrec: 's1', churn: 'c1' }, c);
  expect(arm.textRetrieval).toBe('prod-text');
  expect((await arm.sequenceRetrieval?.bySequence(['a'], 5, [], budget))?.version).toBe('s1');
  // Cached: a second identical retrieval is not asked again.
  await arm.sequenceRetrieval?.bySequence(['a'], 5, [], budget);
  expect([arm.churnRisk?.version, await arm.churnRisk?.risk('u1', budget)]).toEqual(['c1', 0.7]);
  expect(calls).toEqual(['sasrec:s1', 'churn:c1']);
});

test('an answer from another version than the pinned one is refused', async () => {
  const { c } = clients(() => 'v-active');
  const arm = pinnedPorts(ports, { text_encoder: 't1' }, c);
  await expect(arm.textRetrieval?.byText('q', 5, [], budget)).rejects.toThrow(
    'text_encoder v-active answered where t1 was asked for',
  );
});

test('the warmer asks once per pin named, again after a pin went and came back, and logs what it found', async () => {
  const { c, calls } = clients((kind, pinned) => (kind === 'churn' ? new Error('NOT_FOUND: no churn c9') : pinned!));
  const lines: Array<[string, string, unknown]> = [];
  const log = {
    info: (msg: string, f?: Record<string, unknown>) => lines.push(['info', msg, f?.['model']]),
    warn: (msg: string, f?: Record<string, unknown>) => lines.push(['warn', msg, f?.['model']]),
  };
  const warmer = new RemotePinWarmer(c, log);
  const settled = () => new Promise((r) => setTimeout(r, 10));
  warmer.sync([
    { model: 'sasrec', version: 's1' },
    { model: 'churn', version: 'c9' },
  ]);
  warmer.sync([{ model: 'sasrec', version: 's1' }]);
  await settled();
  expect(calls).toEqual(['sasrec:s1', 'churn:c9']);
  warmer.sync([
    { model: 'sasrec', version: 's1' },
    { model: 'churn', version: 'c9' },
  ]);
  await settled();
  expect(calls).toEqual(['sasrec:s1', 'churn:c9', 'churn:c9']);
  expect(lines).toEqual([
    ['info', 'experiment model ready on its service', 'sasrec'],
    ['warn', "experiment model not available from its service; the arm's calls degrade", 'churn'],
    ['warn', "experiment model not available from its service; the arm's calls degrade", 'churn'],
  ]);
});
