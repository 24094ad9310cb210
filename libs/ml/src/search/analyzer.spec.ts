import { analyze, DEFAULT_ANALYZER, normalizeText, PLAIN_ANALYZER, queryTerms, stemPlural } from './analyzer';

describe('analyze', () => {
  test('plurals meet their singular', () => {
    expect(['boxes', 'batteries', 'shoes', 'glasses', 'dresses', 'watches', 'jeans'].map(stemPlural)).toEqual([
      'box',
      'battery',
      'shoe',
      'glass',
      'dress',
      'watch',
      'jean',
    ]);
    expect(['glass', 'bus', 'this', 'ps4', 'gas'].map(stemPlural)).toEqual(['glass', 'bus', 'this', 'ps4', 'gas']);
    expect(analyze("Men's Running Shoes", { ...DEFAULT_ANALYZER, exact: false })).toEqual(['men', 'running', 'shoe']);
  });

  test('a number and its unit give one canonical term however they are written', () => {
    for (const t of ['12 oz', '12oz', '12-Ounce', '12 ounces', '１２ｏｚ']) expect(analyze(t)).toContain('12oz');
    expect(analyze('16 GB memory card')).toContain('16gb');
    expect(analyze('Pillow 8" x 8"')).toContain('8in');
    expect(analyze('1/2 inch pipe')).toContain('1/2in');
    expect(analyze('10.1oz', { ...DEFAULT_ANALYZER, exact: false })).toEqual(['10.1', 'oz', '10.1oz']);
  });

  test('model numbers are found by their parts and by their joined form', () => {
    expect(analyze('Concept WR-44526 rack')).toEqual(['concept', 'wr', '44526', 'wr44526', 'rack']);
    expect(analyze('ViewSonic Pro8200')).toEqual(['viewsonic', 'pro', '8200', 'pro8200']);
    expect(analyze('Blu-ray')).toContain('bluray');
    expect(analyze('bluray')).toContain('bluray');
    expect(analyze('ps 4')).toEqual(expect.arrayContaining(['ps', '4']));
    expect(analyze('PS4')).toEqual(expect.arrayContaining(['ps', '4', 'ps4']));
  });

  test('the words as typed are kept next to their normalized forms (normalization only adds matches)', () => {
    expect(analyze('20 Gram')).toEqual(['20', 'g', '20g', 'gram']);
    expect(analyze('Running Shoes')).toEqual(['running', 'shoe', 'shoes']);
    expect(analyze('10.1oz')).toEqual(['10.1', 'oz', '10.1oz', '10', '1oz']);
    expect(analyze('12-Ounce')).toEqual(['12', 'oz', '12oz', 'ounce']);
    // Every token of the reference tokenization is among the terms, however normalization read the word.
    for (const t of ['Gorilla Glue Gel, 20 Gram', '5.5mm x 2.1mm DC Jack', 'Tape 3/4 in x 66 ft', "Men's 12-Pack"])
      expect(analyze(t)).toEqual(expect.arrayContaining(analyze(t, PLAIN_ANALYZER)));
    // Nothing is added where the typed word is its normalized form.
    expect(analyze('Concept WR-44526 rack')).toEqual(['concept', 'wr', '44526', 'wr44526', 'rack']);
  });

  test('CJK text becomes character unigrams and bigrams; Latin text around it stays words', () => {
    expect(analyze('耐克运动鞋 Nike')).toEqual(['耐', '耐克', '克', '克运', '运', '运动', '动', '动鞋', '鞋', 'nike']);
    expect(analyze('运动鞋')).toEqual(expect.arrayContaining(['运动', '动鞋']));
    expect(analyze('ワイヤレスイヤホン')).toContain('イヤ');
  });

  test('normalization: full-width forms, diacritics, case', () => {
    expect(normalizeText('Ｃｒèｍｅ BRÛLÉE')).toBe('creme brulee');
  });

  test('the plain analyzer is the reference tokenization (lower-case ASCII alphanumerics)', () => {
    expect(analyze('Crème 12oz, Shop-Vac', PLAIN_ANALYZER)).toEqual(['cr', 'me', '12oz', 'shop', 'vac']);
    expect(queryTerms('red red shoes')).toEqual(['red', 'shoe', 'shoes']);
  });
});
