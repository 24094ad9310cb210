import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '@aisle/contracts';
import { BatchShedError, expectFinite, type BatcherOptions, type Provider } from '@aisle/ml';
import { SequenceModel, TextModel, type ServingModel, type TextTower } from './models';

export type ServedModel = 'sasrec' | 'text_encoder';

export interface ModelArtifactLike {
  meta: { name: string; version: string };
  onnx: Uint8Array;
  sidecar: Record<string, unknown>;
}

export interface CatalogText {
  itemId: string;
  text: string;
}

export interface EmbeddingDeps {
  providers: Provider[];
  threads: number;
  batch: BatcherOptions;
  /** All catalog items' text, to (re)build the text index when a text model loads. */
  catalog: () => AsyncIterable<CatalogText>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Versions of a kind other than the active one, asked for by name (an experiment arm's pin): loaded on
 * first use and kept among a few recently used ones (runtime's PinnedVersions). `get` throws NotFoundError
 * for a version the registry does not have, FailedPreconditionError for one that cannot be served.
 */
export interface VersionSource<M extends ServingModel> {
  get(version: string): Promise<M>;
  versions(): string[];
  models(): M[];
}

/** A requested version: the active one when empty. */
const VERSION = /^[A-Za-z0-9._:+-]{1,128}$/;

function checkVersion(version: string | undefined): string | undefined {
  if (!version) return undefined;
  if (!VERSION.test(version)) throw new InvalidArgumentError('model_version', '1..128 characters of [A-Za-z0-9._:+-]');
  return version;
}

export interface Neighbor {
  itemId: string;
  score: number;
}

const MAX_K = 1000;
const MAX_BATCH_INPUTS = 1000;
/** Longest text embedded (a query or an item text); hashing a longer one would block the event loop. */
export const MAX_TEXT_LENGTH = 2000;
/** Most item ids in one sequence or exclusion list (the model reads only its last maxLen items anyway). */
export const MAX_SEQUENCE_ITEMS = 1000;

function checkText(field: string, text: string): void {
  if (text.length > MAX_TEXT_LENGTH) throw new InvalidArgumentError(field, `longer than ${MAX_TEXT_LENGTH} characters`);
}

function checkItems(field: string, ids: readonly string[]): void {
  if (ids.length > MAX_SEQUENCE_ITEMS) throw new InvalidArgumentError(field, `more than ${MAX_SEQUENCE_ITEMS} items`);
}

/**
 * Serves the active model of each kind. Loading, checking and switching versions is the runtime's
 * ModelSlot (one per kind); this class builds a version (`load`), says whether its answers are sane
 * (`probe`), and starts using it (`use`), atomically.
 */
export class EmbeddingService {
  private sequence: SequenceModel | undefined;
  private text: TextModel | undefined;
  private pinned: { sasrec?: VersionSource<SequenceModel>; text_encoder?: VersionSource<TextModel> } = {};

  constructor(private readonly deps: EmbeddingDeps) {}

  /** Where versions other than the active one come from (without: requests naming one are refused). */
  servePinned(sources: { sasrec: VersionSource<SequenceModel>; text_encoder: VersionSource<TextModel> }): void {
    this.pinned = sources;
  }

  /** Versions loaded besides the active ones, least recently used first. */
  pinnedVersions(): Record<ServedModel, string[]> {
    return {
      sasrec: this.pinned.sasrec?.versions() ?? [],
      text_encoder: this.pinned.text_encoder?.versions() ?? [],
    };
  }

  /** Active models with their execution provider (and why a preferred provider was not used). */
  models(): Array<{ model: ServedModel; version: string; provider: Provider; fallbackReason: string | null }> {
    const out: ReturnType<EmbeddingService['models']> = [];
    const add = (model: ServedModel, m: ServingModel | undefined) => {
      if (m) out.push({ model, version: m.version, provider: m.provider, fallbackReason: m.fallbackReason ?? null });
    };
    add('sasrec', this.sequence);
    add('text_encoder', this.text);
    return out;
  }

  status(): Record<string, unknown> {
    const degraded = this.degradedReason();
    return {
      models: this.models(),
      pinned: this.pinnedVersions(),
      textIndexSize: this.text?.indexSize ?? 0,
      ...(degraded ? { degraded } : {}),
    };
  }

  /**
   * Why the service serves less than it should, while a model is missing (a fresh install before the
   * trainer's first run): it is up and answers, with FAILED_PRECONDITION where a model is needed.
   */
  degradedReason(): string | undefined {
    if (!this.sequence && !this.text)
      return 'no model published yet (run the trainer): retrieval answers FAILED_PRECONDITION, ranking serves popularity';
    if (!this.sequence) return 'no sequence model (sasrec) yet: sequence retrieval answers FAILED_PRECONDITION';
    if (!this.text) return 'no text encoder yet: text retrieval answers FAILED_PRECONDITION';
    return undefined;
  }

  get ready(): boolean {
    return this.sequence !== undefined;
  }

  activeVersion(name: ServedModel): string | undefined {
    return (name === 'sasrec' ? this.sequence : this.text)?.version;
  }

  /** Builds and warms up a version; a text encoder also embeds the whole catalog before it can serve. */
  async load(name: ServedModel, artifact: ModelArtifactLike): Promise<ServingModel> {
    const opts = { providers: this.deps.providers, threads: this.deps.threads, batch: this.deps.batch };
    const started = performance.now();
    let fresh: ServingModel;
    if (name === 'sasrec')
      fresh = await SequenceModel.load(artifact.meta.version, artifact.onnx, artifact.sidecar, opts);
    else {
      const t = await TextModel.load(artifact.meta.version, artifact.onnx, artifact.sidecar, opts);
      try {
        let batch: CatalogText[] = [];
        for await (const c of this.deps.catalog()) {
          batch.push(c);
          if (batch.length === 256) {
            await t.indexItems(batch);
            batch = [];
          }
        }
        if (batch.length > 0) await t.indexItems(batch);
      } catch (err) {
        await t.release();
        throw err;
      }
      fresh = t;
    }
    this.deps.log('model loaded', {
      model: name,
      version: fresh.version,
      provider: fresh.provider,
      fallback_reason: fresh.fallbackReason,
      load_ms: Math.round(performance.now() - started),
    });
    if (fresh.fallbackReason)
      this.deps.log('execution provider fallback', {
        model: name,
        provider: fresh.provider,
        reason: fresh.fallbackReason,
      });
    return fresh;
  }

  /** Runs a loaded version on probe inputs: its vectors and scores must be finite. */
  async probe(model: ServingModel): Promise<void> {
    if (model instanceof SequenceModel) {
      const k = Math.min(5, model.itemIds.length - 1);
      const r = await model.batcher.submit({ ids: [1, Math.min(2, model.itemIds.length - 1)], exclude: [], k });
      expectFinite('sasrec embedding', r.embedding, { length: model.dim });
      expectFinite('sasrec scores', r.scores);
    } else if (model instanceof TextModel) {
      for (const tower of ['query', 'item'] as const)
        expectFinite(`text ${tower} embedding`, await model.batcher.submit({ text: 'red running shoes', tower }), {
          length: model.dim,
        });
    }
  }

  /** Starts serving `model` for its kind (the caller releases the previous one). */
  use(model: ServingModel): void {
    if (model instanceof SequenceModel) this.sequence = model;
    else if (model instanceof TextModel) this.text = model;
  }

  /** New or changed catalog items: embed them into the text index (cold start) of every loaded text encoder. */
  async indexItems(items: readonly CatalogText[]): Promise<void> {
    await this.text?.indexItems(items);
    for (const m of this.pinned.text_encoder?.models() ?? []) await m.indexItems(items);
  }

  /** The requested sasrec version (`model_version`), or the active one. */
  private async sequenceModel(version: string | undefined): Promise<SequenceModel> {
    const v = checkVersion(version);
    if (v === undefined || v === this.sequence?.version) {
      if (!this.sequence)
        throw new FailedPreconditionError('no sequence model (sasrec) is active yet: run the trainer');
      return this.sequence;
    }
    if (!this.pinned.sasrec) throw new FailedPreconditionError('this service serves only the active sasrec version');
    return this.pinned.sasrec.get(v);
  }

  /** The requested text_encoder version (`model_version`), or the active one. */
  private async textModel(version: string | undefined): Promise<TextModel> {
    const v = checkVersion(version);
    if (v === undefined || v === this.text?.version) {
      if (!this.text) throw new FailedPreconditionError('no text encoder is active yet: run the trainer');
      return this.text;
    }
    if (!this.pinned.text_encoder)
      throw new FailedPreconditionError('this service serves only the active text_encoder version');
    return this.pinned.text_encoder.get(v);
  }

  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof BatchShedError) throw new ResourceExhaustedError(`overloaded: ${err.message}`, { cause: err });
      throw err;
    }
  }

  async encodeSequences(
    sequences: ReadonlyArray<readonly string[]>,
    version?: string,
  ): Promise<{ vectors: Float32Array[]; version: string }> {
    if (sequences.length === 0) throw new InvalidArgumentError('sequences', 'at least one sequence required');
    if (sequences.length > MAX_BATCH_INPUTS)
      throw new InvalidArgumentError('sequences', `more than ${MAX_BATCH_INPUTS}`);
    sequences.forEach((s, i) => checkItems(`sequences[${i}].item_ids`, s));
    const m = await this.sequenceModel(version);
    const results = await this.guard(
      Promise.all(sequences.map((s) => m.batcher.submit({ ids: this.indices(m, s), exclude: [], k: 1 }))),
    );
    return { vectors: results.map((r) => r.embedding), version: m.version };
  }

  async encodeTexts(
    texts: readonly string[],
    tower: TextTower,
    version?: string,
  ): Promise<{ vectors: Float32Array[]; version: string }> {
    if (texts.length === 0) throw new InvalidArgumentError('texts', 'at least one text required');
    if (texts.length > MAX_BATCH_INPUTS) throw new InvalidArgumentError('texts', `more than ${MAX_BATCH_INPUTS}`);
    texts.forEach((t, i) => checkText(`texts[${i}]`, t));
    const m = await this.textModel(version);
    return {
      vectors: await this.guard(Promise.all(texts.map((text) => m.batcher.submit({ text, tower })))),
      version: m.version,
    };
  }

  private indices(m: SequenceModel, ids: readonly string[]): number[] {
    return ids.map((id) => m.index.get(id) ?? 0).filter((i) => i > 0);
  }

  private checkK(k: number): number {
    if (!(k >= 1 && k <= MAX_K)) throw new InvalidArgumentError('k', `must be between 1 and ${MAX_K}`);
    return k;
  }

  /** Next items for a sequence: top-k inside the ONNX graph (on the execution provider), exclusions applied there. */
  async retrieveForSequence(
    items: readonly string[],
    kIn: number,
    exclude: readonly string[],
    version?: string,
  ): Promise<{ neighbors: Neighbor[]; version: string }> {
    const k = this.checkK(kIn);
    if (items.length === 0) throw new InvalidArgumentError('sequence.item_ids', 'at least one item required');
    checkItems('sequence.item_ids', items);
    checkItems('exclude_item_ids', exclude);
    const m = await this.sequenceModel(version);
    const r = await this.guard(m.batcher.submit({ ids: this.indices(m, items), exclude: this.indices(m, exclude), k }));
    return {
      neighbors: r.items.map((i, j) => ({ itemId: m.itemIds[i] as string, score: r.scores[j] as number })),
      version: m.version,
    };
  }

  async retrieveForText(
    text: string,
    kIn: number,
    exclude: readonly string[],
    version?: string,
  ): Promise<{ neighbors: Neighbor[]; version: string }> {
    const k = this.checkK(kIn);
    checkText('text', text);
    checkItems('exclude_item_ids', exclude);
    if (!text.trim()) throw new InvalidArgumentError('text', 'must not be empty');
    const m = await this.textModel(version);
    const q = await this.guard(m.batcher.submit({ text, tower: 'query' }));
    return { neighbors: m.nearest(q, k, new Set(exclude)), version: m.version };
  }

  async retrieveForVector(
    vector: Float32Array,
    kIn: number,
    exclude: readonly string[],
    index: ServedModel,
    version?: string,
  ): Promise<{ neighbors: Neighbor[]; version: string }> {
    const k = this.checkK(kIn);
    checkItems('exclude_item_ids', exclude);
    if (index === 'sasrec') {
      const m = await this.sequenceModel(version);
      if (vector.length !== m.dim)
        throw new InvalidArgumentError(
          'vector.values',
          `must have ${m.dim} values for the sequence index, got ${vector.length}`,
        );
      return {
        neighbors: m
          .nearest(vector, k, new Set(this.indices(m, exclude)))
          .map((r) => ({ itemId: m.itemIds[r.index] as string, score: r.score })),
        version: m.version,
      };
    }
    const m = await this.textModel(version);
    if (vector.length !== m.dim)
      throw new InvalidArgumentError(
        'vector.values',
        `must have ${m.dim} values for the text index, got ${vector.length}`,
      );
    return { neighbors: m.nearest(vector, k, new Set(exclude)), version: m.version };
  }
}
