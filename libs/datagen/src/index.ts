export * from './random';
export * from './shop';
export { DEPARTMENTS } from './vocabulary';
export * from './shoppers';
