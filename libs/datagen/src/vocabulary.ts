/** Departments, subcategories and the words product titles are made of. */
export interface SubcategorySpec {
  readonly name: string;
  readonly nouns: readonly string[];
  readonly basePrice: number;
}

export interface DepartmentSpec {
  readonly name: string;
  readonly adjectives: readonly string[];
  readonly subcategories: readonly SubcategorySpec[];
}

export const DEPARTMENTS: readonly DepartmentSpec[] = [
  {
    name: 'Beauty',
    adjectives: ['hydrating', 'gentle', 'organic', 'lavender', 'vitamin', 'matte', 'radiant', 'soothing'],
    subcategories: [
      { name: 'Skin Care', nouns: ['face cream', 'serum', 'cleanser', 'toner', 'night mask'], basePrice: 24 },
      { name: 'Hair Care', nouns: ['shampoo', 'conditioner', 'hair oil', 'styling gel'], basePrice: 14 },
      { name: 'Makeup', nouns: ['lipstick', 'mascara', 'foundation', 'eyeliner', 'blush'], basePrice: 18 },
      { name: 'Fragrance', nouns: ['eau de parfum', 'body mist', 'cologne'], basePrice: 55 },
    ],
  },
  {
    name: 'Electronics',
    adjectives: ['wireless', 'portable', 'smart', 'compact', 'bluetooth', 'rechargeable', 'noise cancelling'],
    subcategories: [
      { name: 'Audio', nouns: ['headphones', 'earbuds', 'speaker', 'soundbar'], basePrice: 80 },
      {
        name: 'Phone Accessories',
        nouns: ['phone case', 'charger', 'power bank', 'screen protector', 'usb cable'],
        basePrice: 20,
      },
      { name: 'Cameras', nouns: ['action camera', 'tripod', 'memory card', 'camera bag'], basePrice: 120 },
    ],
  },
  {
    name: 'Kitchen',
    adjectives: ['stainless', 'nonstick', 'ceramic', 'bamboo', 'cast iron', 'glass'],
    subcategories: [
      { name: 'Cookware', nouns: ['frying pan', 'saucepan', 'dutch oven', 'wok'], basePrice: 45 },
      {
        name: 'Coffee',
        nouns: ['coffee grinder', 'french press', 'espresso cups', 'coffee beans', 'milk frother'],
        basePrice: 30,
      },
      { name: 'Knives', nouns: ['chef knife', 'knife block', 'sharpener', 'cutting board'], basePrice: 35 },
    ],
  },
  {
    name: 'Sports',
    adjectives: ['lightweight', 'breathable', 'waterproof', 'ergonomic', 'durable', 'thermal'],
    subcategories: [
      { name: 'Running', nouns: ['running shoes', 'running socks', 'sports watch', 'hydration belt'], basePrice: 60 },
      { name: 'Yoga', nouns: ['yoga mat', 'yoga block', 'yoga strap', 'meditation cushion'], basePrice: 25 },
      { name: 'Cycling', nouns: ['bike helmet', 'bike light', 'cycling gloves', 'bike lock'], basePrice: 40 },
    ],
  },
  {
    name: 'Home',
    adjectives: ['cozy', 'minimalist', 'handmade', 'linen', 'scented', 'woven'],
    subcategories: [
      { name: 'Bedding', nouns: ['duvet cover', 'pillow', 'sheet set', 'throw blanket'], basePrice: 50 },
      { name: 'Candles', nouns: ['candle', 'candle holder', 'wax melts', 'diffuser'], basePrice: 16 },
      { name: 'Storage', nouns: ['storage basket', 'drawer organizer', 'shelf', 'laundry hamper'], basePrice: 28 },
    ],
  },
  {
    name: 'Toys',
    adjectives: ['wooden', 'educational', 'colorful', 'plush', 'magnetic', 'musical'],
    subcategories: [
      { name: 'Building', nouns: ['building blocks', 'construction set', 'marble run'], basePrice: 35 },
      { name: 'Puzzles', nouns: ['jigsaw puzzle', 'puzzle mat', '3d puzzle', 'brain teaser'], basePrice: 15 },
    ],
  },
];

export const BRAND_SYLLABLES = [
  'lu',
  'mi',
  'na',
  'ko',
  'ra',
  've',
  'to',
  'si',
  'ba',
  'zen',
  'ori',
  'pax',
  'ly',
  'qu',
  'del',
];

export const MATERIALS = [
  'rose',
  'mint',
  'oak',
  'slate',
  'coral',
  'amber',
  'ivory',
  'sage',
  'cobalt',
  'onyx',
  'citrus',
  'pearl',
];
