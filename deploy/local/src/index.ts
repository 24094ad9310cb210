export * from './stack';
export * from './console-tour';
