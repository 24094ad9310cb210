import { rocAuc } from '../eval/classification';
import { mulberry32 } from '../eval/random';
import { fitGbdt } from './gbdt';

test('boosted trees learn an interaction that no additive model can, and generalize to new rows', () => {
  const rand = mulberry32(3);
  const draw = (n: number) => {
    const X: number[][] = [];
    const y: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = [rand(), rand(), rand()];
      // Label: XOR of two thresholds (feature 2 is noise), flipped for 10 % of rows.
      const clean = Number((x[0] as number) > 0.5 !== (x[1] as number) > 0.5);
      X.push(x);
      y.push(rand() < 0.1 ? 1 - clean : clean);
    }
    return { X, y };
  };
  const train = draw(4000);
  const test = draw(2000);
  const f = fitGbdt(train.X, train.y, { trees: 60, depth: 2, learningRate: 0.2 });
  expect(rocAuc(test.X.map(f), test.y)).toBeGreaterThan(0.85);
  // Each feature alone carries nothing: an additive score is at chance.
  expect(
    Math.abs(
      rocAuc(
        test.X.map((x) => (x[0] as number) + (x[1] as number)),
        test.y,
      ) - 0.5,
    ),
  ).toBeLessThan(0.05);
  // No trees: the prior log-odds for every row.
  const prior = fitGbdt(train.X, train.y, { trees: 0 });
  const share = train.y.reduce((a, b) => a + b, 0) / train.y.length;
  expect(prior([0.9, 0.9, 0.9])).toBeCloseTo(Math.log(share / (1 - share)), 10);
});
