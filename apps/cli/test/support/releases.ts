/**
 * Two releases of a small repository for the update and mirror tests: RELEASE_2 changes one line
 * of main.cvd (so a delta from RELEASE_1 is small) and all of daily/a.cld.
 */
export const RELEASE_1 = {
  'main.cvd': Array.from({ length: 4000 }, (_, i) => `sig-${i}-0`).join('\n'),
  'daily/a.cld': 'daily 1',
};
export const RELEASE_2 = {
  'main.cvd': Array.from({ length: 4000 }, (_, i) => `sig-${i}-${i === 99 ? 1 : 0}`).join('\n'),
  'daily/a.cld': 'daily 2',
};
