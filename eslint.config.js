// ESLint (flat config): typescript-eslint's recommended rules, and the design rules that
// are about code rather than imports (imports: .dependency-cruiser.cjs). Run by
// `npm run lint` and by test/unit/design-rules.test.ts in `npm test`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** SQL statements as string literals: they belong in src/db. */
const SQL = '/^\\s*(SELECT\\s|INSERT\\s+INTO\\s|UPDATE\\s+\\w+\\s+SET\\s|DELETE\\s+FROM\\s|WITH\\s+\\w+\\s+AS\\s*\\()/';
const sqlOutsideDb = [
  { selector: `Literal[value=${SQL}]`, message: 'SQL lives in src/db (a repository function); call that instead.' },
  { selector: `TemplateElement[value.raw=${SQL}]`, message: 'SQL lives in src/db (a repository function); call that instead.' },
];
/** Workflow type names, ids and queue names: they belong in workflows/api.ts. */
const workflowNamesOutsideApi = [
  {
    selector: 'Literal[value=/^(?!start)[a-z][A-Za-z]*Workflow$/]',
    message: 'Workflow types are named in workflows/api.ts (WORKFLOWS.x.type); start workflows through src/ra.',
  },
  {
    selector: 'TemplateElement[value.raw=/^-signing/]',
    message: 'The signing queue is derived by signingTaskQueue() (workflows/api.ts).',
  },
  {
    selector:
      'TemplateElement[value.raw=/^(acme-order|acme-authz|est|cmp|operator|revoke|crl|audit-checkpoint|key-recovery|ca-create|ca-import|ca-rollover|ca-activate|ca-revoke|ca-expiry-watch)-$/]',
    message: 'Workflow ids are built by WORKFLOWS.x.id() (workflows/api.ts).',
  },
];
/** Starting or updating a workflow: src/ra does that (the worker's schedules and the workflows themselves aside). */
const workflowCallsOutsideRa = [
  {
    selector:
      "CallExpression[callee.object.property.name='workflow'][callee.property.name=/^(start|execute|signalWithStart|executeUpdateWithStart|startUpdateWithStart|getHandle)$/]",
    message: 'Workflows are started, updated and queried through the registration authority (src/ra).',
  },
  {
    selector: "NewExpression[callee.name='WithStartWorkflowOperation']",
    message: 'Update-with-Start goes through src/ra (startOperation).',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/', '.certflow/', 'test/replay/histories/', 'test/fixtures/', 'src/admin/assets/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      // tsc (noUnusedLocals) reports unused names; underscore-prefixed parameters are deliberate.
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Node globals are checked by tsc (types: node).
      'no-undef': 'off',
    },
  },
  {
    // Node 20 can deadlock on a KeyObject that node:crypto's generators returned (the reason
    // is in src/pki/keygen.ts); every key pair comes from there, in tests and benchmarks too.
    ignores: ['src/pki/keygen.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        ...['node:crypto', 'crypto'].map((name) => ({
          name,
          importNames: ['generateKeyPair', 'generateKeyPairSync'],
          message: 'Generate key pairs with src/pki/keygen.ts: its KeyObjects cannot deadlock Node 20.',
        })),
        { name: 'jose', importNames: ['generateKeyPair'], message: 'Generate key pairs with src/pki/keygen.ts.' },
      ],
    },
  },
  {
    files: ['src/**/*.ts', 'workflows/**/*.ts', 'activities/**/*.ts'],
    ignores: ['src/config/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'The environment is read in src/config (loadConfig, or env.ts for child processes).',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts', 'workflows/**/*.ts', 'activities/**/*.ts'],
    ignores: ['src/db/**', 'workflows/api.ts', 'src/ra/**', 'src/temporal/schedules.ts', 'workflows/**'],
    rules: { 'no-restricted-syntax': ['error', ...sqlOutsideDb, ...workflowNamesOutsideApi, ...workflowCallsOutsideRa] },
  },
  {
    files: ['src/ra/**/*.ts', 'src/temporal/schedules.ts', 'workflows/**/*.ts'],
    ignores: ['workflows/api.ts'],
    rules: { 'no-restricted-syntax': ['error', ...sqlOutsideDb, ...workflowNamesOutsideApi] },
  },
);
