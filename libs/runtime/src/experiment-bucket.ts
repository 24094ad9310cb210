import { EXPERIMENTS_BUCKET, experimentV1 } from '@aisle/contracts';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from './logger';

export interface StoredExperiment {
  experiment: experimentV1.Experiment;
  /** KV revision: updates are compare-and-set on it. */
  revision: number;
}

/** Another writer changed (or created) the definition first. */
export class ExperimentConflictError extends Error {
  override readonly name = 'ExperimentConflictError';
}

const key = (tenant: string, id: string) => `${tenant}.${id}`;
const encode = (e: experimentV1.Experiment) =>
  new TextEncoder().encode(JSON.stringify(experimentV1.Experiment.toJSON(e)));

function decode(entry: KvEntry): experimentV1.Experiment {
  return experimentV1.Experiment.fromJSON(JSON.parse(new TextDecoder().decode(entry.value)));
}

/** JetStream's "wrong last sequence": the compare-and-set (or create of an existing key) lost. */
function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}

/**
 * Experiment definitions in the NATS KV bucket `aisle-experiments`: key `<tenant>.<id>`, value the
 * `Experiment` as proto3 JSON. The experiment service writes them (create, stop: compare-and-set on the
 * revision); ranking and the experiment service watch them, so a change applies without a restart.
 * Values are returned as stored: readers validate them (`@aisle/experiments`).
 */
export class ExperimentBucket {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<ExperimentBucket> {
    const kv = await new Kvm(nc).create(EXPERIMENTS_BUCKET, {
      replicas: opts.replicas ?? 1,
      history: 5,
      description: 'Aisle experiment definitions',
    });
    return new ExperimentBucket(kv);
  }

  async get(tenant: string, id: string): Promise<StoredExperiment | undefined> {
    const entry = await this.kv.get(key(tenant, id));
    if (!entry || entry.operation !== 'PUT') return undefined;
    return { experiment: decode(entry), revision: entry.revision };
  }

  /** Stores a new definition; ExperimentConflictError when the key exists. */
  async create(e: experimentV1.Experiment): Promise<number> {
    try {
      return await this.kv.create(key(e.tenant, e.id), encode(e));
    } catch (err) {
      if (isConflict(err)) throw new ExperimentConflictError(`experiment ${e.tenant}/${e.id} already exists`);
      throw err;
    }
  }

  /** Replaces a definition if it is still at `revision`; ExperimentConflictError otherwise. */
  async update(e: experimentV1.Experiment, revision: number): Promise<number> {
    try {
      return await this.kv.update(key(e.tenant, e.id), encode(e), revision);
    } catch (err) {
      if (isConflict(err)) throw new ExperimentConflictError(`experiment ${e.tenant}/${e.id} changed concurrently`);
      throw err;
    }
  }

  /** Every stored definition (of one tenant when given). Values that do not decode are skipped. */
  async list(tenant?: string): Promise<StoredExperiment[]> {
    const out: StoredExperiment[] = [];
    for await (const k of await this.kv.keys(tenant ? `${tenant}.*` : '>')) {
      const entry = await this.kv.get(k);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        out.push({ experiment: decode(entry), revision: entry.revision });
      } catch {
        // Not a definition: the readers' validation reports what they skip.
      }
    }
    return out;
  }

  /**
   * Calls `onChange` with every definition now, then again after each change (later revisions only).
   * Resolves once the current definitions were delivered. Stopped by the returned function.
   */
  async watch(onChange: (all: ReadonlyMap<string, StoredExperiment>) => void, logger: Logger): Promise<() => void> {
    const current = new Map<string, StoredExperiment>();
    for (const s of await this.list()) current.set(key(s.experiment.tenant, s.experiment.id), s);
    onChange(current);
    const watcher = await this.kv.watch({ key: '>' });
    void (async () => {
      for await (const entry of watcher) {
        const known = current.get(entry.key);
        if (known && known.revision >= entry.revision) continue;
        if (entry.operation !== 'PUT') current.delete(entry.key);
        else
          try {
            current.set(entry.key, { experiment: decode(entry), revision: entry.revision });
          } catch (err) {
            logger.warn('experiment definition does not decode; ignored', { key: entry.key, err });
            continue;
          }
        onChange(current);
      }
    })();
    return () => watcher.stop();
  }
}
