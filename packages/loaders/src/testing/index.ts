/** Test helpers for backend packages: the real-fixture conformance checks. Imports vitest. */
export { describeRealFixtures, type RealFixtureOptions } from './real-fixtures.js';
export { fuzzLoad, largestAllocation, mutateBytes, mutateJson } from './fuzz.js';
