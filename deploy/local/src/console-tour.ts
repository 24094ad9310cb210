import type { PageVisit } from '@aisle/testkit';

/** Every page of the console with what shows it has loaded: for the demo's and the tests' screenshots. */
export function consoleTour(opts: { user: string; query: string }): PageVisit[] {
  return [
    { name: 'overview', path: '/', ready: '[data-testid="live-state"][data-at]' },
    { name: 'dead-letters', path: '/dead-letters', ready: '[data-testid="letters-table"] tbody tr[data-key]' },
    {
      name: 'shopper',
      path: `/shopper?user=${encodeURIComponent(opts.user)}`,
      ready: '[data-testid="recommendations-table"] tbody tr[data-key]',
    },
    {
      name: 'search',
      path: `/search?q=${encodeURIComponent(opts.query)}`,
      ready: '[data-testid="search-table"] tbody tr[data-key]',
    },
    { name: 'models', path: '/models', ready: '[data-testid="versions-churn"] tbody tr[data-key]' },
    // The newest running experiment (else the newest) is shown with its arms.
    { name: 'experiments', path: '/experiments', ready: '[data-testid="arms-table"] tbody tr[data-key]' },
  ];
}
