import {
  heuristicScore,
  heuristicScoreAt,
  HEURISTIC_WEIGHTS,
  RANKER_DIM,
  RANKER_FEATURES,
  rankerFeatures,
  rankerRow,
  writeRankerFeatures,
} from './ranker';

describe('ranker features', () => {
  const inputs = {
    seqScore: 2.5,
    seqRank: 3,
    covisScore: 0.7,
    covisRank: 1,
    popularity: 12,
    ctr: 0.08,
    conversionRate: 0.02,
    categoryAffinity: 0.6,
    price: 30,
    userPriceMean: 20,
    userPriceStd: 5,
    textScore: 0.4,
    lexicalScore: 0.9,
    historyLength: 7,
    sameCategoryAsLast: true,
    attributeOverlap: 0.25,
  };

  test('the in-place writer fills the row named by RANKER_FEATURES', () => {
    const expected = rankerRow({
      seq_score: 2.5,
      seq_rank_log: Math.log1p(3),
      covis_score_log: Math.log1p(0.7),
      covis_rank_log: Math.log1p(1),
      popularity_log: Math.log1p(12),
      ctr: 0.08,
      conversion_rate: 0.02,
      category_affinity: 0.6,
      price_z: (30 - 20) / (5 + 0.25 * 20 + 1e-6),
      text_score: 0.4,
      lexical_score: 0.9,
      user_history_log: Math.log1p(7),
      same_category_as_last: 1,
      attribute_overlap: 0.25,
    });
    const matrix = new Float32Array(RANKER_DIM * 3).fill(-1);
    writeRankerFeatures(inputs, matrix, RANKER_DIM);
    expect(Array.from(matrix.subarray(RANKER_DIM, 2 * RANKER_DIM))).toEqual(Array.from(expected));
    expect(Array.from(matrix.subarray(0, RANKER_DIM)).every((v) => v === -1)).toBe(true);
    expect(Array.from(rankerFeatures(inputs))).toEqual(Array.from(expected));
  });

  test('missing inputs take the documented defaults and non-finite ones become 0', () => {
    const row = rankerFeatures({ historyLength: 0, textScore: Number.NaN });
    const at = (f: (typeof RANKER_FEATURES)[number]) => row[RANKER_FEATURES.indexOf(f)];
    expect(at('seq_rank_log')).toBeCloseTo(Math.log1p(100));
    expect(at('ctr')).toBeCloseTo(0.05);
    expect(at('conversion_rate')).toBeCloseTo(0.01);
    expect(at('text_score')).toBe(0);
  });

  test('the heuristic weights the same features, at any row of a matrix', () => {
    const row = rankerFeatures(inputs);
    let expected = 0;
    RANKER_FEATURES.forEach((f, j) => (expected += (HEURISTIC_WEIGHTS[f] ?? 0) * (row[j] as number)));
    const matrix = new Float32Array(RANKER_DIM * 2);
    matrix.set(row, RANKER_DIM);
    expect(heuristicScore(row)).toBeCloseTo(expected, 10);
    expect(heuristicScoreAt(matrix, RANKER_DIM)).toBeCloseTo(expected, 10);
  });
});
