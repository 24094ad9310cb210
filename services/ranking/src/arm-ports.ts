import {
  CachedChurnRisk,
  CachedSequenceRetrieval,
  type ChurnRiskPort,
  type PipelinePorts,
  type SequenceRetrievalPort,
  type TextRetrievalPort,
} from '@aisle/ranking-core';
import type { RemoteModel } from '@aisle/experiments';
import type { RemotePins } from './arm-pipelines';

/**
 * An answer from the version a port names (an experiment arm's pin), or a failure: never another version's
 * answer in its place (an embedding-inference too old to know `model_version` answers with its active one).
 */
export function fromPinned(kind: string, pinned: string | undefined, answered: string): string {
  if (pinned && answered !== pinned)
    throw new Error(`${kind} ${answered} answered where ${pinned} was asked for (a service that cannot serve pins?)`);
  return answered;
}

/** Ports over the services that serve remote kinds, naming a version on every call. */
export interface PinnedClients {
  /** Retrieval over embedding-inference with these versions (a kind not named: the active version). */
  embedding(pins: {
    sasrec?: string | undefined;
    text_encoder?: string | undefined;
  }): SequenceRetrievalPort & TextRetrievalPort;
  /** Churn risk by this churn-prediction version. */
  churn(version: string): ChurnRiskPort;
  /** Most cached answers per pinned port (sequence retrievals, churn risks), and for how long. */
  cache: { maxEntries: number; ttlMs: number };
}

/**
 * The production ports with an arm's pins of remote kinds in their place: sequence and text retrieval
 * naming the arm's sasrec and text_encoder versions, churn risk its churn version. Each pinned port has its
 * own cache (a version's answers never change, and no arm reads another's), so an arm pays for its pin no
 * more than production pays for the active version.
 */
export function pinnedPorts(ports: PipelinePorts, pins: RemotePins, clients: PinnedClients): PipelinePorts {
  const out: PipelinePorts = { ...ports };
  if (pins.sasrec || pins.text_encoder) {
    const embedding = clients.embedding({ sasrec: pins.sasrec, text_encoder: pins.text_encoder });
    if (pins.sasrec) out.sequenceRetrieval = new CachedSequenceRetrieval(embedding, clients.cache);
    if (pins.text_encoder) out.textRetrieval = embedding;
  }
  if (pins.churn) {
    const cached = new CachedChurnRisk(clients.churn(pins.churn), clients.cache);
    out.churnRisk = { dependency: 'churn', version: pins.churn, risk: (userId, b) => cached.risk(userId, b) };
  }
  return out;
}

/** Where the warmer says what it found (the runtime's Logger is one). */
export interface WarmLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Asks the service behind each remote pin once, as soon as an experiment names it (scheduled or running),
 * so that it loads the version before the arm's requests need it (a text encoder embeds the whole catalog
 * first); what it found is logged: a version the service cannot serve shows up here, before any traffic.
 */
export class RemotePinWarmer {
  private readonly asked = new Set<string>();

  constructor(
    private readonly clients: PinnedClients,
    private readonly logger: WarmLog,
    private readonly timeoutMs = 120_000,
  ) {}

  /** Warms the pins not asked for yet; forgets those no experiment names any more. */
  sync(pins: ReadonlyArray<{ model: RemoteModel; version: string }>): void {
    const keys = new Map(pins.map((p) => [`${p.model}:${p.version}`, p]));
    for (const k of this.asked) if (!keys.has(k)) this.asked.delete(k);
    for (const [k, p] of keys)
      if (!this.asked.has(k)) {
        this.asked.add(k);
        void this.warm(p);
      }
  }

  private async warm(p: { model: RemoteModel; version: string }): Promise<void> {
    const budget = { deadline: Date.now() + this.timeoutMs, signal: AbortSignal.timeout(this.timeoutMs) };
    try {
      if (p.model === 'sasrec')
        await this.clients.embedding({ sasrec: p.version }).bySequence(['warm-up'], 1, [], budget);
      else if (p.model === 'text_encoder')
        await this.clients.embedding({ text_encoder: p.version }).byText('warm up', 1, [], budget);
      else await this.clients.churn(p.version).risk('warm-up', budget);
      this.logger.info('experiment model ready on its service', p);
    } catch (err) {
      this.logger.warn("experiment model not available from its service; the arm's calls degrade", { ...p, err });
    }
  }
}
