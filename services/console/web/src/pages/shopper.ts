import type { ScoredRow, ShopperView } from '../../../src/api';
import { errorMessage, getJson } from '../api';
import { chartFigure, PALETTE, type ChartHandle } from '../charts';
import { card, fmt, h, notice, paramInput, replace, searchForm, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

/** Horizontal bars of per-feature contributions, largest magnitude first. */
export function contributionChart(caption: string, contributions: Record<string, number>, testId: string): ChartHandle {
  const entries = Object.entries(contributions)
    .filter(([, v]) => v !== 0)
    .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
    .slice(0, 10);
  const handle = chartFigure(
    caption,
    {
      type: 'bar',
      data: {
        labels: entries.map(([k]) => k.replace(/_/g, ' ')),
        datasets: [
          {
            label: 'contribution',
            data: entries.map(([, v]) => v),
            backgroundColor: entries.map(([, v]) => (v >= 0 ? PALETTE[0] : PALETTE[2])),
          },
        ],
      },
      options: {
        indexAxis: 'y',
        plugins: { legend: { display: false } },
        scales: { x: { title: { display: true, text: 'score change' } } },
      },
    },
    { height: Math.max(140, 28 * entries.length + 50), testId },
  );
  handle.describe(entries.map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v.toFixed(3)}`).join(', ') || 'no contributions');
  return handle;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export const shopperPage: Page = {
  path: '/shopper',
  title: 'Shopper',
  render(main, ctx) {
    const charts: ChartHandle[] = [];
    const input = paramInput('user', ctx.params.get('user') ?? '', { required: true });
    const result = h('div', { 'aria-live': 'polite' });
    const form = searchForm([['User id', input]], 'Show shopper', () => {
      ctx.setParams({ user: input.value.trim() });
      void load(input.value.trim());
    });
    replace(main, h('div', { class: 'page-head' }, h('h1', {}, 'Shopper')), form, result);

    const explain = h('div', { 'data-testid': 'explain' });
    let explainChart: ChartHandle | undefined;
    const showExplain = (row: ScoredRow) => {
      explainChart?.chart.destroy();
      const c = contributionChart(
        `Why “${row.title}”: per-feature contributions to the ranker score`,
        row.contributions,
        'contribution-chart',
      );
      explainChart = c;
      replace(
        explain,
        h(
          'p',
          {},
          h('strong', {}, row.title),
          ` · ranker score ${fmt.num(row.rankerScore)} · ${row.reasons.join('; ')}`,
        ),
        c.element,
      );
    };

    async function load(userId: string): Promise<void> {
      if (!userId) return;
      replace(result, notice('info', `Loading ${userId}…`));
      try {
        const v = await getJson<ShopperView>('/api/shopper', { tenant: ctx.tenant, user: userId });
        charts.splice(0).forEach((c) => c.chart.destroy());
        const churnBlock = v.churn
          ? (() => {
              const c = contributionChart(
                'Churn risk factors (contribution to the log-odds)',
                Object.fromEntries(v.churn.factors.map((f) => [f.feature, f.contribution])),
                'churn-chart',
              );
              charts.push(c);
              return h(
                'div',
                {},
                h(
                  'div',
                  { class: 'cards' },
                  card('Churn risk', fmt.pct(v.churn.risk), { id: 'churn-risk' }),
                  card('Band', v.churn.band),
                  card('Model', h('code', {}, v.churn.modelVersion)),
                ),
                h(
                  'table',
                  { class: 'compact', 'data-testid': 'churn-factors' },
                  h('caption', { class: 'visually-hidden' }, 'Top churn factors'),
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      h('th', { scope: 'col' }, 'Factor'),
                      h('th', { scope: 'col', class: 'num' }, 'Value'),
                      h('th', { scope: 'col', class: 'num' }, 'Contribution'),
                    ),
                  ),
                  h(
                    'tbody',
                    {},
                    v.churn.factors.map((f) =>
                      h(
                        'tr',
                        {},
                        h('td', {}, f.feature.replace(/_/g, ' ')),
                        h('td', { class: 'num' }, fmt.num(f.value, 2)),
                        h('td', { class: 'num' }, fmt.num(f.contribution)),
                      ),
                    ),
                  ),
                ),
                c.element,
              );
            })()
          : h('p', { class: 'muted' }, 'No churn score for this shopper.');
        const events = createTable({
          caption: 'Recent events',
          filter: true,
          rowKey: (r: ShopperView['recent'][number]) => `${r.at}-${r.itemId}-${r.type}`,
          initialSort: { key: 'at', descending: true },
          columns: [
            { key: 'at', label: 'When', value: (r) => r.at, render: (r) => fmt.time(r.at) },
            { key: 'type', label: 'Event', value: (r) => r.type.replace(/_/g, ' ') },
            { key: 'item', label: 'Item', value: (r) => r.title },
            { key: 'id', label: 'Item id', value: (r) => r.itemId },
          ],
          empty: 'No events.',
          testId: 'events-table',
          tall: true,
        });
        const recs = v.recommendations;
        const recTable = recs
          ? createTable<ScoredRow & { rank: number }>({
              caption: 'Recommendations',
              rowKey: (r) => r.itemId,
              initialSort: { key: 'rank' },
              rows: recs.items.map((r, i) => ({ ...r, rank: i + 1 })),
              columns: [
                { key: 'rank', label: '#', value: (r) => r.rank, numeric: true },
                { key: 'title', label: 'Item', value: (r) => r.title },
                { key: 'category', label: 'Category', value: (r) => r.category.split(' > ').pop() ?? '' },
                { key: 'score', label: 'Score', value: (r) => r.score, render: (r) => fmt.num(r.score), numeric: true },
                { key: 'reasons', label: 'Reasons', value: (r) => r.reasons.join('; ') },
                {
                  key: 'explain',
                  label: 'Explain',
                  value: (r) => r.rank,
                  render: (r) =>
                    h(
                      'button',
                      {
                        type: 'button',
                        class: 'secondary',
                        'aria-label': `Explain ${r.title}`,
                        onclick: () => showExplain(r),
                      },
                      'Explain',
                    ),
                },
              ],
              testId: 'recommendations-table',
            })
          : undefined;
        replace(
          result,
          v.problems.length ? notice('warning', `Some parts could not be loaded: ${v.problems.join('; ')}`) : null,
          !v.known ? notice('info', `${v.userId} has no events in ${v.tenant}.`) : null,
          h(
            'div',
            { class: 'cards', 'data-testid': 'shopper-cards' },
            Object.entries(v.counts).map(([k, n]) =>
              card(capitalize(k.replace(/_/g, ' ')), fmt.int(n), { id: `count-${k}` }),
            ),
            card('Sessions', fmt.int(v.sessions), { id: 'sessions' }),
            card('Spend', fmt.num(v.spend, 2), { id: 'spend' }),
            card('Last seen', fmt.time(v.lastSeenAt)),
          ),
          h(
            'div',
            { class: 'two-col' },
            section('Churn risk', churnBlock),
            section(
              'Tastes',
              h('h3', {}, 'Category affinity'),
              v.categoryAffinity.length
                ? h(
                    'ul',
                    { class: 'bars' },
                    v.categoryAffinity.map((a) =>
                      h('li', {}, h('span', {}, a.category), h('span', { class: 'muted' }, ` ${fmt.num(a.score, 2)}`)),
                    ),
                  )
                : h('p', { class: 'muted' }, 'None yet.'),
              h('h3', {}, 'Recent searches'),
              v.recentQueries.length
                ? h(
                    'ul',
                    {},
                    v.recentQueries.map((q) => h('li', {}, q)),
                  )
                : h('p', { class: 'muted' }, 'None.'),
            ),
          ),
          section(
            'Recommendations',
            recs
              ? h(
                  'p',
                  { class: 'muted', 'data-testid': 'recommendations-meta' },
                  `model ${recs.modelVersion}${recs.degraded ? ` · degraded: ${recs.degradedReasons.join('; ')}` : ''} · request ${recs.requestId}`,
                )
              : null,
            recTable?.element ?? h('p', { class: 'muted' }, 'No recommendations.'),
            explain,
          ),
          section('Recent events', events.element),
        );
        events.update(v.recent);
        const first = recs?.items[0];
        if (first) showExplain(first);
      } catch (err) {
        replace(result, notice('error', errorMessage(err)));
      }
    }

    if (input.value) void load(input.value);
    else input.focus();
    return () => {
      charts.forEach((c) => c.chart.destroy());
      explainChart?.chart.destroy();
    };
  },
};
