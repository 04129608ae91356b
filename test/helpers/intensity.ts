/**
 * How long and hard the resilience scenarios run. Every scenario runs in each
 * mode; only outage lengths, counts and loads change:
 * - short: `npm test`, the everyday check (the default);
 * - long:  `npm run test:resilience` (RESILIENCE=long), what CI runs after npm test;
 * - soak:  `npm run test:soak` (SOAK=1).
 */
export type Intensity = 'short' | 'long' | 'soak';

export const INTENSITY: Intensity =
  process.env.SOAK === '1' ? 'soak' : process.env.RESILIENCE === 'long' ? 'long' : 'short';

/** The value for the current intensity. */
export function byIntensity<T>(values: Record<Intensity, T>): T {
  return values[INTENSITY];
}
