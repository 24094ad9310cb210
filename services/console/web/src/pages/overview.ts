import type { Alert, ConsumerLag, OverviewSnapshot, ServiceHealth } from '../../../src/api';
import { chartFigure, lineDataset } from '../charts';
import { card, fmt, h, notice, replace, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

function statusBadge(status: ServiceHealth['status']): HTMLElement {
  const cls = status === 'SERVING' ? 'ok' : status === 'NOT_SERVING' ? 'warn' : 'bad';
  return h('span', { class: `badge badge-${cls}` }, status.replace('_', ' ').toLowerCase());
}

export const overviewPage: Page = {
  path: '/',
  title: 'Overview',
  render(main, ctx) {
    const live = h('span', { class: 'live', 'data-testid': 'live-state' }, 'connecting…');
    const cards = h('div', { class: 'cards' });
    const chart = chartFigure(
      'Events per second over the last minutes',
      {
        type: 'line',
        data: { datasets: [] },
        options: {
          parsing: false,
          scales: {
            x: {
              type: 'linear',
              title: { display: true, text: 'seconds ago' },
              ticks: { callback: (v) => String(Math.abs(Number(v))) },
            },
            y: { beginAtZero: true, title: { display: true, text: 'per second' } },
          },
          plugins: { legend: { position: 'bottom' } },
        },
      },
      { height: 260, testId: 'rates-chart' },
    );
    const services = createTable<ServiceHealth>({
      caption: 'Services',
      rowKey: (s) => s.service,
      columns: [
        { key: 'service', label: 'Service', value: (s) => s.service },
        { key: 'status', label: 'Health', value: (s) => s.status, render: (s) => statusBadge(s.status) },
        {
          // The server keeps the tenant's own versions (each tenant has its models; one deployment serves all).
          key: 'models',
          label: `Model versions of ${ctx.tenant}`,
          value: (s) => s.models.map((m) => `${m.model} ${m.version}`).join(', '),
          render: (s) =>
            s.models.length === 0
              ? h('span', { class: 'muted' }, 'none')
              : h(
                  'ul',
                  { class: 'plain' },
                  s.models.map((m) =>
                    h(
                      'li',
                      { 'data-tenant': m.tenant ?? '' },
                      h('span', { class: 'muted' }, `${m.model} `),
                      h('code', {}, m.version),
                    ),
                  ),
                ),
        },
        { key: 'detail', label: 'Detail', value: (s) => s.detail || s.address },
      ],
      testId: 'services-table',
    });
    const consumers = createTable<ConsumerLag>({
      caption: 'Consumer lag',
      filter: true,
      rowKey: (c) => `${c.stream}/${c.consumer}`,
      initialSort: { key: 'lag', descending: true },
      columns: [
        { key: 'consumer', label: 'Consumer', value: (c) => c.consumer },
        { key: 'stream', label: 'Stream', value: (c) => c.stream },
        { key: 'lag', label: 'Pending', value: (c) => c.pending, render: (c) => fmt.int(c.pending), numeric: true },
        {
          key: 'ack',
          label: 'Unacknowledged',
          value: (c) => c.ackPending,
          render: (c) => fmt.int(c.ackPending),
          numeric: true,
        },
        {
          key: 'redelivered',
          label: 'Redelivered',
          value: (c) => c.redelivered,
          render: (c) => fmt.int(c.redelivered),
          numeric: true,
        },
      ],
      testId: 'consumers-table',
    });
    const alerts = createTable<Alert>({
      caption: 'Recent alerts',
      filter: true,
      rowKey: (a) => `${a.at}-${a.message}`,
      initialSort: { key: 'at', descending: true },
      columns: [
        { key: 'at', label: 'When', value: (a) => a.at, render: (a) => fmt.time(a.at) },
        {
          key: 'severity',
          label: 'Severity',
          value: (a) => a.severity,
          render: (a) =>
            h(
              'span',
              {
                class: `badge badge-${a.severity === 'critical' ? 'bad' : a.severity === 'warning' ? 'warn' : 'info'}`,
              },
              a.severity,
            ),
        },
        { key: 'kind', label: 'Kind', value: (a) => a.kind.replace('_', ' ') },
        { key: 'message', label: 'What happened', value: (a) => a.message },
      ],
      empty: 'No alerts.',
      testId: 'alerts-table',
      tall: true,
    });
    const problem = h('div', {});
    replace(
      main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Overview'), live),
      problem,
      cards,
      section('Throughput', chart.element),
      section('Services', services.element),
      section('Consumer lag', consumers.element),
      section('Recent alerts', alerts.element),
    );

    const show = (s: OverviewSnapshot) => {
      replace(
        cards,
        card('Events in / s', fmt.rate(s.eventsInPerSecond), { id: 'events-in', hint: 'clickstream and catalog' }),
        card('Events out / s', fmt.rate(s.eventsOutPerSecond), { id: 'events-out', hint: 'validated, normalized' }),
        card('Dead letters / s', fmt.rate(s.deadLettersPerSecond), { id: 'dead-letters-rate' }),
        card('Services serving', `${s.services.filter((x) => x.status === 'SERVING').length} of ${s.services.length}`, {
          id: 'services-serving',
        }),
        card('Dead letters stored', fmt.int(s.streams.find((x) => x.stream === 'DLQ')?.messages ?? 0), {
          id: 'dead-letters-total',
        }),
      );
      const at = s.at;
      const series = (pick: (p: (typeof s.history)[number]) => number) =>
        s.history.map((p) => ({ x: Math.round((p.at - at) / 1000), y: pick(p) }));
      chart.chart.data.datasets = [
        lineDataset(
          'Events in',
          series((p) => p.eventsIn),
          0,
        ),
        lineDataset(
          'Events out',
          series((p) => p.eventsOut),
          1,
        ),
        lineDataset(
          'Dead letters',
          series((p) => p.deadLetters),
          2,
        ),
      ];
      chart.chart.update('none');
      chart.describe(
        `now ${fmt.rate(s.eventsInPerSecond)} in, ${fmt.rate(s.eventsOutPerSecond)} out, ${fmt.rate(s.deadLettersPerSecond)} dead letters per second`,
      );
      services.update(s.services);
      consumers.update(s.consumers);
      alerts.update(s.alerts);
      live.textContent = `live · updated ${fmt.time(s.at).slice(11)}`;
      live.dataset['at'] = String(s.at);
    };

    const source = new EventSource(`/api/overview/stream?tenant=${encodeURIComponent(ctx.tenant)}`);
    source.addEventListener('overview', (ev) => {
      replace(problem);
      show(JSON.parse((ev as MessageEvent<string>).data) as OverviewSnapshot);
    });
    source.onerror = () => {
      live.textContent = 'reconnecting…';
      replace(problem, notice('warning', 'The live connection dropped; reconnecting.'));
    };
    return () => {
      source.close();
      chart.chart.destroy();
    };
  },
};
