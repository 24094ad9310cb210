import { loadFeatureConfig } from './config';

test('applied markers are kept longer than the EVENTS stream keeps events, unless kept forever', () => {
  expect(loadFeatureConfig({}).appliedMarkerRetentionMs).toBe(35 * 86_400_000);
  expect(loadFeatureConfig({ AISLE_APPLIED_MARKER_RETENTION: '0' }).appliedMarkerRetentionMs).toBe(0);
  expect(() => loadFeatureConfig({ AISLE_APPLIED_MARKER_RETENTION: '720h' })).toThrow(
    "AISLE_APPLIED_MARKER_RETENTION must be 0 or longer than the EVENTS stream's 30 days, got 2592000000ms",
  );
});
