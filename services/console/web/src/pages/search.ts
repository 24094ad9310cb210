import type { SearchView } from '../../../src/api';
import { errorMessage, getJson } from '../api';
import { chartFigure, PALETTE, type ChartHandle } from '../charts';
import { fmt, h, notice, paramInput, replace, searchForm, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

type Row = SearchView['items'][number] & { rank: number };

export const searchPage: Page = {
  path: '/search',
  title: 'Search playground',
  render(main, ctx) {
    let chart: ChartHandle | undefined;
    const query = paramInput('q', ctx.params.get('q') ?? '', { type: 'search', required: true });
    const user = paramInput('user', ctx.params.get('user') ?? '');
    const result = h('div', { 'aria-live': 'polite' });
    const form = searchForm(
      [
        ['Query', query],
        ['User id (optional, personalizes)', user],
      ],
      'Search',
      () => {
        ctx.setParams({ q: query.value.trim(), user: user.value.trim() });
        void run();
      },
    );
    replace(
      main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Search playground')),
      h(
        'p',
        { class: 'muted', 'data-testid': 'search-how' },
        'What orders the results (ranking’s Search): the search engine finds candidates by BM25F over title, description, brand and category (with spelling correction, query expansion and category intent) and adds the text encoder’s nearest items; the search model (search_ranker, or a scorer of catalog-only features until one is published) scores each from its search features, lexical BM25F and semantic similarity among them; with a user id, the ranker’s score nudges that by at most ±0.1; filters and rules (in-stock items first, a few items per category in the first ten) then give the final order.',
      ),
      form,
      result,
    );

    async function run(): Promise<void> {
      const q = query.value.trim();
      if (!q) return;
      replace(result, notice('info', 'Searching…'));
      try {
        const v = await getJson<SearchView>('/api/search', {
          tenant: ctx.tenant,
          q,
          user: user.value.trim(),
          limit: 20,
        });
        chart?.chart.destroy();
        const rows: Row[] = v.items.map((r, i) => ({ ...r, rank: i + 1 }));
        const top = rows.slice(0, 10);
        chart = chartFigure(
          `Scores of the top ${top.length} results for “${q}”`,
          {
            type: 'bar',
            data: {
              labels: top.map((r) => (r.title.length > 22 ? `${r.title.slice(0, 21)}…` : r.title)),
              datasets: [
                { label: 'BM25F', data: top.map((r) => r.bm25), backgroundColor: PALETTE[0] },
                { label: 'semantic', data: top.map((r) => r.semantic), backgroundColor: PALETTE[1] },
                { label: 'search model', data: top.map((r) => r.searchScore), backgroundColor: PALETTE[4] },
                { label: 'final', data: top.map((r) => r.score), backgroundColor: PALETTE[3] },
              ],
            },
            // Horizontal bars: item titles stay readable on a phone as on a desktop.
            options: {
              indexAxis: 'y',
              plugins: { legend: { position: 'bottom' } },
              scales: { x: { beginAtZero: true } },
            },
          },
          { height: 70 + 36 * top.length, testId: 'search-chart' },
        );
        chart.describe(
          top
            .map(
              (r) =>
                `${r.title}: BM25F ${fmt.num(r.bm25)}, semantic ${fmt.num(r.semantic)}, search model ${fmt.num(r.searchScore)}, final ${fmt.num(r.score)}`,
            )
            .join('; '),
        );
        const table = createTable<Row>({
          caption: 'Results',
          filter: true,
          rowKey: (r) => r.itemId,
          initialSort: { key: 'rank' },
          rows,
          columns: [
            { key: 'rank', label: '#', value: (r) => r.rank, numeric: true },
            { key: 'title', label: 'Item', value: (r) => r.title },
            { key: 'bm25', label: 'BM25F', value: (r) => r.bm25, render: (r) => fmt.num(r.bm25), numeric: true },
            {
              key: 'semantic',
              label: 'Semantic',
              value: (r) => r.semantic,
              render: (r) => fmt.num(r.semantic),
              numeric: true,
            },
            {
              key: 'search',
              label: 'Search model',
              value: (r) => r.searchScore,
              render: (r) => fmt.num(r.searchScore),
              numeric: true,
            },
            {
              key: 'personalization',
              label: 'Personalization',
              value: (r) => r.personalization,
              render: (r) => fmt.num(r.personalization),
              numeric: true,
            },
            { key: 'score', label: 'Final', value: (r) => r.score, render: (r) => fmt.num(r.score), numeric: true },
            { key: 'sources', label: 'Found by', value: (r) => r.sources.join(', ') },
            { key: 'reasons', label: 'Reasons', value: (r) => r.reasons.join('; ') },
          ],
          empty: 'No results.',
          testId: 'search-table',
        });
        replace(
          result,
          h(
            'p',
            { class: 'muted', 'data-testid': 'search-summary' },
            `${rows.length} results · scored by ${v.searchModel === 'catalog' || !v.searchModel ? 'the catalog-only scorer (no search model published yet)' : `search model ${v.searchModel}`} · models ${v.modelVersion}${v.degraded ? ` · degraded: ${v.degradedReasons.join('; ')}` : ''}`,
          ),
          section('Scores side by side', chart.element),
          section('Results', table.element),
        );
      } catch (err) {
        replace(result, notice('error', errorMessage(err)));
      }
    }

    if (query.value) void run();
    else query.focus();
    return () => chart?.chart.destroy();
  },
};
