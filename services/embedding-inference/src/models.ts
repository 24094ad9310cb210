import {
  createSession,
  DynamicBatcher,
  hashBatch,
  readInitializer,
  sasrecFeeds,
  sasrecResults,
  topKInnerProduct,
  type BatcherOptions,
  type OrtSession,
  type SasrecRow,
  type Provider,
} from '@aisle/ml';

/** A model version ready to serve: its session behind a batcher, plus what is needed to use it. */
export interface ServingModel {
  readonly version: string;
  readonly provider: Provider;
  readonly fallbackReason: string | undefined;
  /** Finishes queued work, then frees the session. */
  release(): Promise<void>;
}

export interface SequenceQuery {
  /** Item indices, oldest first. */
  ids: number[];
  exclude: number[];
  k: number;
}

export type SequenceResult = SasrecRow;

export class SequenceModel implements ServingModel {
  readonly index: Map<string, number>;
  readonly dim: number;
  readonly maxLen: number;

  private constructor(
    readonly version: string,
    private readonly session: OrtSession,
    readonly itemIds: readonly string[],
    /** Item embedding matrix [items + 1, dim], for vector queries. */
    readonly itemEmb: Float32Array,
    readonly batcher: DynamicBatcher<SequenceQuery, SequenceResult>,
    sidecar: Record<string, unknown>,
  ) {
    this.index = new Map(itemIds.map((id, i) => [id, i]));
    this.dim = Number(sidecar['dim']);
    this.maxLen = Number(sidecar['maxLen'] ?? 50);
  }

  get provider(): Provider {
    return this.session.provider;
  }
  get fallbackReason(): string | undefined {
    return this.session.fallbackReason;
  }

  static async load(
    version: string,
    onnx: Uint8Array,
    sidecar: Record<string, unknown>,
    opts: { providers: Provider[]; threads: number; batch: BatcherOptions },
  ): Promise<SequenceModel> {
    const itemIds = sidecar['itemIds'];
    if (!Array.isArray(itemIds)) throw new Error('sasrec sidecar has no itemIds');
    const emb = readInitializer(onnx, /^item_emb_\d+$/);
    if (!emb) throw new Error('sasrec graph has no item_emb initializer');
    const session = await createSession(onnx, { providers: opts.providers, intraOpThreads: opts.threads });
    const holder: { model?: SequenceModel } = {};
    const batcher = new DynamicBatcher<SequenceQuery, SequenceResult>(
      (qs) => runSequences(session, holder.model as SequenceModel, qs),
      opts.batch,
    );
    const model = new SequenceModel(version, session, itemIds as string[], emb.data, batcher, sidecar);
    holder.model = model;
    // Warm-up: the first run allocates and optimizes; no request should pay for it.
    await model.batcher.submit({ ids: [1], exclude: [], k: 1 });
    return model;
  }

  async release(): Promise<void> {
    await this.batcher.close();
    await this.session.release();
  }

  /** Top-k rows of the item embedding matrix for a vector. */
  nearest(vector: Float32Array, k: number, exclude: ReadonlySet<number>): Array<{ index: number; score: number }> {
    return topKInnerProduct(this.itemEmb, this.dim, vector, k, exclude, true);
  }
}

async function runSequences(session: OrtSession, model: SequenceModel, qs: SequenceQuery[]): Promise<SequenceResult[]> {
  const k = Math.min(model.itemIds.length - 1, Math.max(1, ...qs.map((q) => q.k)));
  const out = await session.run(
    sasrecFeeds(
      qs.map((q) => q.ids),
      qs.map((q) => q.exclude),
      k,
      model.maxLen,
    ),
  );
  return sasrecResults(
    out,
    qs.length,
    model.dim,
    qs.map((q) => q.k),
  );
}

export type TextTower = 'query' | 'item';

export class TextModel implements ServingModel {
  /** Item text embeddings of the catalog, for semantic search and cold-start similarity. */
  private indexIds: string[] = [];
  private indexPos = new Map<string, number>();
  private matrix = new Float32Array();

  private constructor(
    readonly version: string,
    private readonly session: OrtSession,
    readonly dim: number,
    readonly batcher: DynamicBatcher<{ text: string; tower: TextTower }, Float32Array>,
    private readonly embed: (qs: ReadonlyArray<{ text: string; tower: TextTower }>) => Promise<Float32Array[]>,
  ) {}

  get provider(): Provider {
    return this.session.provider;
  }
  get fallbackReason(): string | undefined {
    return this.session.fallbackReason;
  }

  static async load(
    version: string,
    onnx: Uint8Array,
    sidecar: Record<string, unknown>,
    opts: { providers: Provider[]; threads: number; batch: BatcherOptions },
  ): Promise<TextModel> {
    const hasher = sidecar['hasher'] as { buckets: number; maxIds: number } | undefined;
    if (!hasher) throw new Error('text encoder sidecar has no hasher settings');
    const dim = Number(sidecar['dim']);
    const session = await createSession(onnx, { providers: opts.providers, intraOpThreads: opts.threads });
    const embed = async (qs: ReadonlyArray<{ text: string; tower: TextTower }>) => {
      const { ids, width } = hashBatch(
        qs.map((q) => q.text),
        hasher,
      );
      const out = await session.run({
        token_ids: { type: 'int64', data: BigInt64Array.from(ids, (v) => BigInt(v)), dims: [qs.length, width] },
      });
      const query = out['query_embedding']?.data as Float32Array;
      const item = out['item_embedding']?.data as Float32Array;
      return qs.map((q, b) => (q.tower === 'query' ? query : item).slice(b * dim, (b + 1) * dim));
    };
    const batcher = new DynamicBatcher<{ text: string; tower: TextTower }, Float32Array>(embed, opts.batch);
    const model = new TextModel(version, session, dim, batcher, embed);
    await model.batcher.submit({ text: 'warm up', tower: 'query' });
    return model;
  }

  async release(): Promise<void> {
    await this.batcher.close();
    await this.session.release();
  }

  get indexSize(): number {
    return this.indexIds.length;
  }

  /**
   * Adds or replaces catalog items in the text index. Bulk work runs in its own chunks, not through the
   * request batcher: queued behind a whole catalog, requests would be shed, and on a busy machine so was
   * the catalog itself (the text encoder then never became active).
   */
  async indexItems(items: ReadonlyArray<{ itemId: string; text: string }>): Promise<void> {
    const vectors: Float32Array[] = [];
    for (let s = 0; s < items.length; s += 64)
      vectors.push(
        ...(await this.embed(items.slice(s, s + 64).map((i) => ({ text: i.text, tower: 'item' as const })))),
      );
    const fresh = items.filter((i) => !this.indexPos.has(i.itemId)).length;
    const next = new Float32Array(this.matrix.length + fresh * this.dim);
    next.set(this.matrix);
    items.forEach((it, k) => {
      let pos = this.indexPos.get(it.itemId);
      if (pos === undefined) {
        pos = this.indexIds.length;
        this.indexIds.push(it.itemId);
        this.indexPos.set(it.itemId, pos);
      }
      next.set(vectors[k] as Float32Array, pos * this.dim);
    });
    this.matrix = next;
  }

  nearest(vector: Float32Array, k: number, excludeIds: ReadonlySet<string>): Array<{ itemId: string; score: number }> {
    const exclude = new Set(
      [...excludeIds].flatMap((id) => {
        const p = this.indexPos.get(id);
        return p === undefined ? [] : [p];
      }),
    );
    return topKInnerProduct(this.matrix, this.dim, vector, k, exclude).map((r) => ({
      itemId: this.indexIds[r.index] as string,
      score: r.score,
    }));
  }
}
