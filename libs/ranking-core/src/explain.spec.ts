import { occlusionContributions, type MatrixScorer } from './explain';

const scorer =
  (f: (row: Float32Array) => number, dim: number): MatrixScorer =>
  async (m, rows) =>
    Float32Array.from({ length: rows }, (_, r) => f(m.subarray(r * dim, (r + 1) * dim)));

describe('occlusionContributions', () => {
  it('gives weight x value for a linear scorer and nothing for absent features', async () => {
    const w = [0.5, -2, 3];
    const linear = scorer((r) => r.reduce((s, v, j) => s + v * (w[j] as number), 0), 3);
    const matrix = Float32Array.from([2, 1, 0, 0, 0, 1, 9, 9, 9]);
    const scores = await linear(matrix, 3);
    // Rows 0 and 1 only (the top of the list); row 2 is not explained.
    const c = await occlusionContributions(matrix, [1, 0], scores, linear, ['a', 'b', 'c']);
    expect(c).toEqual([
      { a: 0, b: 0, c: 3 },
      { a: 1, b: -2, c: 0 },
    ]);
  });

  it('catches interactions a linear read of the inputs would miss', async () => {
    const product = scorer((r) => (r[0] as number) * (r[1] as number), 2);
    const matrix = Float32Array.from([2, 3]);
    const c = await occlusionContributions(matrix, [0], await product(matrix, 1), product, ['x', 'y']);
    expect(c).toEqual([{ x: 6, y: 6 }]);
  });
});
