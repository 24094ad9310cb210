/**
 * The console's HTTP API: JSON shapes shared by the server and the browser app (types only, so the
 * browser bundle imports nothing from the server).
 */

export type Role = 'viewer' | 'operator';

export interface SessionInfo {
  /** `none` in local development. */
  auth: 'none' | 'login' | 'proxy';
  user: string | null;
  role: Role;
  /** Tenants this caller may see, in the declared order. */
  tenants: string[];
}

export interface StreamRate {
  stream: string;
  messages: number;
  lastSeq: number;
  /** Messages per second over the last sample interval. */
  perSecond: number;
}

export interface ConsumerLag {
  stream: string;
  consumer: string;
  /** Messages not yet delivered. */
  pending: number;
  /** Delivered, not yet acknowledged. */
  ackPending: number;
  redelivered: number;
}

export interface ServiceHealth {
  service: string;
  address: string;
  /** Health of the process ("") and of its main gRPC service. */
  status: 'SERVING' | 'NOT_SERVING' | 'UNREACHABLE' | 'UNKNOWN';
  detail: string;
  /**
   * The versions the service has loaded (from its /status), per tenant: one deployment serves every
   * tenant, each with its own models. A snapshot for one tenant's caller keeps that tenant's only.
   */
  models: LoadedModel[];
}

export interface LoadedModel {
  /** null when the service does not say (a model shared by every tenant). */
  tenant: string | null;
  model: string;
  version: string;
}

export interface Alert {
  at: number;
  kind: 'churn' | 'health' | 'dead_letters' | 'model';
  severity: 'info' | 'warning' | 'critical';
  message: string;
  tenant: string | null;
}

export interface OverviewPoint {
  at: number;
  eventsIn: number;
  eventsOut: number;
  deadLetters: number;
}

export interface OverviewSnapshot {
  at: number;
  eventsInPerSecond: number;
  eventsOutPerSecond: number;
  deadLettersPerSecond: number;
  streams: StreamRate[];
  consumers: ConsumerLag[];
  services: ServiceHealth[];
  alerts: Alert[];
  /** The last few minutes, oldest first. */
  history: OverviewPoint[];
}

export interface DeadLetterSummary {
  seq: number;
  at: number;
  subject: string;
  originalSubject: string;
  reason: string;
  /** The reason without its quoted detail, for grouping. */
  reasonKind: string;
  rejectedBy: string;
  /** Read from the payload; null when it cannot be parsed (visible only to callers allowed every tenant). */
  tenant: string | null;
  size: number;
  contentType: string;
}

export interface DeadLetterPage {
  reasons: Array<{ reasonKind: string; count: number }>;
  total: number;
  items: DeadLetterSummary[];
}

export interface DeadLetterDetail extends DeadLetterSummary {
  /** The original bytes as hex. */
  hex: string;
  /** The original bytes as UTF-8 text when they are text; null for binary payloads. */
  text: string | null;
  /** Pretty JSON (or decoded protobuf as JSON) when it parses. */
  decoded: string | null;
  headers: Record<string, string>;
}

export interface ReplayRequest {
  tenant: string;
  /** DLQ sequence numbers to republish to their original subjects, unchanged. */
  seqs: number[];
  /** Optional corrected payloads (JSON text) by sequence number, for a fixed message. */
  edits?: Record<string, string>;
}

export interface ReplayResult {
  replayed: Array<{ seq: number; subject: string; stream: string; streamSeq: number; edited: boolean }>;
}

export interface ScoredRow {
  itemId: string;
  title: string;
  category: string;
  price: number;
  score: number;
  rankerScore: number;
  reasons: string[];
  sources: string[];
  features: Record<string, number>;
  contributions: Record<string, number>;
}

export interface ShopperView {
  tenant: string;
  userId: string;
  known: boolean;
  asOf: number | null;
  recent: Array<{ itemId: string; title: string; type: string; at: number }>;
  counts: Record<string, number>;
  sessions: number;
  purchases: number;
  spend: number;
  firstSeenAt: number | null;
  lastSeenAt: number | null;
  categoryAffinity: Array<{ category: string; score: number }>;
  recentQueries: string[];
  churn: {
    risk: number;
    band: string;
    modelVersion: string;
    factors: Array<{ feature: string; value: number; contribution: number }>;
  } | null;
  /** Set when a dependency could not answer; the rest of the view is still shown. */
  problems: string[];
  recommendations: {
    modelVersion: string;
    degraded: boolean;
    degradedReasons: string[];
    requestId: string;
    items: ScoredRow[];
  } | null;
}

export interface SearchView {
  tenant: string;
  query: string;
  modelVersion: string;
  degraded: boolean;
  degradedReasons: string[];
  /** The search model that scored (`search_ranker` version), or `catalog` before one is published. */
  searchModel: string;
  items: Array<
    ScoredRow & {
      /** BM25F over title, description, brand and category, normalized per query (0..1). */
      bm25: number;
      /** The text encoder's similarity of the query and the item. */
      semantic: number;
      /** The search model's score: the sum of its per-feature parts and constant. */
      searchScore: number;
      /** With a known user: the ranker's nudge (at most ±0.1). */
      personalization: number;
    }
  >;
}

export interface ModelVersionView {
  version: string;
  createdAt: number | null;
  metrics: Record<string, number>;
  curves: Array<{ name: string; values: number[] }>;
  dataRange: { from: number | null; to: number | null; events: number } | null;
  sha256: string;
  active: boolean;
}

export interface ModelKindView {
  name: string;
  /** The version the registry's pointer names. */
  activeVersion: string | null;
  /** Which version each service that serves this model has loaded. */
  live: Array<{ service: string; version: string }>;
  versions: ModelVersionView[];
}

export interface ModelsView {
  tenant: string;
  kinds: ModelKindView[];
}

export interface ActivateRequest {
  tenant: string;
  name: string;
  version: string;
}

export interface ApiError {
  error: string;
  field?: string;
}

/** A value with its 95 % interval. */
export interface EstimateView {
  value: number;
  lower: number;
  upper: number;
}

export interface ExperimentArmView {
  name: string;
  /** A/B: share of units; interleaving: 0. */
  trafficShare: number;
  /** Model name -> pinned version (the active one when absent). */
  models: Record<string, string>;
  rankerDisabled: boolean;
  retentionBoost: number;
  maxPerCategory: number;
}

export interface ExperimentSummaryView {
  id: string;
  description: string;
  /** recommend, search, similar_items. */
  surface: string;
  design: 'ab' | 'interleaving' | 'unspecified';
  state: 'scheduled' | 'running' | 'stopped' | 'unspecified';
  /** ctr, add_to_cart_rate, conversion_rate, revenue_per_mille, interleaving_preference. */
  primaryMetric: string;
  control: string;
  holdout: number;
  arms: ExperimentArmView[];
  createTime: number | null;
  startTime: number | null;
  endTime: number | null;
  stopTime: number | null;
  stopReason: string;
}

export interface ExperimentsView {
  tenant: string;
  experiments: ExperimentSummaryView[];
}

export interface ArmResultView {
  arm: string;
  units: number;
  requests: number;
  impressions: number;
  clicks: number;
  addToCarts: number;
  purchases: number;
  revenue: number;
  ctr: EstimateView | null;
  addToCartRate: EstimateView | null;
  conversionRate: EstimateView | null;
  revenuePerMille: EstimateView | null;
  errorRate: EstimateView | null;
  degradedRate: EstimateView | null;
  latencyP95Ms: number;
  expectedShare: number;
}

export interface ComparisonView {
  metric: string;
  arm: string;
  control: string;
  difference: EstimateView | null;
  relativeLift: EstimateView | null;
  pValue: number;
}

export interface PreferenceView {
  winsA: number;
  winsB: number;
  ties: number;
  preference: EstimateView | null;
  pValue: number;
  winner: string;
}

export interface InterleavingView {
  armA: string;
  armB: string;
  requests: number;
  clicks: PreferenceView | null;
  purchases: PreferenceView | null;
}

export interface ExperimentResultView {
  state: ExperimentSummaryView['state'];
  stopReason: string;
  asOf: number | null;
  primaryMetric: string;
  alpha: number;
  control: string;
  arms: ArmResultView[];
  comparisons: ComparisonView[];
  interleaving: InterleavingView | null;
  sampleRatio: {
    mismatch: boolean;
    chiSquare: number;
    degreesOfFreedom: number;
    pValue: number;
    counted: string;
    counts: Array<{ arm: string; observed: number; expected: number }>;
  } | null;
  guardrails: Array<{ arm: string; check: string; value: number; limit: number; tripped: boolean; reason: string }>;
  winner: string;
  /** Cumulative figures at evenly spaced points of event time, oldest first. */
  timeline: Array<{ at: number | null; arms: ArmResultView[]; interleaving: InterleavingView | null }>;
  unattributedOutcomes: number;
}

export interface ExperimentView {
  tenant: string;
  experiment: ExperimentSummaryView;
  result: ExperimentResultView;
}

export interface ExperimentActionRequest {
  tenant: string;
  id: string;
  /** Stop: why, in words. */
  reason?: string;
  /** Promote: the arm (the winner when empty); `force` without a significant win. */
  arm?: string;
  force?: boolean;
}

export interface ExperimentActionResult {
  experiment: ExperimentSummaryView;
  /** Promote: model name -> version made active. */
  activated: Record<string, string>;
}
