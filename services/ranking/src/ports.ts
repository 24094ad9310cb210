/** What the ranking pipeline needs from its dependencies; adapters implement these over gRPC and NATS. */

export interface UserView {
  userId: string;
  known: boolean;
  /** Item interactions, oldest first. */
  recent: Array<{ itemId: string; type: string; at: number }>;
  purchased: Set<string>;
  /** Highest first. */
  affinity: Array<{ category: string; score: number }>;
  price: { mean: number; std: number } | undefined;
  queries: string[];
}

export interface ItemView {
  itemId: string;
  popularity7d: number;
  ctr: number;
  conversionRate: number;
  coVisited: Array<{ itemId: string; score: number }>;
}

export interface Neighbor {
  itemId: string;
  score: number;
}

export interface FeaturesPort {
  users(tenant: string, userIds: readonly string[], timeoutMs: number): Promise<UserView[]>;
  items(
    tenant: string,
    itemIds: readonly string[],
    coVisitLimit: number,
    timeoutMs: number,
  ): Promise<Map<string, ItemView>>;
  popular(tenant: string, category: string, limit: number, timeoutMs: number): Promise<Neighbor[]>;
}

export interface EmbeddingPort {
  bySequence(
    tenant: string,
    items: readonly string[],
    k: number,
    exclude: readonly string[],
    timeoutMs: number,
  ): Promise<{ items: Neighbor[]; version: string }>;
  byText(
    tenant: string,
    text: string,
    k: number,
    exclude: readonly string[],
    timeoutMs: number,
  ): Promise<{ items: Neighbor[]; version: string }>;
}

/** The learned ranker (in-process ONNX), when one is published. */
export interface RankerModel {
  readonly version: string;
  score(rows: readonly Float32Array[]): Promise<Float32Array>;
}

export type Surface = 'recommend' | 'search' | 'rank' | 'similar_items';

export interface ServedEvent {
  requestId: string;
  tenant: string;
  userId: string;
  surface: Surface;
  query: string;
  items: Array<{ itemId: string; position: number; score: number }>;
  modelVersion: string;
  degraded: boolean;
  servedAt: number;
}

export interface ServedSink {
  served(e: ServedEvent): void;
}
