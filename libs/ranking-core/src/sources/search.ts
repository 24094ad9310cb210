import type { CandidateSet } from '../candidates';
import type { RequestContext } from '../context';
import type { LexicalMatch, LexicalSearchPort, Retrieved, TextRetrievalPort } from '../ports';

/** Semantic retrieval of a text; nothing without a text model port. */
export async function retrieveByText(
  ctx: RequestContext,
  port: TextRetrievalPort | undefined,
  text: string,
  k: number,
  exclude: readonly string[],
): Promise<Retrieved | undefined> {
  if (!port || !text) return undefined;
  return ctx.call(port.dependency ?? 'text_retrieval', (b) => port.byText(text, k, exclude, b));
}

export function addSemanticCandidates(ctx: RequestContext, out: CandidateSet, got: Retrieved | undefined): void {
  if (!got) return;
  ctx.versions.push(`text_encoder:${got.version}`);
  for (const n of got.items) {
    const c = out.add(n.itemId, 'semantic');
    if (c) c.textScore = n.score;
  }
}

export function addLexicalCandidates(out: CandidateSet, matches: readonly LexicalMatch[]): void {
  for (const m of matches) {
    const c = out.add(m.itemId, 'bm25');
    if (!c) continue;
    c.lexical = m.score;
    c.terms = m.terms;
  }
}

/**
 * The search surface's candidate stage: lexical matches (in process) and semantic ones (a dependency).
 * The default runs BM25 over the catalog and the text encoder; a different stage can be plugged into
 * the pipeline (`PipelineOptions.searchStage`).
 */
export interface SearchStage {
  candidates(ctx: RequestContext, query: string, out: CandidateSet): Promise<void>;
}

export const LEXICAL_CANDIDATES = 200;
export const SEMANTIC_CANDIDATES = 100;

export function defaultSearchStage(
  lexical: LexicalSearchPort | undefined,
  text: TextRetrievalPort | undefined,
): SearchStage {
  return {
    async candidates(ctx, query, out) {
      const semantic = retrieveByText(ctx, text, query, SEMANTIC_CANDIDATES, []);
      if (lexical) addLexicalCandidates(out, lexical.search(query, LEXICAL_CANDIDATES));
      addSemanticCandidates(ctx, out, await semantic);
    },
  };
}
