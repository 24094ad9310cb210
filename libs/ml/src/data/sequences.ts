/**
 * Interaction sequences with a dense item vocabulary: item index 0 is padding, 1..numItems are items.
 * The split is leave-one-out: per user, the last item is the test target, the one before it the
 * validation target, the rest training.
 */
export interface SequenceDataset {
  readonly name: string;
  /** External user ids, parallel to `sequences`. */
  readonly users: string[];
  /** External item ids; `itemIds[0]` is the padding entry (''). */
  readonly itemIds: string[];
  /** Item indices in time order, one array per user. */
  readonly sequences: Int32Array[];
}

export function numItems(d: SequenceDataset): number {
  return d.itemIds.length - 1;
}

/** Builds a dataset from (user, item) sequences of external ids, numbering items by first appearance. */
export function buildDataset(name: string, byUser: Iterable<[string, string[]]>): SequenceDataset {
  const itemIds = [''];
  const index = new Map<string, number>();
  const users: string[] = [];
  const sequences: Int32Array[] = [];
  for (const [user, items] of byUser) {
    const seq = new Int32Array(items.length);
    items.forEach((id, k) => {
      let i = index.get(id);
      if (i === undefined) {
        i = itemIds.length;
        itemIds.push(id);
        index.set(id, i);
      }
      seq[k] = i;
    });
    users.push(user);
    sequences.push(seq);
  }
  return { name, users, itemIds, sequences };
}

/** Builds a dataset whose item ids are the integers 1..n already (SASRec/S3-Rec files). */
export function buildNumericDataset(name: string, byUser: Iterable<[string, number[]]>): SequenceDataset {
  const users: string[] = [];
  const sequences: Int32Array[] = [];
  let max = 0;
  for (const [user, items] of byUser) {
    users.push(user);
    sequences.push(Int32Array.from(items));
    for (const i of items) max = Math.max(max, i);
  }
  const itemIds = Array.from({ length: max + 1 }, (_, i) => (i === 0 ? '' : String(i)));
  return { name, users, itemIds, sequences };
}

export type Split = 'train' | 'valid' | 'test';

/** Users with enough history for leave-one-out (at least 3 items). */
export function evaluableUsers(d: SequenceDataset): number[] {
  const out: number[] = [];
  d.sequences.forEach((s, u) => {
    if (s.length >= 3) out.push(u);
  });
  return out;
}

/** The model's input history and the target for a split. */
export function historyAndTarget(seq: Int32Array, split: 'valid' | 'test'): { history: Int32Array; target: number } {
  const cut = split === 'test' ? seq.length - 1 : seq.length - 2;
  return { history: seq.subarray(0, cut), target: seq[cut] as number };
}

/** Training part of a user's sequence (everything before the validation item). */
export function trainPart(seq: Int32Array): Int32Array {
  return seq.length >= 3 ? seq.subarray(0, seq.length - 2) : seq;
}

/**
 * The data set one step earlier: every user's last `n` items removed. Its test split is the original
 * validation split, so settings can be compared "on test" there without reading the original test items.
 */
export function dropLast(d: SequenceDataset, n: number): SequenceDataset {
  if (n <= 0) return d;
  return {
    ...d,
    name: `${d.name} (last ${n} dropped)`,
    sequences: d.sequences.map((s) => s.subarray(0, Math.max(0, s.length - n))),
  };
}
