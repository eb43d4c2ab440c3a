/**
 * The layering of certflow, checked by `npm run lint` (and test/unit/design-rules.test.ts
 * in `npm test`). dependency-cruiser resolves every import to a file, type-only imports
 * included, so a rule holds however deep the relative path and whatever the import kind.
 * docs/architecture.md explains the layers.
 */
const FRONT_ENDS = '^src/(acme|est|cmp|admin|http|cli)/';
/** The activity signature modules: pure domain types (identifiers, problems, request states). */
const ACTIVITY_TYPES = '^activities/(types|acme-types|validation-types)\\.ts$';
/**
 * CA signing: only the worker's activities reach these (through src/ca's signing modules and
 * src/keys; keys/types.ts holds only algorithm names and the KeyStore interface).
 */
const CA_SIGNING = '^src/(keys/(?!types\\.ts$)|ca/(issuer|ca-signing|hierarchy|bootstrap|crl|ocsp|lint)\\.ts$)';

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'front-ends-never-touch-ca-keys',
      comment:
        'Front ends (protocols, console, HTTP, CLI) never import the key store or CA signing; only the worker signs. Exception: `certflow ca import --key` puts a PKCS#8 file into the software key store where it is, like `certflow keys recover`.',
      severity: 'error',
      from: { path: FRONT_ENDS, pathNot: '^src/cli/ca-key-import\\.ts$' },
      to: { path: CA_SIGNING },
    },
    {
      name: 'front-ends-never-run-activities',
      comment:
        'Front ends reach the worker only through workflows (src/ra). Exception: `certflow keys recover` runs where the key store is, like `certflow worker`.',
      severity: 'error',
      from: { path: FRONT_ENDS, pathNot: '^src/cli/keys\\.ts$' },
      to: { path: '^activities/', pathNot: ACTIVITY_TYPES },
    },
    {
      name: 'front-ends-start-no-workflows',
      comment:
        'Front ends start, update and query workflows through the registration authority (src/ra); they use the Temporal client only as a type.',
      severity: 'error',
      from: { path: FRONT_ENDS },
      to: { path: '^node_modules/@temporalio/(client|worker|activity)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'front-ends-use-the-workflow-api-only',
      comment: 'Front ends know workflows only by workflows/api.ts (names, ids), never by their implementation.',
      severity: 'error',
      from: { path: `${FRONT_ENDS}|^src/ra/` },
      to: { path: '^workflows/', pathNot: '^workflows/api\\.ts$' },
    },
    {
      name: 'workflows-import-only-workflow-safe-code',
      comment:
        'Workflow code is deterministic and runs in the sandbox: it imports @temporalio/workflow and /common, other workflow modules, activity signatures and the pure modules listed here.',
      severity: 'error',
      from: { path: '^workflows/' },
      to: {
        pathNot: [
          '^workflows/',
          '^activities/(types|acme-types|validation-types)\\.ts$',
          '^src/core/errors\\.ts$',
          '^src/temporal/search-attributes\\.ts$',
          '^node_modules/@temporalio/(workflow|common)/',
        ],
      },
    },
    {
      name: 'activity-signatures-are-pure-types',
      comment: 'Workflows import the activity signature modules; those import nothing themselves.',
      severity: 'error',
      from: { path: '^activities/(types|acme-types|validation-types)\\.ts$' },
      to: {},
    },
    {
      name: 'ra-is-below-the-front-ends',
      comment: 'The registration authority serves every front end and imports none; it never signs.',
      severity: 'error',
      from: { path: '^src/ra/' },
      to: { path: `${FRONT_ENDS}|${CA_SIGNING}|^activities/`, pathNot: ACTIVITY_TYPES },
    },
    {
      name: 'db-knows-no-caller',
      comment:
        'Storage (src/db) knows no front end, RA, workflow, activity or Temporal code (activity type modules are domain types; workflows/api.ts names workflow ids).',
      severity: 'error',
      from: { path: '^src/db/' },
      to: {
        path: '^(src/(acme|est|cmp|admin|http|cli|ra|temporal|ca|keys|va)/|workflows/|activities/)',
        pathNot: '^(activities/(types|acme-types)|workflows/api)\\.ts$',
      },
    },
    {
      name: 'ca-has-no-http-temporal-or-sql',
      comment: 'src/ca (policy, issuer, CRL/OCSP signing) uses no HTTP, Temporal or database code.',
      severity: 'error',
      from: { path: '^src/ca/' },
      to: { path: `^src/(db|temporal|ra|va)/|${FRONT_ENDS}|^node_modules/(pg|koa|@koa|@temporalio)/` },
    },
    {
      name: 'core-is-the-bottom',
      comment: 'src/core (errors, ids, logger, child processes, secrets at rest) imports only itself and src/config.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^(src|workflows|activities)/', pathNot: '^src/(core|config)/' },
    },
    {
      name: 'pki-is-pure',
      comment:
        'src/pki (the only importer of pkijs/asn1js) encodes and decodes; it imports only src/core and the pure type modules of algorithms and profiles.',
      severity: 'error',
      from: { path: '^src/pki/' },
      to: { path: '^(src|workflows|activities)/', pathNot: '^src/(pki/|core/|keys/types\\.ts$|config/profiles\\.ts$)' },
    },
    {
      name: 'product-imports-no-tests',
      severity: 'error',
      from: { path: '^(src|workflows|activities|bin)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|\\.certflow)/' },
  },
};
