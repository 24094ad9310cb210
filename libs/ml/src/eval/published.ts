/** Published results on exactly the files in ../shared/data (see its README), for side-by-side reports. */
export interface PublishedResult {
  model: string;
  protocol: 'full' | 'sampled100';
  hr10?: number;
  ndcg10?: number;
  hr20?: number;
  ndcg20?: number;
  source: string;
}

export const PUBLISHED: Record<string, PublishedResult[]> = {
  'amazon-beauty': [
    {
      model: 'PopRec',
      protocol: 'full',
      hr10: 0.0152,
      ndcg10: 0.0068,
      hr20: 0.0217,
      source: 'S3-Rec repo (CIKM 2020)',
    },
    {
      model: 'SASRec (1 negative, BCE)',
      protocol: 'full',
      hr10: 0.0605,
      ndcg10: 0.0318,
      hr20: 0.0902,
      ndcg20: 0.0394,
      source: 'S3-Rec repo, all_rank table',
    },
    {
      model: 'S3-Rec',
      protocol: 'full',
      hr10: 0.0647,
      ndcg10: 0.0327,
      hr20: 0.0994,
      ndcg20: 0.0414,
      source: 'S3-Rec repo',
    },
    {
      model: 'ICLRec',
      protocol: 'full',
      hr10: 0.0744,
      ndcg10: 0.0403,
      hr20: 0.1058,
      ndcg20: 0.0483,
      source: 'ICLRec README',
    },
  ],
  'amazon-games': [
    {
      model: 'SASRec',
      protocol: 'sampled100',
      hr10: 0.741,
      ndcg10: 0.536,
      source: 'SASRec paper (ICDM 2018), Table III',
    },
  ],
};

export function publishedFor(datasetDir: string): PublishedResult[] {
  const name = datasetDir.replace(/\/+$/, '').split('/').pop() ?? '';
  return PUBLISHED[name] ?? [];
}

/** Published session-based results (P@20 and MRR@20 in percent, every item ranked). */
export interface PublishedSessionResult {
  model: string;
  p20: number;
  mrr20: number;
  source: string;
}

export const PUBLISHED_SESSIONS: Record<string, PublishedSessionResult[]> = {
  'diginetica-sessions': [
    { model: 'POP', p20: 0.89, mrr20: 0.2, source: 'SR-GNN paper (AAAI 2019)' },
    { model: 'SR-GNN', p20: 50.73, mrr20: 17.59, source: 'Wu et al., AAAI 2019' },
    { model: 'GCE-GNN', p20: 54.22, mrr20: 19.04, source: 'Wang et al., SIGIR 2020' },
  ],
};

export function publishedSessionsFor(datasetDir: string): PublishedSessionResult[] {
  const name = datasetDir.replace(/\/+$/, '').split('/').pop() ?? '';
  return PUBLISHED_SESSIONS[name] ?? [];
}
