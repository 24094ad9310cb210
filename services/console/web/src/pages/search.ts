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
        { class: 'muted' },
        'Each result with its lexical (BM25, normalized per query), semantic (text encoder) and ranker scores, and the final score that orders them.',
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
                { label: 'BM25', data: top.map((r) => r.bm25), backgroundColor: PALETTE[0] },
                { label: 'semantic', data: top.map((r) => r.semantic), backgroundColor: PALETTE[1] },
                { label: 'final', data: top.map((r) => r.score), backgroundColor: PALETTE[3] },
              ],
            },
            // Horizontal bars: item titles stay readable on a phone as on a desktop.
            options: {
              indexAxis: 'y',
              plugins: { legend: { position: 'bottom' } },
              scales: { x: { beginAtZero: true, max: 1 } },
            },
          },
          { height: 70 + 36 * top.length, testId: 'search-chart' },
        );
        chart.describe(
          top
            .map(
              (r) => `${r.title}: BM25 ${fmt.num(r.bm25)}, semantic ${fmt.num(r.semantic)}, final ${fmt.num(r.score)}`,
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
            { key: 'bm25', label: 'BM25', value: (r) => r.bm25, render: (r) => fmt.num(r.bm25), numeric: true },
            {
              key: 'semantic',
              label: 'Semantic',
              value: (r) => r.semantic,
              render: (r) => fmt.num(r.semantic),
              numeric: true,
            },
            {
              key: 'ranker',
              label: 'Ranker',
              value: (r) => r.rankerScore,
              render: (r) => fmt.num(r.rankerScore),
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
            `${rows.length} results · model ${v.modelVersion}${v.degraded ? ` · degraded: ${v.degradedReasons.join('; ')}` : ''}`,
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
