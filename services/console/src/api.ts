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
  /** Model kind -> version the service has loaded (from its /status). */
  models: Record<string, string>;
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
  items: Array<ScoredRow & { bm25: number; semantic: number }>;
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
