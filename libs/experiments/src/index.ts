export * from './stats';
export * from './assignment';
export * from './interleaving';
export * from './definition';
export * from './router';
export * from './analysis';
export * from './simulate';
