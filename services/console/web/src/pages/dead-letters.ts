import type { DeadLetterDetail, DeadLetterPage, DeadLetterSummary, ReplayResult } from '../../../src/api';
import { errorMessage, getJson, postJson } from '../api';
import { announce, field, fmt, h, notice, replace, section } from '../dom';
import type { Page } from '../page';
import { createTable } from '../table';

function hexDump(hex: string): string {
  const lines: string[] = [];
  for (let i = 0; i < hex.length && lines.length < 64; i += 32) {
    const chunk = hex.slice(i, i + 32);
    const bytes = chunk.match(/../g) ?? [];
    const ascii = bytes.map((b) => {
      const c = parseInt(b, 16);
      return c >= 32 && c < 127 ? String.fromCharCode(c) : '.';
    });
    lines.push(`${(i / 2).toString(16).padStart(6, '0')}  ${bytes.join(' ').padEnd(47)}  ${ascii.join('')}`);
  }
  return lines.join('\n');
}

export const deadLettersPage: Page = {
  path: '/dead-letters',
  title: 'Dead letters',
  render(main, ctx) {
    const operator = ctx.session.role === 'operator';
    let reason = ctx.params.get('reason') ?? '';
    const status = h('div', {});
    const reasonTable = createTable<{ reasonKind: string; count: number }>({
      caption: 'Reasons',
      rowKey: (r) => r.reasonKind,
      initialSort: { key: 'count', descending: true },
      columns: [
        {
          key: 'reason',
          label: 'Reason',
          value: (r) => r.reasonKind,
          render: (r) =>
            h(
              'button',
              {
                type: 'button',
                class: `link${r.reasonKind === reason ? ' current' : ''}`,
                'aria-pressed': r.reasonKind === reason ? 'true' : 'false',
                onclick: () => {
                  reason = r.reasonKind === reason ? '' : r.reasonKind;
                  ctx.setParams({ reason });
                  void load();
                },
              },
              r.reasonKind,
            ),
        },
        { key: 'count', label: 'Messages', value: (r) => r.count, numeric: true },
      ],
      empty: 'No dead letters for this tenant.',
      testId: 'reasons-table',
    });
    const letters = createTable<DeadLetterSummary>({
      caption: 'Dead letters',
      filter: true,
      rowKey: (d) => String(d.seq),
      initialSort: { key: 'seq', descending: true },
      selectable: { label: (d) => `Select dead letter ${d.seq}` },
      columns: [
        { key: 'seq', label: 'Seq', value: (d) => d.seq, numeric: true },
        { key: 'at', label: 'Rejected', value: (d) => d.at, render: (d) => fmt.time(d.at) },
        { key: 'reason', label: 'Reason', value: (d) => d.reason },
        { key: 'subject', label: 'Original subject', value: (d) => d.originalSubject },
        { key: 'tenant', label: 'Tenant', value: (d) => d.tenant ?? 'unknown' },
        { key: 'size', label: 'Size', value: (d) => d.size, render: (d) => fmt.bytes(d.size), numeric: true },
        {
          key: 'inspect',
          label: 'Inspect',
          value: (d) => d.seq,
          render: (d) =>
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                onclick: () => void inspect(d.seq),
                'aria-label': `Inspect dead letter ${d.seq}`,
              },
              'Inspect',
            ),
        },
      ],
      empty: 'No dead letters.',
      testId: 'letters-table',
    });
    const inspector = h(
      'div',
      { 'data-testid': 'inspector' },
      h('p', { class: 'muted' }, 'Choose a dead letter to see its original bytes.'),
    );
    const replaySelected = h(
      'button',
      {
        type: 'button',
        class: 'primary',
        disabled: !operator,
        onclick: () => {
          const seqs = letters.selected().map((d) => d.seq);
          if (seqs.length === 0) return replace(status, notice('warning', 'Select the dead letters to replay first.'));
          void replay(seqs, {});
        },
      },
      'Replay selected',
    );
    const summary = h('p', { class: 'muted', 'data-testid': 'dlq-summary' });
    replace(
      main,
      h('div', { class: 'page-head' }, h('h1', {}, 'Dead letters'), summary),
      status,
      h('div', { class: 'two-col' }, section('By reason', reasonTable.element), section('Inspect', inspector)),
      section(
        'Messages',
        h(
          'div',
          { class: 'actions' },
          replaySelected,
          operator ? null : h('span', { class: 'muted' }, 'Replaying needs the operator role.'),
        ),
        letters.element,
      ),
    );

    async function load(): Promise<void> {
      try {
        const page = await getJson<DeadLetterPage>('/api/dead-letters', { tenant: ctx.tenant, reason, limit: 500 });
        reasonTable.update(page.reasons);
        letters.update(page.items);
        // Open the newest letter in the inspector unless one is already shown.
        const newest = page.items[0];
        if (newest && inspected === undefined) void inspect(newest.seq, false);
        summary.textContent = `${fmt.int(page.total)} dead letter${page.total === 1 ? '' : 's'} for ${ctx.tenant}${reason ? `; showing “${reason}”` : ''}`;
      } catch (err) {
        replace(status, notice('error', errorMessage(err)));
      }
    }

    async function replay(seqs: number[], edits: Record<string, string>): Promise<void> {
      replace(status, notice('info', `Replaying ${seqs.length}…`));
      try {
        const r = await postJson<ReplayResult>('/api/dead-letters/replay', { tenant: ctx.tenant, seqs, edits });
        const text = `Replayed ${r.replayed.length}: ${r.replayed
          .map((x) => `#${x.seq} → ${x.stream} #${x.streamSeq}${x.edited ? ' (edited)' : ''}`)
          .join(', ')}. Ingest validates them again; a message that still fails comes back here.`;
        replace(status, notice('success', text));
        announce(text);
        window.setTimeout(() => void load(), 1500);
      } catch (err) {
        replace(status, notice('error', errorMessage(err)));
      }
    }

    let inspected: number | undefined;
    let latestInspect = 0;
    async function inspect(seq: number, focus = true): Promise<void> {
      inspected = seq;
      // Only the last request shows: an earlier, slower answer must not replace the one asked for since.
      const mine = ++latestInspect;
      try {
        const d = await getJson<DeadLetterDetail>(`/api/dead-letters/${seq}`, { tenant: ctx.tenant });
        if (mine !== latestInspect) return;
        const editor = h('textarea', { rows: 8, spellcheck: 'false', class: 'code' });
        editor.value = d.decoded ?? d.text ?? '';
        const canEdit = operator && d.text !== null && !/protobuf/i.test(d.contentType);
        replace(
          inspector,
          h('h3', { tabindex: -1, id: 'inspected' }, `Dead letter #${d.seq}`),
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Reason'),
            h('dd', { 'data-testid': 'inspected-reason' }, d.reason),
            h('dt', {}, 'Subject'),
            h('dd', {}, d.originalSubject),
            h('dt', {}, 'Content type'),
            h('dd', {}, d.contentType || '(none: JSON)'),
            h('dt', {}, 'Tenant'),
            h('dd', {}, d.tenant ?? 'unknown'),
            h('dt', {}, 'Rejected'),
            h('dd', {}, `${fmt.time(d.at)} by ${d.rejectedBy || '?'}`),
          ),
          d.decoded || d.text ? h('h4', {}, d.decoded ? 'Payload' : 'Payload (text)') : null,
          d.decoded || d.text ? h('pre', { class: 'code', tabindex: 0 }, d.decoded ?? d.text) : null,
          h(
            'details',
            {},
            h('summary', {}, `Original bytes (${fmt.bytes(d.size)})`),
            h('pre', { class: 'code hex', tabindex: 0 }, hexDump(d.hex)),
          ),
          canEdit
            ? h(
                'div',
                { class: 'fix' },
                field('Corrected payload (JSON)', editor),
                h(
                  'div',
                  { class: 'actions' },
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'primary',
                      onclick: () => void replay([d.seq], { [String(d.seq)]: editor.value }),
                    },
                    'Replay corrected',
                  ),
                  h(
                    'button',
                    { type: 'button', class: 'secondary', onclick: () => void replay([d.seq], {}) },
                    'Replay unchanged',
                  ),
                ),
              )
            : null,
        );
        if (focus) document.getElementById('inspected')?.focus();
      } catch (err) {
        replace(inspector, notice('error', errorMessage(err)));
      }
    }

    void load();
    const seq = Number(ctx.params.get('seq'));
    if (seq > 0) void inspect(seq);
    const timer = window.setInterval(() => void load(), 10_000);
    return () => window.clearInterval(timer);
  },
};
