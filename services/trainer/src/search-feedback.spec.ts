import { searchFeedback } from './search-feedback';

const ev = (
  type: string,
  at: number,
  extra: Partial<{ itemId: string; query: string; requestId: string; sessionId: string }> = {},
) => ({
  type,
  userId: 'u1',
  sessionId: extra.sessionId ?? 's1',
  itemId: extra.itemId ?? '',
  query: extra.query ?? '',
  occurredAt: at,
  requestId: extra.requestId,
});

test('clicks, carts and purchases join their search by request id; the strongest grade wins', () => {
  const fb = searchFeedback([
    ev('search', 0, { query: ' Wine  Rack ', requestId: 'r1' }),
    ev('click', 1, { itemId: 'a', requestId: 'r1' }),
    ev('click', 2, { itemId: 'b', requestId: 'r1' }),
    ev('add_to_cart', 3, { itemId: 'b', requestId: 'r1' }),
    ev('purchase', 4, { itemId: 'b', requestId: 'r1' }),
    ev('click', 5, { itemId: 'c', requestId: 'other-surface' }),
  ]);
  expect(fb).toEqual([
    {
      text: 'wine rack',
      gains: new Map([
        ['a', 1],
        ['b', 3],
      ]),
    },
  ]);
});

test('without request ids, the first item opened after a search in the session is its click', () => {
  const fb = searchFeedback([
    ev('search', 0, { query: 'lamp' }),
    ev('view', 10, { itemId: 'x' }),
    ev('view', 20, { itemId: 'y' }),
    ev('add_to_cart', 30, { itemId: 'x' }),
    ev('view', 40, { itemId: 'z', sessionId: 's2' }),
    ev('search', 100, { query: 'desk' }),
    ev('view', 100 + 31 * 60_000, { itemId: 'late' }),
  ]);
  expect(fb).toEqual([{ text: 'lamp', gains: new Map([['x', 2]]) }]);
});
