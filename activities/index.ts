export { createSigningActivities } from './signing.ts';
export { createStorageActivities } from './storage.ts';
export { createRevocationActivities } from './revocation.ts';
export type * from './types.ts';
